"""Start-up and shutdown: arguments, the download and shard load in the background, the servers."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping

from .download import ModelStore
from .handler import Handler
from .hub import HubError, Stopped
from .launcher import LauncherError, build_arg_parser, debug_args, resolve_settings
from .logger import Logger
from .model import MockTGI
from .transport import Server


def token_fingerprint(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(sha256 prefix, variable name) of HF_TOKEN, falling back to HUGGING_FACE_HUB_TOKEN like the router."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = env.get(name)
        if value:
            return hashlib.sha256(value.encode()).hexdigest()[:12], name
    return None, None


def _load(app: MockTGI, store: ModelStore, env: Mapping[str, str], stop: threading.Event,
          open_port: Callable[[], bool] | None) -> None:
    """Start-up after the checks: download (when needed), shard load, then the router. TGI starts its
    router, and so opens the port, only after the shards are ready: `open_port` is called then, unless
    --health-before-ready opened it at once (None here)."""
    s, log = app.s, app.log
    try:
        started = time.monotonic()
        if s.local_model:
            log.info(f"Model {s.model_id} is a local directory, skipping download", span="download")
        elif store.cached:
            log.info(f"Model {s.model_id} found in cache ({store.model_dir})", span="download")
            log.info("Files are already present on the host. Skipping download.", span="download")
        else:
            log.info(f"Starting check and download process for {s.model_id}", span="download")
            log.info(
                f"Downloading model {s.model_id} (revision {s.revision or 'main'}) to {store.model_dir}",
                span="download",
            )
            if stop.wait(s.download_delay):
                return
            store.download(env, stop)
            log.info(f"Successfully downloaded weights for {s.model_id}", span="download")
        log.info("Starting shard rank=0", span="shard-manager")
        if s.never_ready:
            log.warn(
                "TGI_MOCK_NEVER_READY=1: the shard will never become ready; "
                + ("/health stays 503" if open_port is None else "the port stays closed"),
                span="shard-manager",
            )
            return
        if stop.wait(s.load_delay):
            return
        log.info(f"Shard ready in {time.monotonic() - started:.2f}s rank=0", span="shard-manager")
        log.info("Starting Webserver")
        log.info(f"Serving revision {app.sha} of model {s.model_id}", target="text_generation_router::server")
        log.info("Warming up model", target="text_generation_router_v3")
        log.info(
            f"Setting max batch total tokens to {s.max_batch_total_tokens}",
            target="text_generation_router_v3",
        )
        app.ready.set()
        if open_port is not None and not open_port():
            app.exit_code = 1
            stop.set()
            return
        log.info("Connected", target="text_generation_router::server")
    except Stopped:
        return
    except (HubError, OSError) as err:
        log.error(f"Download encountered an error: {err}", span="download")
        app.exit_code = 1
        stop.set()


def _servers(app: MockTGI, host: str, log: Logger) -> list[Server] | None:
    """The router's port (and the metrics port), serving; None (logged) when the port cannot be bound."""
    s = app.s
    try:
        servers = [Server((host, s.port), app, Handler)]
    except OSError as err:
        log.error(f"Webserver Crashed: cannot bind {host}:{s.port}: {err.strerror or err}")
        return None
    if s.prometheus_port and s.prometheus_port != s.port:
        try:
            servers.append(Server((host, s.prometheus_port), app, Handler, metrics_only=True))
        except OSError as err:
            log.warn(f"Cannot serve metrics on port {s.prometheus_port}: {err.strerror or err}")
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    log.info(f"Listening on {host}:{s.port}", target="text_generation_router::server")
    return servers


def main(argv: list[str] | None = None) -> int:
    env = dict(os.environ)
    parser = build_arg_parser(env)
    try:
        args, unknown = parser.parse_known_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    log = Logger(args.json_output)
    log.info(debug_args(args))
    if unknown:
        names = sorted({u.split("=", 1)[0] for u in unknown if u.startswith("-")}) or ["<positional>"]
        log.warn(f"Ignoring unknown launcher argument(s): {', '.join(names)}")
    prefix, token_var = token_fingerprint(env)
    if prefix:
        log.info(f"HF_TOKEN received (sha256 prefix {prefix}) from {token_var}")
    else:
        log.info("HF_TOKEN not set; only public models can be downloaded")
    try:
        settings = resolve_settings(args, env)
        store = ModelStore(settings, log)
        store.check(env)
    except LauncherError as err:
        log.error(str(err))
        print(f"Error: {err.kind}({json.dumps(str(err))})", file=sys.stderr, flush=True)
        return 1
    log.info(f"Default `max_input_tokens` to {settings.max_input_tokens}")
    log.info(f"Default `max_total_tokens` to {settings.max_total_tokens}")
    app = MockTGI(settings, log, store, prefix)
    host = settings.hostname
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        log.warn("Invalid hostname, defaulting to 0.0.0.0", target="text_generation_router::server")
        host = "0.0.0.0"
    servers: list[Server] = []

    def open_port() -> bool:
        opened = _servers(app, host, log)
        servers.extend(opened or [])
        return opened is not None

    if settings.health_before_ready and not open_port():
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            os._exit(0)
        log.info(f"Received {signal.Signals(signum).name}, terminating")
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    later = None if settings.health_before_ready else open_port
    threading.Thread(target=_load, args=(app, store, env, stop, later), daemon=True).start()
    while not stop.wait(0.2):
        pass
    app.stopping.set()
    log.info("Terminating webserver")
    for srv in list(servers):
        srv.shutdown()
        srv.server_close()
    log.info("webserver terminated")
    log.info("Shutting down shards")
    return app.exit_code
