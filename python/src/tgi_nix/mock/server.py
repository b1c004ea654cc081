"""`text-generation-server`: TGI's Python server CLI, of which the mock has `download-weights`.

    text-generation-server download-weights MODEL_ID [--revision R] [--extension .safetensors]
        [--logger-level INFO] [--json-output] [--trust-remote-code] [--merge-lora] [--auto-convert]

It fills the hub cache ($HUGGINGFACE_HUB_CACHE, $HF_HUB_CACHE or $HF_HOME/hub; HF_HOME defaults to /data
as in the image) the way TGI's launcher does before it starts the shards; see hub.py for the layout and
the environment it reads. Exit 0: the model is complete in the cache; 1: the Hub refused (offline and
not cached, unreachable, gated without a token) or the cache is unusable, with one line
`<exception>: <message>` on stderr; 2: bad arguments. Log lines go to stdout as loguru writes them
(the message; with --json-output one JSON record per line).

Run as `python3 -m tgi_nix_mock.server` in the images, `python -m tgi_nix.mock.server` in a checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from .hub import HubCache, HubError, hub_cache_root, preflight

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class ServerLog:
    """loguru as TGI's server configures it: `{message}` lines, or its serialized JSON records."""

    def __init__(self, json_output: bool, level: str) -> None:
        self.json_output, self.threshold = json_output, LEVELS.get(level.upper(), 20)

    def __call__(self, message: str, level: str = "INFO") -> None:
        if LEVELS[level] < self.threshold:
            return
        if self.json_output:
            now = datetime.now().astimezone()
            record = {
                "text": message + "\n",
                "record": {
                    "level": {"name": level, "no": LEVELS[level]},
                    "message": message,
                    "name": "text_generation_server.utils.hub",
                    "function": "download_weights",
                    "process": {"id": os.getpid(), "name": "MainProcess"},
                    "time": {"repr": now.isoformat(), "timestamp": now.timestamp()},
                },
            }
            line = json.dumps(record, ensure_ascii=False)
        else:
            line = message
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):
            pass  # a closed stdout must not stop the download


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="text-generation-server", allow_abbrev=False,
                                     description="TGI's server CLI (mock): download-weights only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    download = commands.add_parser("download-weights", allow_abbrev=False,
                                   help="download a model's weights into the Hugging Face cache")
    download.add_argument("model_id", metavar="MODEL_ID")
    download.add_argument("--revision", default=None)
    download.add_argument("--extension", default=".safetensors")
    download.add_argument("--auto-convert", dest="auto_convert", action="store_true", default=True)
    download.add_argument("--no-auto-convert", dest="auto_convert", action="store_false")
    download.add_argument("--logger-level", default="INFO", type=str.upper, choices=sorted(LEVELS))
    download.add_argument("--json-output", action="store_true")
    download.add_argument("--trust-remote-code", action="store_true")
    download.add_argument("--merge-lora", action="store_true")
    return parser


def download_weights(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    log = ServerLog(args.json_output, args.logger_level)
    if args.extension != ".safetensors":
        log(f"Only .safetensors weights exist in the mock; --extension {args.extension} is ignored", "WARNING")
    if args.model_id.startswith("/") or Path(args.model_id).is_dir():
        if not Path(args.model_id).is_dir():
            print(f"FileNotFoundError: Model path {args.model_id} does not exist", file=sys.stderr, flush=True)
            return 1
        log("Files are already present on the host. Skipping download.")
        return 0
    cache = HubCache(hub_cache_root(env), args.model_id, args.revision)
    started = time.monotonic()
    try:
        if not preflight(cache, env):
            log("Files are already present on the host. Skipping download.")
            return 0
        cache.check_writable()
        fetched = cache.download(env, log)
    except HubError as err:
        print(f"{err.kind}: {err}", file=sys.stderr, flush=True)
        return 1
    except OSError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return 1
    log(f"Successfully downloaded weights for {args.model_id} ({fetched} bytes in "
        f"{time.monotonic() - started:.1f}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return download_weights(args, os.environ)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
