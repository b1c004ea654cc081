"""`text-generation-launcher`'s command line: its flags (and their environment variables), and the
effective limits TGI derives from them."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .constants import DEFAULT_MAX_POSITIONS
from .hub import hub_cache_root


@dataclass(frozen=True)
class Flag:
    long: str
    kind: str = (
        "str"  # str | int | float | flag (no value) | bool (true/false value) | list (comma separated)
    )
    default: Any = None
    short: str | None = None
    choices: tuple[str, ...] | None = None
    env: str | None = None  # defaults to the SCREAMING_SNAKE of the long name

    @property
    def env_name(self) -> str:
        return self.env or self.long.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")


QUANTIZE = (
    "awq",
    "compressed-tensors",
    "eetq",
    "exl2",
    "gptq",
    "marlin",
    "bitsandbytes",
    "bitsandbytes-nf4",
    "bitsandbytes-fp4",
    "fp8",
)
LAUNCHER_FLAGS = (
    Flag("model-id"),
    Flag("revision"),
    Flag("validation-workers", "int", 2),
    Flag("sharded", "bool"),
    Flag("num-shard", "int"),
    Flag("quantize", choices=QUANTIZE),
    Flag("speculate", "int"),
    Flag("dtype", choices=("float16", "bfloat16")),
    Flag("kv-cache-dtype", choices=("fp8", "fp8_e4m3fn", "fp8_e5m2")),
    Flag("trust-remote-code", "flag"),
    Flag("max-concurrent-requests", "int", 128),
    Flag("max-best-of", "int", 2),
    Flag("max-stop-sequences", "int", 4),
    Flag("max-top-n-tokens", "int", 5),
    Flag("max-input-tokens", "int"),
    Flag("max-input-length", "int"),
    Flag("max-total-tokens", "int"),
    Flag("waiting-served-ratio", "float", 0.3),
    Flag("max-batch-prefill-tokens", "int"),
    Flag("max-batch-total-tokens", "int"),
    Flag("max-waiting-tokens", "int", 20),
    Flag("max-batch-size", "int"),
    Flag("cuda-graphs", "list"),
    Flag("hostname", default="0.0.0.0"),
    Flag("port", "int", short="-p"),
    Flag("prometheus-port", "int", 9000),
    Flag("shard-uds-path", default="/tmp/text-generation-server"),
    Flag("master-addr", default="localhost"),
    Flag("master-port", "int", 29500),
    Flag("huggingface-hub-cache"),
    Flag("weights-cache-override"),
    Flag("disable-custom-kernels", "flag"),
    Flag("cuda-memory-fraction", "float", 1.0),
    Flag("rope-scaling"),
    Flag("rope-factor", "float"),
    Flag("json-output", "flag"),
    Flag("otlp-endpoint"),
    Flag("otlp-service-name", default="text-generation-inference.router"),
    Flag("cors-allow-origin", "list"),
    Flag("api-key"),
    Flag("watermark-gamma", "float"),
    Flag("watermark-delta", "float"),
    Flag("ngrok", "flag"),
    Flag("ngrok-authtoken"),
    Flag("ngrok-edge"),
    Flag("tokenizer-config-path"),
    Flag("disable-grammar-support", "flag"),
    Flag("env", "flag", short="-e", env="-"),
    Flag("max-client-batch-size", "int", 4),
    Flag("lora-adapters"),
    Flag("usage-stats", default="on", choices=("on", "off", "no-stack")),
    Flag("payload-limit", "int", 2000000),
    Flag("enable-prefill-logprobs", "flag"),
    Flag("graceful-termination-timeout", "int", 90),
    # mock-only
    Flag("load-delay", "float", 1.0, env="TGI_MOCK_LOAD_DELAY"),
    Flag("download-delay", "float", 0.5, env="TGI_MOCK_DOWNLOAD_DELAY"),
    Flag("token-delay", "float", 0.0, env="TGI_MOCK_TOKEN_DELAY"),
    Flag("never-ready", "flag", env="TGI_MOCK_NEVER_READY"),
    Flag("health-before-ready", "flag", env="TGI_MOCK_HEALTH_BEFORE_READY"),
)
SECRET_DESTS = {"api_key", "ngrok_authtoken"}


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _parse_bool(value: str) -> bool:
    if value.strip().lower() not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        raise argparse.ArgumentTypeError(f"invalid value '{value}' (expected true or false)")
    return _truthy(value)


def _split_list(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


def build_arg_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """Launcher-compatible parser; every flag falls back to its environment variable like clap's `env`."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="text-generation-launcher",
        allow_abbrev=False,
        description="TGI-compatible mock of text-generation-launcher",
    )
    types: dict[str, Callable[[str], Any]] = {
        "str": str,
        "int": int,
        "float": float,
        "bool": _parse_bool,
        "list": _split_list,
    }
    for flag in LAUNCHER_FLAGS:
        names = [f"--{flag.long}"] + ([flag.short] if flag.short else [])
        raw = env.get(flag.env_name)
        described = f"as TGI's launcher flag (env {flag.env_name})"
        if flag.kind == "flag":
            parser.add_argument(
                *names,
                dest=flag.dest,
                action="store_true",
                default=_truthy(raw) if raw is not None else False,
                help=described,
            )
            continue
        default = raw if raw is not None else flag.default
        required = flag.long == "model-id" and default is None
        parser.add_argument(
            *names,
            dest=flag.dest,
            type=types[flag.kind],
            default=default,
            choices=flag.choices,
            required=required,
            metavar=flag.dest.upper(),
            help=described + (f"; default {flag.default}" if flag.default is not None else ""),
        )
    return parser


class LauncherError(Exception):
    """An argument or start-up error that makes the launcher exit 1 (`Error: <kind>(...)` on stderr)."""

    def __init__(self, message: str, kind: str = "ArgumentValidation") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Settings:
    model_id: str
    revision: str | None
    hostname: str
    port: int
    prometheus_port: int
    max_concurrent_requests: int
    max_best_of: int
    max_stop_sequences: int
    max_top_n_tokens: int
    max_input_tokens: int
    max_total_tokens: int
    max_batch_prefill_tokens: int
    max_batch_total_tokens: int
    validation_workers: int
    max_client_batch_size: int
    payload_limit: int
    api_key: str | None
    cache_root: Path
    local_model: bool
    load_delay: float
    download_delay: float
    token_delay: float
    never_ready: bool
    health_before_ready: bool
    compute_type: str
    public_args: dict[str, Any] = field(default_factory=dict)


def resolve_settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Derive TGI's effective limits the way launcher/src/main.rs does (no config.json: 4096 positions)."""
    if args.max_input_tokens is not None and args.max_input_length is not None:
        raise LauncherError(
            f"Both `max_input_tokens` ({args.max_input_tokens}) and `max_input_length` "
            f"({args.max_input_length}) are set. Please define only `max_input_tokens` as `max_input_length "
            "is deprecated for naming consistency."
        )
    max_input = args.max_input_tokens if args.max_input_tokens is not None else args.max_input_length
    max_total = args.max_total_tokens
    if max_input is None and max_total is None:
        max_input, max_total = DEFAULT_MAX_POSITIONS - 1, DEFAULT_MAX_POSITIONS
    elif max_input is None:
        max_input = max_total - 1
    elif max_total is None:
        max_total = max(DEFAULT_MAX_POSITIONS, max_input + 1)
    if max_input >= max_total:
        raise LauncherError(f"`max_input_tokens`({max_input}) must be < `max_total_tokens`({max_total})")
    if args.validation_workers == 0:
        raise LauncherError("`validation_workers` must be > 0")
    prefill = args.max_batch_prefill_tokens or max(DEFAULT_MAX_POSITIONS, max_input + 50)
    if args.max_batch_prefill_tokens is not None and prefill < max_input:
        raise LauncherError(
            f"`max_batch_prefill_tokens` must be >= `max_input_tokens`. Given: {prefill} and {max_input}"
        )
    batch_total = args.max_batch_total_tokens or max(16384, max_total, prefill)
    if args.max_batch_total_tokens is not None and max_total > batch_total:
        raise LauncherError(
            f"`max_total_tokens` must be <= `max_batch_total_tokens`. Given: {max_total} and {batch_total}"
        )
    for name in ("max_concurrent_requests", "load_delay", "download_delay", "token_delay"):
        if getattr(args, name) < 0:
            raise LauncherError(f"`{name}` must be >= 0")
    port = args.port if args.port is not None else 3000
    public = {k: v for k, v in sorted(vars(args).items()) if k not in SECRET_DESTS}
    public.update(
        api_key_set=args.api_key is not None,
        max_input_tokens=max_input,
        max_total_tokens=max_total,
        port=port,
    )
    return Settings(
        model_id=args.model_id,
        revision=args.revision,
        hostname=args.hostname,
        port=port,
        prometheus_port=args.prometheus_port,
        max_concurrent_requests=args.max_concurrent_requests,
        max_best_of=args.max_best_of,
        max_stop_sequences=args.max_stop_sequences,
        max_top_n_tokens=args.max_top_n_tokens,
        max_input_tokens=max_input,
        max_total_tokens=max_total,
        max_batch_prefill_tokens=prefill,
        max_batch_total_tokens=batch_total,
        validation_workers=args.validation_workers,
        max_client_batch_size=args.max_client_batch_size,
        payload_limit=args.payload_limit,
        api_key=args.api_key,
        cache_root=hub_cache_root(env, args.huggingface_hub_cache),
        local_model=args.model_id.startswith("/"),
        load_delay=args.load_delay,
        download_delay=args.download_delay,
        token_delay=args.token_delay,
        never_ready=args.never_ready,
        health_before_ready=args.health_before_ready,
        compute_type=env.get("COMPUTE_TYPE", "gpu+optimized"),
        public_args=public,
    )


def debug_args(args: argparse.Namespace) -> str:
    """Rust-Debug-like rendering of the arguments (secrets redacted) for the `Args { .. }` log line."""
    parts = []
    enums = {flag.dest: flag for flag in LAUNCHER_FLAGS if flag.choices}
    for key, value in vars(args).items():
        if key in SECRET_DESTS and value is not None:
            shown = 'Some("<redacted>")'
        elif key in enums and isinstance(value, str):
            # clap value enums print as their Rust variant: `usage_stats: Off`, `quantize: Some(Awq)`.
            variant = "".join(part.capitalize() for part in value.replace("_", "-").split("-"))
            shown = variant if enums[key].default is not None else f"Some({variant})"
        elif value is None:
            shown = "None"
        elif isinstance(value, bool):
            shown = str(value).lower()
        elif isinstance(value, str):
            shown = json.dumps(value)
        else:
            shown = str(value)
        parts.append(f"{key}: {shown}")
    return "Args { " + ", ".join(parts) + " }"
