#!/usr/bin/env python3
"""A stand-in for Hugging Face Text Generation Inference (TGI 3.3.7), standard library only.

It takes ``text-generation-launcher`` arguments (and their SCREAMING_SNAKE environment variables), fakes
the model download into the Hugging Face cache, and serves TGI's HTTP API with TGI's shapes, status codes,
error messages, headers and Prometheus metrics.  Generated text is a list of words chosen from a hash of
(model id, prompt[, seed]), so greedy requests are deterministic.

Usage:  python3 mock_server.py --model-id org/model [launcher flags...]

Mock-only knobs (flag / environment variable):
  --load-delay SECONDS      TGI_MOCK_LOAD_DELAY      "shard" load time after the download (default 1.0)
  --download-delay SECONDS  TGI_MOCK_DOWNLOAD_DELAY  fake download time when not cached (default 0.5)
  --token-delay SECONDS     TGI_MOCK_TOKEN_DELAY     sleep per generated token (default 0.0)
  --never-ready             TGI_MOCK_NEVER_READY=1   /health stays 503 forever
Magic input: a prompt containing ``__tgi_mock_fail__`` fails with 424 (error_type "generation").
Mock-only endpoint: GET /mock/state -> {downloads, hf_token_sha256_prefix, ready, args, requests_in_flight}.
Secrets (HF_TOKEN, --api-key) are never logged or served; only a sha256 prefix of HF_TOKEN is.
"""

from __future__ import annotations

import argparse
import decimal
import hashlib
import json
import os
import random
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

TGI_VERSION = "3.3.7"
GIT_SHA = hashlib.sha1(f"tgi-mock-{TGI_VERSION}".encode()).hexdigest()
DOCKER_LABEL = f"sha-{GIT_SHA[:7]}"
SYSTEM_FINGERPRINT = f"{TGI_VERSION}-{DOCKER_LABEL}"
FAIL_MAGIC = "__tgi_mock_fail__"
MARKER_NAME = ".tgi-mock-complete"
DOWNLOADS_NAME = ".tgi-mock-downloads"
DEFAULT_MAX_POSITIONS = 4096  # TGI's default cap for max_total_tokens
DEFAULT_GENERATION_LENGTH = 1024  # used when a request sends "max_new_tokens": null
VOCAB = 32000
EOS_ID, EOS_TEXT = 2, "</s>"
UNHEALTHY = {"error": "unhealthy", "error_type": "healthcheck"}
PROTECTED = {
    "/",
    "/generate",
    "/generate_stream",
    "/v1/chat/completions",
    "/v1/completions",
    "/invocations",
    "/tokenize",
    "/vertex",
}
WORDS = (
    "the model answers questions about deep learning with care and a little humor while the data "
    "flows through layers of attention that learn patterns from text so every token carries some "
    "meaning for the next one in a long chain of reasoning about language vision code and numbers "
    "researchers train networks on large clusters using many GPUs to reduce loss over many steps "
    "inference servers batch requests to keep hardware busy and answer quickly with streaming tokens"
).split()


# ----------------------------------------------------------------------------------------------- logging
class Logger:
    """One line per event on stdout, in tracing's compact text format or JSON (--json-output)."""

    def __init__(self, json_output: bool) -> None:
        self.json_output = json_output
        self._lock = threading.Lock()

    def log(
        self, level: str, message: str, target: str = "text_generation_launcher", span: str | None = None
    ) -> None:
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.json_output:
            rec: dict[str, Any] = {
                "timestamp": ts,
                "level": level,
                "fields": {"message": message},
                "target": target,
            }
            if span:
                rec["span"] = {"name": span}
            line = json.dumps(rec, ensure_ascii=False)
        else:
            line = f"{ts} {level:>5} {span + ': ' if span else ''}{target}: {message}"
        with self._lock:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass

    def info(self, message: str, **kw: Any) -> None:
        self.log("INFO", message, **kw)

    def warn(self, message: str, **kw: Any) -> None:
        self.log("WARN", message, **kw)

    def error(self, message: str, **kw: Any) -> None:
        self.log("ERROR", message, **kw)


# ------------------------------------------------------------------------------------------ command line
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
        if flag.kind == "flag":
            parser.add_argument(
                *names,
                dest=flag.dest,
                action="store_true",
                default=_truthy(raw) if raw is not None else False,
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
    cache = args.huggingface_hub_cache or str(Path(env.get("HF_HOME", "/data")) / "hub")
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
        cache_root=Path(cache),
        local_model=args.model_id.startswith("/"),
        load_delay=args.load_delay,
        download_delay=args.download_delay,
        token_delay=args.token_delay,
        never_ready=args.never_ready,
        compute_type=env.get("COMPUTE_TYPE", "gpu+optimized"),
        public_args=public,
    )


def debug_args(args: argparse.Namespace) -> str:
    """Rust-Debug-like rendering of the arguments (secrets redacted) for the `Args { .. }` log line."""
    parts = []
    for key, value in vars(args).items():
        if key in SECRET_DESTS and value is not None:
            shown = 'Some("<redacted>")'
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


def model_sha(model_id: str, revision: str | None) -> str:
    return hashlib.sha1(f"{model_id}@{revision or 'main'}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------- model download
class ModelStore:
    """Fake Hugging Face cache: models--<owner>--<name>/{refs,snapshots,.tgi-mock-complete}."""

    def __init__(self, settings: Settings, logger: Logger) -> None:
        self.s, self.log = settings, logger
        self.sha = model_sha(settings.model_id, settings.revision)
        self.model_dir = settings.cache_root / ("models--" + settings.model_id.replace("/", "--"))
        self.cached = False

    def check(self, env: Mapping[str, str]) -> None:
        """Synchronous checks done before the port opens; raises LauncherError."""
        if self.s.local_model:
            if not Path(self.s.model_id).exists():
                raise LauncherError(
                    f"Model path {self.s.model_id} does not exist (local weights must be mounted)",
                    "DownloadError",
                )
            return
        self.cached = (self.model_dir / MARKER_NAME).is_file()
        if self.cached:
            return
        if env.get("HF_HUB_OFFLINE") == "1":
            raise LauncherError(
                f"Model {self.s.model_id} is not in the cache {self.s.cache_root} and HF_HUB_OFFLINE=1",
                "DownloadError",
            )
        try:
            self.s.cache_root.mkdir(parents=True, exist_ok=True)
            probe = self.s.cache_root / f".tgi-mock-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise LauncherError(
                f"The Hugging Face cache directory {self.s.cache_root} is not writable: {err.strerror or err}",
                "DownloadError",
            ) from err

    def downloads(self) -> int:
        try:
            return int((self.s.cache_root / DOWNLOADS_NAME).read_text().strip() or "0")
        except (OSError, ValueError):
            return 0

    def download(self) -> None:
        """Writes config.json, refs/main, the marker and bumps the download counters; raises OSError."""
        snap = self.model_dir / "snapshots" / self.sha
        snap.mkdir(parents=True, exist_ok=True)
        (self.model_dir / "refs").mkdir(exist_ok=True)
        (self.model_dir / "refs" / "main").write_text(self.sha)
        config = {
            "architectures": ["MockForCausalLM"],
            "model_type": "mock",
            "max_position_embeddings": DEFAULT_MAX_POSITIONS,
            "vocab_size": VOCAB,
            "_name_or_path": self.s.model_id,
        }
        (snap / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        total = self.downloads() + 1
        (self.s.cache_root / DOWNLOADS_NAME).write_text(f"{total}\n")
        marker = self.model_dir / MARKER_NAME
        previous = 0
        if marker.is_file():
            try:
                previous = int(json.loads(marker.read_text()).get("downloads", 0))
            except (ValueError, AttributeError):
                previous = 0
        marker.write_text(
            json.dumps(
                {
                    "model_id": self.s.model_id,
                    "sha": self.sha,
                    "downloads": previous + 1,
                    "completed_at": time.time(),
                }
            )
            + "\n"
        )


# -------------------------------------------------------------------------------- tokenizer & generation
TOKEN_RE = re.compile(r"\s*(\w+|[^\w\s])")


@dataclass(frozen=True)
class Piece:
    id: int
    text: str  # decoded text, with its leading whitespace
    start: int  # char offsets of the token proper
    stop: int


def token_id(text: str) -> int:
    return 3 + zlib.crc32(text.strip().encode()) % (VOCAB - 3)


def tokenize(text: str) -> list[Piece]:
    return [Piece(token_id(m.group(1)), m.group(0), m.start(1), m.end(1)) for m in TOKEN_RE.finditer(text)]


@dataclass
class Token:
    id: int
    text: str
    logprob: float
    special: bool = False

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "logprob": self.logprob, "special": self.special}


def _seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()[:8], "big")


def _schema_sample(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value that fits a (simple) JSON schema, for grammar / response_format requests."""
    if not isinstance(schema, dict) or depth > 4:
        return None
    kind = schema.get("type")
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return (
            {k: _schema_sample(v, rng, depth + 1) for k, v in props.items()}
            if isinstance(props, dict)
            else {}
        )
    if kind == "array":
        return [_schema_sample(schema.get("items", {"type": "string"}), rng, depth + 1)]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return rng.randint(1, 1000) / 10
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return rng.choice(WORDS)


@dataclass
class Plan:
    """A validated generation request (router/src/validation.rs ValidGenerateRequest)."""

    inputs: str
    pieces: list[Piece]
    max_new_tokens: int
    stop: list[str]
    sampling: bool
    seed: int
    top_n_tokens: int
    decoder_input_details: bool
    json_schema: dict[str, Any] | None

    @property
    def input_length(self) -> int:
        return len(self.pieces)


class Generation:
    """Deterministic token stream for one sequence; finish reasons follow TGI's StoppingCriteria order."""

    def __init__(self, model_id: str, plan: Plan) -> None:
        self.plan = plan
        self.seed_used = _seed_of(model_id, plan.inputs, plan.seed if plan.sampling else "greedy")
        self.rng = random.Random(self.seed_used)
        self.natural_length = self.rng.randint(12, 60)
        self.script: list[str] | None = None
        if plan.json_schema is not None:
            text = json.dumps(_schema_sample(plan.json_schema, self.rng), separators=(", ", ": "))
            self.script = [m.group(0) for m in TOKEN_RE.finditer(text)]
        self.tokens: list[Token] = []
        self.top_tokens: list[list[Token]] = []
        self.text = ""
        self.finish_reason: str | None = None

    def _next_text(self, index: int) -> str | None:
        if self.script is not None:
            return self.script[index] if index < len(self.script) else None
        if index >= self.natural_length:
            return None
        last = self.tokens[-1].text if self.tokens else "."
        if index > 0 and last not in {".", ","} and self.rng.random() < 0.12:
            return self.rng.choice([".", ".", ","])
        word = self.rng.choice(WORDS)
        return " " + (word.capitalize() if last == "." else word)

    def step(self) -> tuple[Token, list[Token]]:
        index = len(self.tokens)
        text = self._next_text(index)
        logprob = -self.rng.randint(1, 900) / 256
        token = (
            Token(EOS_ID, EOS_TEXT, logprob, True) if text is None else Token(token_id(text), text, logprob)
        )
        tops: list[Token] = []
        if self.plan.top_n_tokens:
            alt = random.Random(_seed_of(self.seed_used, index))
            tops = [token] + [
                Token(token_id(w), " " + w, logprob - alt.randint(1, 256) / 64)
                for w in alt.sample(WORDS, self.plan.top_n_tokens - 1)
            ]
        self.tokens.append(token)
        self.top_tokens.append(tops)
        if not token.special:
            self.text += token.text
        if len(self.tokens) >= self.plan.max_new_tokens:
            self.finish_reason = "length"
        elif token.special:
            self.finish_reason = "eos_token"
        elif any(self.text.endswith(s) for s in self.plan.stop if s):
            self.finish_reason = "stop_sequence"
        return token, tops

    def prefill(self) -> list[dict[str, Any]]:
        if not self.plan.decoder_input_details:
            return []
        rng = random.Random(_seed_of("prefill", self.plan.inputs))
        return [
            {"id": p.id, "text": p.text, "logprob": None if i == 0 else -rng.randint(1, 2000) / 256}
            for i, p in enumerate(self.plan.pieces)
        ]

    def mean_logprob(self) -> float:
        return sum(t.logprob for t in self.tokens) / max(1, len(self.tokens))


# --------------------------------------------------------------------------------------------- metrics
DURATION_BUCKETS = [0.0001 * 1.5 ** (i + 1) for i in range(35)]
METRIC_HELP = {
    "tgi_request_count": ("counter", "Total number of requests"),
    "tgi_request_success": ("counter", "Number of successful requests"),
    "tgi_request_failure": ("counter", "Number of failed requests"),
    "tgi_batch_inference_count": ("counter", "Inference calls per method (prefill or decode)"),
    "tgi_batch_inference_success": (
        "counter",
        "Number of successful inference calls per method (prefill or decode)",
    ),
    "tgi_queue_size": ("gauge", "Current queue size"),
    "tgi_batch_current_size": ("gauge", "Current batch size"),
    "tgi_batch_current_max_tokens": ("gauge", "Maximum tokens for the current batch"),
    "tgi_batch_max_total_tokens": ("gauge", "Maximum amount of tokens in total."),
    "tgi_request_duration": ("histogram", "Total time spent processing the request"),
    "tgi_request_validation_duration": ("histogram", "Time spent validating the request"),
    "tgi_request_queue_duration": ("histogram", "Time spent in the queue per request"),
    "tgi_request_inference_duration": ("histogram", "Request inference duration"),
    "tgi_request_mean_time_per_token_duration": ("histogram", "Mean time per token per request"),
    "tgi_request_input_length": ("histogram", "Input token length per request"),
    "tgi_request_generated_tokens": ("histogram", "Generated tokens per request"),
    "tgi_request_max_new_tokens": ("histogram", "Maximum new tokens per request"),
    "tgi_batch_next_size": ("histogram", "Batch size of the next batch"),
    "tgi_batch_inference_duration": ("histogram", "Batch inference duration"),
    "tgi_batch_forward_duration": ("histogram", "Batch forward duration per method (prefill or decode)"),
    "tgi_batch_decode_duration": ("histogram", "Time spent decoding a batch per method (prefill or decode)"),
    "tgi_batch_filter_duration": (
        "histogram",
        "Time spent filtering batches and sending generated tokens per method (prefill or decode)",
    ),
}
Labels = tuple[tuple[str, str], ...]


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(float(value))
    return format(decimal.Decimal(text), "f") if "e" in text else text


class Metrics:
    """A tiny Prometheus registry rendering like metrics-exporter-prometheus (no `_total` suffixes)."""

    def __init__(self, max_input_tokens: int, max_total_tokens: int) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self._hists: dict[str, dict[Labels, list[float]]] = {}  # bucket counts..., sum, count
        self.buckets: dict[str, list[float]] = {
            "tgi_request_input_length": [max_input_tokens / 100 * (x + 1) for x in range(100)],
            "tgi_request_generated_tokens": [max_total_tokens / 100 * (x + 1) for x in range(100)],
            "tgi_request_max_new_tokens": [max_total_tokens / 100 * (x + 1) for x in range(100)],
            "tgi_batch_next_size": [float(x + 1) for x in range(1024)],
        }
        for name, (kind, _) in METRIC_HELP.items():
            if kind != "histogram" and name not in {
                "tgi_request_failure",
                "tgi_batch_inference_count",
                "tgi_batch_inference_success",
            }:
                self._values[name] = {(): 0.0}
            elif kind == "histogram" and name.startswith("tgi_request_"):
                self._hists[name] = {(): [0.0] * (len(self._buckets_for(name)) + 2)}

    def _buckets_for(self, name: str) -> list[float]:
        return self.buckets.get(name, DURATION_BUCKETS)

    def add(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            series = self._values.setdefault(name, {})
            key = tuple(sorted(labels.items()))
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._values.setdefault(name, {})[()] = float(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = self._buckets_for(name)
        with self._lock:
            series = self._hists.setdefault(name, {})
            row = series.setdefault(tuple(sorted(labels.items())), [0.0] * (len(buckets) + 2))
            for i, bound in enumerate(buckets):
                if value <= bound:
                    row[i] += 1
            row[-2] += value
            row[-1] += 1

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        def lbl(labels: Labels, extra: str = "") -> str:
            items = [f'{k}="{v}"' for k, v in labels] + ([extra] if extra else [])
            return "{" + ",".join(items) + "}" if items else ""

        out: list[str] = []
        with self._lock:
            for name in sorted(self._values):
                kind, doc = METRIC_HELP.get(name, ("counter", ""))
                out += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
                out += [f"{name}{lbl(k)} {_num(v)}" for k, v in sorted(self._values[name].items())]
                out.append("")
            for name in sorted(self._hists):
                out += [f"# HELP {name} {METRIC_HELP.get(name, ('', ''))[1]}", f"# TYPE {name} histogram"]
                for key, row in sorted(self._hists[name].items()):
                    bounds = [*map(_num, self._buckets_for(name)), "+Inf"]
                    counts = [*row[:-2], row[-1]]
                    for bound, count in zip(bounds, counts, strict=True):
                        out.append(f"{name}_bucket{lbl(key, 'le=' + json.dumps(bound))} {_num(count)}")
                    out.append(f"{name}_sum{lbl(key)} {_num(row[-2])}")
                    out.append(f"{name}_count{lbl(key)} {_num(row[-1])}")
                out.append("")
        return "\n".join(out)


# ----------------------------------------------------------------------------------- errors & parsing
class ApiError(Exception):
    """An error answered as TGI's ErrorResponse {"error", "error_type"}."""

    def __init__(self, status: int, error: str, error_type: str, metric: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.error_type, self.metric = status, error, error_type, metric

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_type": self.error_type}


def validation_error(message: str) -> ApiError:
    return ApiError(422, f"Input validation error: {message}", "validation", "validation")


class Rejection(Exception):
    """An axum extractor rejection: status + text/plain body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


EXPECTED = {
    "bool": "a boolean",
    "u32": "u32",
    "u64": "u64",
    "usize": "usize",
    "i32": "i32",
    "f32": "f32",
    "str": "a string",
    "vec_str": "a sequence",
    "map": "a map",
}
LIMITS = {"u32": (0, 2**32 - 1), "u64": (0, 2**64 - 1), "usize": (0, 2**64 - 1), "i32": (-(2**31), 2**31 - 1)}


def _unexpected(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


class Body:
    """serde-like typed access to a decoded JSON body, with serde_path_to_error style messages."""

    def __init__(self, raw: str) -> None:
        lines = raw.split("\n")
        self.pos = f"at line {len(lines)} column {len(lines[-1])}"

    def fail(self, path: str, message: str) -> Rejection:
        prefix = f"{path}: " if path else ""
        return Rejection(
            422, f"Failed to deserialize the JSON body into the target type: {prefix}{message} {self.pos}"
        )

    def obj(self, value: Any, path: str, struct: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"invalid type: {_unexpected(value)}, expected struct {struct}")
        return value

    def get(
        self,
        obj: dict[str, Any],
        key: str,
        kind: str,
        path: str = "",
        *,
        required: bool = False,
        nullable: bool = True,
        default: Any = None,
    ) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in obj:
            if required:
                raise self.fail(path, f"missing field `{key}`")
            return default
        value = obj[key]
        if value is None and nullable:
            return None
        bad = self.fail(where, f"invalid type: {_unexpected(value)}, expected {EXPECTED[kind]}")
        if kind == "bool":
            if not isinstance(value, bool):
                raise bad
        elif kind in LIMITS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
            low, high = LIMITS[kind]
            if not low <= value <= high:
                raise self.fail(where, f"invalid value: integer `{value}`, expected {kind}")
        elif kind == "f32":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            value = float(value)
        elif kind == "str":
            if not isinstance(value, str):
                raise bad
        elif kind == "vec_str":
            if not isinstance(value, list):
                raise bad
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise self.fail(f"{where}[{i}]", f"invalid type: {_unexpected(item)}, expected a string")
        elif kind == "map" and not isinstance(value, dict):
            raise bad
        return value


@dataclass
class Params:
    """GenerateParameters (router/src/lib.rs)."""

    best_of: int | None = None
    temperature: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    do_sample: bool = False
    max_new_tokens: int | None = 100
    return_full_text: bool | None = None
    stop: list[str] = field(default_factory=list)
    truncate: int | None = None
    watermark: bool = False
    details: bool = False
    decoder_input_details: bool = False
    seed: int | None = None
    top_n_tokens: int | None = None
    grammar: dict[str, Any] | None = None
    adapter_id: str | None = None


PARAM_KINDS = {
    "best_of": "usize",
    "temperature": "f32",
    "repetition_penalty": "f32",
    "frequency_penalty": "f32",
    "top_k": "i32",
    "top_p": "f32",
    "typical_p": "f32",
    "do_sample": "bool",
    "max_new_tokens": "u32",
    "return_full_text": "bool",
    "stop": "vec_str",
    "truncate": "usize",
    "watermark": "bool",
    "details": "bool",
    "decoder_input_details": "bool",
    "seed": "u64",
    "top_n_tokens": "u32",
    "grammar": "map",
    "adapter_id": "str",
}
NOT_NULLABLE = {"do_sample", "stop", "watermark", "details", "decoder_input_details"}


def parse_generate(body: Body, data: Any, struct: str = "GenerateRequest") -> tuple[str, Params, bool]:
    """Returns (inputs, parameters, stream) like serde would for (Compat)GenerateRequest."""
    obj = body.obj(data, "", struct)
    inputs: str = body.get(obj, "inputs", "str", required=True, nullable=False)
    stream = bool(body.get(obj, "stream", "bool", nullable=False, default=False))
    if "parameters" not in obj:  # TGI's default_parameters() samples
        return inputs, Params(do_sample=True), stream
    raw = body.obj(obj["parameters"], "parameters", "GenerateParameters")
    params = Params()
    for key, kind in PARAM_KINDS.items():
        if key in raw:
            setattr(params, key, body.get(raw, key, kind, "parameters", nullable=key not in NOT_NULLABLE))
    if params.grammar is not None:
        variant = params.grammar.get("type")
        if variant not in {"json", "json_object", "regex"}:
            raise body.fail("parameters.grammar", f"unknown variant `{variant}`, expected `json` or `regex`")
        if "value" not in params.grammar:
            raise body.fail("parameters.grammar", "missing field `value`")
    return inputs, params, stream


# ------------------------------------------------------------------------------------------ the "model"
@dataclass
class Outcome:
    """A finished non-streamed generation (InferResponse + timings)."""

    best: Generation
    others: list[Generation]
    input_length: int
    seed: int | None
    start: float
    queued: float
    inference_start: float
    end: float


class MockTGI:
    """Router + backend state: readiness, concurrency limit, validation, generation, metrics."""

    def __init__(
        self, settings: Settings, logger: Logger, store: ModelStore, token_prefix: str | None
    ) -> None:
        self.s, self.log, self.store, self.token_prefix = settings, logger, store, token_prefix
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.permits = threading.BoundedSemaphore(max(1, settings.max_concurrent_requests))
        self.no_permits = settings.max_concurrent_requests == 0
        self._lock = threading.Lock()
        self.in_flight = 0
        self.exit_code = 0
        self.metrics = Metrics(settings.max_input_tokens, settings.max_total_tokens)
        self.metrics.set("tgi_batch_max_total_tokens", settings.max_batch_total_tokens)
        self.sha = model_sha(settings.model_id, settings.revision)

    # -- informational
    def info(self) -> dict[str, Any]:
        s = self.s
        return {
            "model_id": s.model_id,
            "model_sha": self.sha,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": s.max_concurrent_requests,
            "max_best_of": s.max_best_of,
            "max_stop_sequences": s.max_stop_sequences,
            "max_input_tokens": s.max_input_tokens,
            "max_total_tokens": s.max_total_tokens,
            "validation_workers": s.validation_workers,
            "max_client_batch_size": s.max_client_batch_size,
            "router": "text-generation-router",
            "version": TGI_VERSION,
            "sha": GIT_SHA,
            "docker_label": DOCKER_LABEL,
        }

    def state(self) -> dict[str, Any]:
        return {
            "downloads": self.store.downloads(),
            "hf_token_sha256_prefix": self.token_prefix,
            "ready": self.healthy(),
            "args": self.s.public_args,
            "requests_in_flight": self.in_flight,
            "model_dir": str(self.store.model_dir),
            "cached_at_start": self.store.cached,
        }

    def healthy(self) -> bool:
        return self.ready.is_set() and not self.stopping.is_set()

    # -- concurrency
    def _acquire(self, count: int = 1) -> None:
        got = 0
        while got < count and not self.no_permits and self.permits.acquire(blocking=False):
            got += 1
        if got < count:
            for _ in range(got):
                self.permits.release()
            self.metrics.add("tgi_request_failure", err="overloaded")
            self.log.error("no permits available", target="text_generation_router::infer")
            raise ApiError(429, "Model is overloaded", "overloaded")
        with self._lock:
            self.in_flight += count
            self.metrics.set("tgi_batch_current_size", self.in_flight)

    def _release(self, count: int = 1) -> None:
        with self._lock:
            self.in_flight -= count
            self.metrics.set("tgi_batch_current_size", self.in_flight)
        for _ in range(count):
            self.permits.release()

    # -- validation (router/src/validation.rs, same order and messages)
    def validate(self, inputs: str, p: Params) -> Plan:
        try:
            return self._validate(inputs, p)
        except ApiError as err:
            self.metrics.add("tgi_request_failure", err="validation")
            self.log.error(
                err.error.removeprefix("Input validation error: "), target="text_generation_router::infer"
            )
            raise

    def _validate(self, inputs: str, p: Params) -> Plan:
        s = self.s
        best_of = 1 if p.best_of is None else p.best_of
        sampling = p.do_sample or any(v is not None for v in (p.temperature, p.top_k, p.top_p, p.typical_p))
        if best_of > 1 and not sampling:
            raise validation_error("you must use sampling when `best_of` is > 1")
        if p.temperature is not None and p.temperature <= 0:
            raise validation_error("`temperature` must be strictly positive")
        if p.repetition_penalty is not None and p.repetition_penalty <= 0:
            raise validation_error("`repetition_penalty` must be strictly positive")
        if p.frequency_penalty is not None and not -2.0 <= p.frequency_penalty <= 2.0:
            raise validation_error("`frequency_penalty` must be >= -2.0 and <= 2.0")
        if p.top_p is not None and not 0.0 < p.top_p < 1.0:
            raise validation_error("`top_p` must be > 0.0 and < 1.0")
        if p.typical_p is not None and not 0.0 < p.typical_p < 1.0:
            raise validation_error("`typical_p` must be > 0.0 and < 1.0")
        if p.top_k is not None and p.top_k <= 0:
            raise validation_error("`top_k` must be strictly positive")
        if p.max_new_tokens == 0:
            raise validation_error("`max_new_tokens` must be strictly positive")
        if len(p.stop) > s.max_stop_sequences:
            raise validation_error(
                f"`stop` supports up to {s.max_stop_sequences} stop sequences. Given: {len(p.stop)}"
            )
        if p.seed is not None and best_of > 1:
            raise validation_error("`seed` must not be set when `best_of` > 1")
        seed = p.seed if p.seed is not None else random.getrandbits(64)
        top_n = p.top_n_tokens or 0
        if top_n > s.max_top_n_tokens:
            raise validation_error(f"`top_n_tokens` must be >= 0 and <= {s.max_top_n_tokens}. Given: {top_n}")
        if inputs == "":
            raise validation_error("`inputs` cannot be empty")
        if p.truncate is not None and (p.truncate == 0 or p.truncate > s.max_input_tokens):
            raise validation_error(
                f"`truncate` must be strictly positive and less than {s.max_input_tokens}. "
                f"Given: {p.truncate}"
            )
        pieces = tokenize(inputs)
        if p.truncate is not None:
            pieces = pieces[-p.truncate :]
        length = len(pieces)
        max_new = p.max_new_tokens
        if max_new is None:
            max_new = min(max(s.max_total_tokens - length, 0), DEFAULT_GENERATION_LENGTH)
        if length + max_new > s.max_total_tokens:
            raise validation_error(
                f"`inputs` tokens + `max_new_tokens` must be <= {s.max_total_tokens}. "
                f"Given: {length} `inputs` tokens and {max_new} `max_new_tokens`"
            )
        if length > s.max_input_tokens:
            raise validation_error(
                f"`inputs` must have less than {s.max_input_tokens} tokens. Given: {length}"
            )
        schema = None
        if p.grammar is not None and p.grammar.get("type") in {"json", "json_object"}:
            value = p.grammar.get("value")
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError as err:
                    raise validation_error(f"grammar is not valid: {err}") from err
            if not isinstance(value, dict):
                raise validation_error("grammar is not supported")
            if "properties" not in value:
                raise validation_error("grammar is not valid: Grammar must have a 'properties' field")
            schema = value
        self.metrics.observe("tgi_request_input_length", length)
        self.metrics.observe("tgi_request_max_new_tokens", max_new)
        # The shard samples (and reports the seed) when asked to or when a logits warper is active.
        warped = (
            p.temperature not in (None, 1.0)
            or p.top_k not in (None, 0)
            or (p.top_p or 1.0) < 1.0
            or (p.typical_p or 1.0) < 1.0
        )
        return Plan(
            inputs,
            pieces,
            max_new,
            list(p.stop),
            p.do_sample or warped,
            seed,
            top_n,
            p.decoder_input_details,
            schema,
        )

    # -- generation
    def _sleep_token(self) -> None:
        if self.s.token_delay > 0 and self.stopping.wait(self.s.token_delay):
            raise ApiError(500, "Incomplete generation", "incomplete_generation", "incomplete")

    def _check_failure(self, plan: Plan) -> None:
        if FAIL_MAGIC in plan.inputs:
            self.metrics.add("tgi_batch_inference_count", method="prefill")
            self.metrics.add("tgi_request_failure", err="generation")
            message = f"Server error: mock generation failure requested by {FAIL_MAGIC}"
            self.log.error(message, target="text_generation_router_v3::backend")
            raise ApiError(424, f"Request failed during generation: {message}", "generation")

    def _record_success(
        self, start: float, queued: float, inf_start: float, end: float, tokens: int
    ) -> dict[str, str]:
        total, validation, queue, inference = end - start, queued - start, inf_start - queued, end - inf_start
        per_token = inference / max(1, tokens)
        m = self.metrics
        m.add("tgi_request_success")
        for name, value in (
            ("duration", total),
            ("validation_duration", validation),
            ("queue_duration", queue),
            ("inference_duration", inference),
            ("mean_time_per_token_duration", per_token),
            ("generated_tokens", tokens),
        ):
            m.observe(f"tgi_request_{name}", value)
        m.observe("tgi_batch_next_size", 1)
        for method, count in (("prefill", 1), ("decode", tokens - 1)):
            if count > 0:
                m.add("tgi_batch_inference_count", count, method=method)
                m.add("tgi_batch_inference_success", count, method=method)
                for suffix in ("inference", "forward", "decode", "filter"):
                    m.observe(f"tgi_batch_{suffix}_duration", per_token, method=method)
        self.log.info(
            f'Success total_time="{total:.6f}s" validation_time="{validation:.6f}s" '
            f'queue_time="{queue:.6f}s" inference_time="{inference:.6f}s" '
            f'time_per_token="{per_token:.6f}s" generated_tokens={tokens}',
            target="text_generation_router::server",
            span="generate",
        )
        return {
            "x-total-time": str(int(total * 1000)),
            "x-validation-time": str(int(validation * 1000)),
            "x-queue-time": str(int(queue * 1000)),
            "x-inference-time": str(int(inference * 1000)),
            "x-time-per-token": str(int(per_token * 1000)),
            "x-compute-time": repr(total),
        }

    def generate(self, inputs: str, p: Params) -> Outcome:
        """Infer::generate / generate_best_of: permit(s) -> validation -> tokens (TGI order)."""
        start = time.monotonic()
        best_of = p.best_of if p.best_of is not None and p.best_of > 1 else 1
        if best_of > 1:
            if self.s.max_best_of == 1:
                raise validation_error("`best_of` != 1 is not allowed for this endpoint")
            if best_of > self.s.max_best_of:
                raise validation_error(f"`best_of` must be > 0 and <= {self.s.max_best_of}. Given: {best_of}")
        self._acquire(best_of)
        try:
            plans = [self.validate(inputs, p) for _ in range(best_of)]
            queued = time.monotonic()
            self._check_failure(plans[0])
            inf_start = time.monotonic()
            gens = [Generation(self.s.model_id, plan) for plan in plans]
            while any(g.finish_reason is None for g in gens):
                self._sleep_token()
                for g in gens:
                    if g.finish_reason is None:
                        g.step()
            end = time.monotonic()
        finally:
            self._release(best_of)
        best = max(gens, key=lambda g: g.mean_logprob())
        others = [g for g in gens if g is not best]
        seed = best.plan.seed if best.plan.sampling else None
        return Outcome(best, others, best.plan.input_length, seed, start, queued, inf_start, end)

    def stream(
        self, inputs: str, p: Params, details: bool, full_text: bool
    ) -> Iterator[tuple[dict[str, Any], Generation]]:
        """generate_stream_internal: yields (StreamResponse, generation); raises ApiError in-band."""
        start = time.monotonic()
        if (p.best_of if p.best_of is not None else 1) != 1:
            self.metrics.add("tgi_request_failure", err="validation")
            raise validation_error("`best_of` != 1 is not supported when streaming tokens")
        if p.decoder_input_details:
            self.metrics.add("tgi_request_failure", err="validation")
            raise validation_error("`decoder_input_details` == true is not supported when streaming tokens")
        self._acquire()
        try:
            plan = self.validate(inputs, p)
            queued = time.monotonic()
            self._check_failure(plan)
            gen, index = Generation(self.s.model_id, plan), 0
            inf_start = time.monotonic()
            while gen.finish_reason is None:
                self._sleep_token()
                token, tops = gen.step()
                index += 1
                event: dict[str, Any] = {"index": index, "token": token.json()}
                if tops:
                    event["top_tokens"] = [t.json() for t in tops]
                event["generated_text"], event["details"] = None, None
                if gen.finish_reason is not None:
                    self._record_success(start, queued, inf_start, time.monotonic(), len(gen.tokens))
                    event["generated_text"] = (inputs if full_text else "") + gen.text
                    if details:
                        event["details"] = {
                            "finish_reason": gen.finish_reason,
                            "generated_tokens": len(gen.tokens),
                            "seed": plan.seed if plan.sampling else None,
                            "input_length": plan.input_length,
                        }
                yield event, gen
        finally:
            self._release()


# ----------------------------------------------------------------------------------------------- HTTP
def _details(gen: Generation, seed: int | None, with_text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if with_text is not None:
        out["generated_text"] = with_text
    out.update(
        finish_reason=gen.finish_reason,
        generated_tokens=len(gen.tokens),
        seed=seed,
        prefill=gen.prefill(),
        tokens=[t.json() for t in gen.tokens],
    )
    if any(gen.top_tokens):
        out["top_tokens"] = [[t.json() for t in tops] for tops in gen.top_tokens]
    return out


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _openai_finish(reason: str | None) -> str:
    return "stop" if reason == "eos_token" else str(reason)


def chat_template(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
        parts.append(f"<|im_start|>{message.get('role')}\n{content or ''}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: MockTGI, metrics_only: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app, self.metrics_only = app, metrics_only
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), a reverse DNS lookup that can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections end eventually
    # Headers and body are written separately; without TCP_NODELAY the body waits for the
    # client's delayed ACK (~40 ms per response), which real TGI (hyper) does not do.
    disable_nagle_algorithm = True

    @property
    def app(self) -> MockTGI:
        return cast(Server, self.server).app

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence http.server's stderr log
        return

    # -- response helpers
    def _head(self, status: int, headers: Mapping[str, str]) -> None:
        self.responded = True
        self.send_response_only(status)
        self.send_header("date", self.date_time_string())
        if self.headers.get("Origin"):
            self.send_header("access-control-allow-origin", "*")
            self.send_header("vary", "origin, access-control-request-method, access-control-request-headers")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        all_headers = dict(headers or {})
        if content_type:
            all_headers["content-type"] = content_type
        all_headers["content-length"] = str(len(body))
        self._head(status, all_headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self.send(status, body, "application/json", headers)

    def send_error_json(self, err: ApiError) -> None:
        if err.status == 503:
            self.send_json(503, UNHEALTHY)
        else:
            self.send_json(err.status, err.body())

    def sse(self, events: Iterator[str], headers: Mapping[str, str]) -> None:
        """axum Sse: `data: ...\\n\\n` per event, chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
        chunked = self.request_version != "HTTP/1.0"
        all_headers = {"content-type": "text/event-stream", "cache-control": "no-cache", **headers}
        if chunked:
            all_headers["transfer-encoding"] = "chunked"
        else:
            self.close_connection = True
        self._head(200, all_headers)
        try:
            for data in events:
                payload = f"data: {data}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    # -- request plumbing
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > self.app.s.payload_limit:
                    self.close_connection = True
                    raise Rejection(413, "Failed to buffer the request body: length limit exceeded")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise Rejection(400, "Bad Request") from None
        if length > self.app.s.payload_limit:
            self.close_connection = True
            raise Rejection(413, "Failed to buffer the request body: length limit exceeded")
        return self.rfile.read(length) if length > 0 else b""

    def _json(self, raw: bytes) -> tuple[Any, Body]:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not (
            ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))
        ):
            raise Rejection(415, "Expected request with `Content-Type: application/json`")
        text = raw.decode("utf-8", errors="replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            kind = {
                "Expecting value": "expected value",
                "Extra data": "trailing characters",
                "Expecting property name enclosed in double quotes": "key must be a string",
            }.get(err.msg, "EOF while parsing a value" if err.pos >= len(text) else "expected value")
            raise Rejection(
                400,
                f"Failed to parse the request body as JSON: {kind} at line {err.lineno} column {err.colno}",
            ) from err
        return data, Body(text)

    def _authorized(self) -> bool:
        key = self.app.s.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization")
        return given is not None and given.lower() == f"Bearer {key}".lower()

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def do_OPTIONS(self) -> None:
        self._read_body()
        self.send(
            200,
            headers={
                "access-control-allow-origin": "*",
                "access-control-allow-methods": "GET,POST",
                "access-control-allow-headers": "content-type",
            },
        )

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        method = "GET" if self.command == "HEAD" else self.command
        get_routes: dict[str, Callable[[], None]] = {
            "/": self.health,
            "/health": self.health,
            "/ping": self.health,
            "/info": self.route_info,
            "/metrics": self.route_metrics,
            "/v1/models": self.route_models,
            "/mock/state": self.route_state,
            "/docs": self.route_docs,
            "/api-doc/openapi.json": self.route_openapi,
        }
        post_routes: dict[str, Callable[[Any, Body], None]] = {
            "/": self.route_compat,
            "/generate": self.route_generate,
            "/generate_stream": self.route_stream,
            "/v1/chat/completions": self.route_chat,
            "/v1/completions": self.route_completions,
            "/invocations": self.route_invocations,
            "/vertex": self.route_vertex,
            "/tokenize": self.route_tokenize,
            "/chat_tokenize": self.route_chat_tokenize,
        }
        if cast(Server, self.server).metrics_only:
            get_routes, post_routes = {"/metrics": self.route_metrics}, {}
        self.responded = False
        try:
            raw = self._read_body()
            if path in PROTECTED and not (path == "/" and method == "GET") and not self._authorized():
                self.send(401)
            elif method == "GET" and path in get_routes:
                get_routes[path]()
            elif method == "POST" and path in post_routes:
                data, body = self._json(raw)
                if path not in {"/tokenize", "/chat_tokenize"} and not self.app.healthy():
                    self.send_json(503, UNHEALTHY)
                else:
                    post_routes[path](data, body)
            elif path in get_routes or path in post_routes:
                allow = ",".join(
                    m for m, routes in (("GET,HEAD", get_routes), ("POST", post_routes)) if path in routes
                )
                self.send(405, headers={"allow": allow})
            else:
                self.send(404)
        except Rejection as rej:
            self.send(rej.status, rej.text.encode(), "text/plain; charset=utf-8")
        except ApiError as err:
            self.send_error_json(err)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a mock bug must not look like a dropped connection
            self.app.log.error(f"mock internal error on {self.command} {path}: {exc!r}")
            self.close_connection = True
            if not self.responded:
                self.send_json(500, {"error": f"mock internal error: {exc!r}", "error_type": "mock_internal"})

    # -- informational routes
    def health(self) -> None:
        if self.app.healthy():
            self.send(200)
        else:
            self.send_json(503, UNHEALTHY)

    def route_info(self) -> None:
        self.send_json(200, self.app.info())

    def route_models(self) -> None:
        model = self.app.s.model_id
        self.send_json(
            200,
            {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": model}]},
        )

    def route_metrics(self) -> None:
        self.send(200, self.app.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def route_state(self) -> None:
        self.send_json(200, self.app.state())

    def route_docs(self) -> None:
        html = (
            "<!doctype html><title>Text Generation Inference</title><a href=/api-doc/openapi.json>OpenAPI</a>"
        )
        self.send(200, html.encode(), "text/html; charset=utf-8")

    def route_openapi(self) -> None:
        paths = {p: {"post": {"tags": ["Text Generation Inference"]}} for p in sorted(PROTECTED)}
        self.send_json(
            200,
            {
                "openapi": "3.0.3",
                "info": {
                    "title": "Text Generation Inference",
                    "license": {"name": "Apache 2.0"},
                    "version": TGI_VERSION,
                },
                "paths": paths,
            },
        )

    # -- generation routes
    def _compute_headers(self, inputs: list[str]) -> dict[str, str]:
        return {
            "x-compute-type": self.app.s.compute_type,
            "x-compute-characters": str(sum(len(i) for i in inputs)),
        }

    def _generate_json(self, inputs: str, p: Params) -> tuple[dict[str, Any], dict[str, str], Outcome]:
        """generate_internal: the GenerateResponse and its x-* headers."""
        app = self.app
        app.metrics.add("tgi_request_count")
        outcome = app.generate(inputs, p)
        best = outcome.best
        prefix = inputs if p.return_full_text else ""
        response: dict[str, Any] = {"generated_text": prefix + best.text}
        if p.details or p.decoder_input_details:
            details = _details(best, outcome.seed)
            if outcome.others:
                details["best_of_sequences"] = [
                    _details(g, g.plan.seed if g.plan.sampling else None, prefix + g.text)
                    for g in outcome.others
                ]
            response["details"] = details
        headers = self._compute_headers([inputs])
        headers.update(
            app._record_success(
                outcome.start, outcome.queued, outcome.inference_start, outcome.end, len(best.tokens)
            )
        )
        headers["x-prompt-tokens"] = str(outcome.input_length)
        headers["x-generated-tokens"] = str(len(best.tokens))
        return response, headers, outcome

    def route_generate(self, data: Any, body: Body) -> None:
        inputs, params, _ = parse_generate(body, data)
        response, headers, _ = self._generate_json(inputs, params)
        self.send_json(200, response, headers)

    def route_compat(self, data: Any, body: Body) -> None:
        inputs, params, stream = parse_generate(body, data, "CompatGenerateRequest")
        if params.return_full_text is None:
            params.return_full_text = True  # pipeline_tag is text-generation
        if stream:
            self._stream_generate(inputs, params)
        else:
            response, headers, _ = self._generate_json(inputs, params)
            self.send_json(200, [response], headers)

    def route_stream(self, data: Any, body: Body) -> None:
        inputs, params, _ = parse_generate(body, data)
        self._stream_generate(inputs, params)

    def _stream_generate(self, inputs: str, params: Params) -> None:
        self.app.metrics.add("tgi_request_count")

        def events() -> Iterator[str]:
            try:
                for event, _ in self.app.stream(
                    inputs, params, params.details, bool(params.return_full_text)
                ):
                    yield json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            except ApiError as err:
                yield json.dumps(err.body(), ensure_ascii=False, separators=(",", ":"))

        self.sse(events(), {**self._compute_headers([inputs]), "x-accel-buffering": "no"})

    def _chat_request(self, data: Any, body: Body) -> tuple[str, Params, dict[str, Any]]:
        """ChatRequest::try_into_generate."""
        obj = body.obj(data, "", "ChatRequest")
        messages = obj.get("messages")
        if "messages" not in obj:
            raise body.fail("", "missing field `messages`")
        if not isinstance(messages, list):
            raise body.fail("messages", f"invalid type: {_unexpected(messages)}, expected a sequence")
        for i, message in enumerate(messages):
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not (isinstance(message.get("content"), str | list) or message.get("tool_calls"))
            ):
                raise body.fail(
                    f"messages[{i}]", "data did not match any variant of untagged enum MessageBody"
                )
        get = body.get
        temperature = get(obj, "temperature", "f32")
        presence = get(obj, "presence_penalty", "f32")
        top_logprobs = get(obj, "top_logprobs", "u32")
        response_format = get(obj, "response_format", "map")
        params = Params(
            temperature=None if temperature == 0.0 else temperature,
            do_sample=temperature != 0.0,
            repetition_penalty=None if presence is None else presence + 2.0,
            frequency_penalty=get(obj, "frequency_penalty", "f32"),
            top_p=get(obj, "top_p", "f32"),
            max_new_tokens=_or(get(obj, "max_tokens", "u32"), 100),
            stop=get(obj, "stop", "vec_str") or [],
            seed=get(obj, "seed", "u64"),
            details=True,
            top_n_tokens=top_logprobs,
            grammar=response_format,
        )
        options = {
            "stream": bool(get(obj, "stream", "bool", nullable=False, default=False)),
            "logprobs": bool(get(obj, "logprobs", "bool")),
            "include_usage": bool((get(obj, "stream_options", "map") or {}).get("include_usage")),
        }
        params.decoder_input_details = not options["stream"]
        return chat_template(messages), params, options

    def route_chat(self, data: Any, body: Body) -> None:
        app = self.app
        app.metrics.add("tgi_request_count")
        inputs, params, opts = self._chat_request(data, body)
        model, now = app.s.model_id, int(time.time())
        base = {"id": "", "created": now, "model": model, "system_fingerprint": SYSTEM_FINGERPRINT}
        if not opts["stream"]:
            response, headers, outcome = self._generate_json(inputs, params)
            gen = outcome.best
            logprobs = None
            if opts["logprobs"]:
                logprobs = {
                    "content": [
                        {
                            "token": t.text,
                            "logprob": t.logprob,
                            "top_logprobs": [{"token": x.text, "logprob": x.logprob} for x in tops],
                        }
                        for t, tops in zip(gen.tokens, gen.top_tokens, strict=False)
                    ]
                }
            usage = {
                "prompt_tokens": len(gen.prefill()),
                "completion_tokens": len(gen.tokens),
                "total_tokens": len(gen.prefill()) + len(gen.tokens),
            }
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": response["generated_text"]},
                "logprobs": logprobs,
                "finish_reason": _openai_finish(gen.finish_reason),
            }
            self.send_json(
                200, {"object": "chat.completion", **base, "choices": [choice], "usage": usage}, headers
            )
            return
        app.metrics.add("tgi_request_count")

        def events() -> Iterator[str]:
            try:
                for event, _ in app.stream(inputs, params, True, False):
                    token, details = event["token"], event["details"]
                    logprobs = None
                    if opts["logprobs"]:
                        logprobs = {
                            "content": [
                                {
                                    "token": token["text"],
                                    "logprob": token["logprob"],
                                    "top_logprobs": [
                                        {"token": t["text"], "logprob": t["logprob"]}
                                        for t in event.get("top_tokens", [])
                                    ],
                                }
                            ]
                        }
                    delta = {"role": "assistant", "content": "" if token["special"] else token["text"]}
                    choice = {
                        "index": 0,
                        "delta": delta,
                        "logprobs": logprobs,
                        "finish_reason": _openai_finish(details["finish_reason"]) if details else None,
                    }
                    chunk = {"object": "chat.completion.chunk", **base, "choices": [choice], "usage": None}
                    yield json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
                    if details and opts["include_usage"]:
                        usage = {
                            "prompt_tokens": details["input_length"],
                            "completion_tokens": details["generated_tokens"],
                            "total_tokens": details["input_length"] + details["generated_tokens"],
                        }
                        yield json.dumps(
                            {"object": "chat.completion.chunk", **base, "choices": [], "usage": usage},
                            separators=(",", ":"),
                        )
            except ApiError as err:
                yield json.dumps(
                    {"error": {"message": err.error, "http_status_code": 422}},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
            yield "[DONE]"

        self.sse(events(), {**self._compute_headers([inputs]), "x-accel-buffering": "no"})

    def route_completions(self, data: Any, body: Body) -> None:
        app = self.app
        app.metrics.add("tgi_request_count")
        obj = body.obj(data, "", "CompletionRequest")
        if "prompt" not in obj:
            raise body.fail("", "missing field `prompt`")
        prompt = obj["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise body.fail("prompt", "data did not match any variant of untagged enum PromptDeserializer")
        if not prompts:
            raise body.fail("prompt", "Empty array detected. Do not use an empty array for the prompt.")
        get = body.get
        temperature = get(obj, "temperature", "f32")
        stream = bool(get(obj, "stream", "bool", nullable=False, default=False))
        if get(obj, "suffix", "str") is not None:
            app.metrics.add("tgi_request_failure", err="validation")
            raise ApiError(
                422,
                "Suffix is not supported and can be achieved by preprocessing the prompt.",
                "suffix not supported",
            )
        if len(prompts) > app.s.max_client_batch_size:
            app.metrics.add("tgi_request_failure", err="validation")
            raise ApiError(
                422,
                f"Number of prompts exceeds the maximum allowed batch size of {app.s.max_client_batch_size}",
                "batch size exceeded",
            )

        def params() -> Params:
            return Params(
                temperature=None if temperature == 0.0 else temperature,
                do_sample=temperature != 0.0,
                repetition_penalty=get(obj, "repetition_penalty", "f32"),
                frequency_penalty=get(obj, "frequency_penalty", "f32"),
                top_p=get(obj, "top_p", "f32"),
                max_new_tokens=_or(get(obj, "max_tokens", "u32"), 100),
                stop=get(obj, "stop", "vec_str") or [],
                details=True,
                decoder_input_details=not stream,
                seed=get(obj, "seed", "u64"),
            )

        model, now = app.s.model_id, int(time.time())
        base = {"id": "", "created": now, "model": model, "system_fingerprint": SYSTEM_FINGERPRINT}
        if not stream:
            choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            headers: dict[str, str] = {}
            for index, text in enumerate(prompts):
                response, one_headers, outcome = self._generate_json(text, params())
                gen = outcome.best
                for key, value in one_headers.items():
                    headers[key] = (
                        value
                        if key in {"x-compute-type", "x-compute-time"}
                        else str(int(headers.get(key, "0")) + int(value))
                    )
                usage["prompt_tokens"] += len(gen.prefill())
                usage["completion_tokens"] += len(gen.tokens)
                choices.append(
                    {
                        "index": index,
                        "text": response["generated_text"],
                        "logprobs": None,
                        "finish_reason": _openai_finish(gen.finish_reason),
                    }
                )
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self.send_json(
                200, {"object": "text_completion", **base, "choices": choices, "usage": usage}, headers
            )
            return

        def events() -> Iterator[str]:
            for index, text in enumerate(prompts):
                app.metrics.add("tgi_request_count")
                try:
                    for event, _ in app.stream(text, params(), True, False):
                        details = event["details"]
                        choice = {
                            "index": index,
                            "text": event["token"]["text"],
                            "logprobs": None,
                            "finish_reason": details["finish_reason"] if details else "",
                        }
                        if details:
                            usage = {
                                "prompt_tokens": details["input_length"],
                                "completion_tokens": details["generated_tokens"],
                                "total_tokens": details["input_length"] + details["generated_tokens"],
                            }
                            out = {"object": "text_completion", **base, "choices": [choice], "usage": usage}
                        else:
                            out = {
                                "object": "text_completion",
                                "id": "",
                                "created": now,
                                "choices": [choice],
                                "model": model,
                                "system_fingerprint": SYSTEM_FINGERPRINT,
                            }
                        yield json.dumps(out, ensure_ascii=False, separators=(",", ":"))
                except ApiError as err:
                    yield json.dumps(err.body(), ensure_ascii=False, separators=(",", ":"))
            yield "[DONE]"

        self.sse(events(), {**self._compute_headers(prompts), "x-accel-buffering": "no"})

    def route_invocations(self, data: Any, body: Body) -> None:
        """SageMaker route: dispatch on the request shape."""
        if isinstance(data, dict) and "messages" in data:
            self.route_chat(data, body)
        elif isinstance(data, dict) and "prompt" in data:
            self.route_completions(data, body)
        else:
            self.route_compat(data, body)

    def route_vertex(self, data: Any, body: Body) -> None:
        obj = body.obj(data, "", "VertexRequest")
        instances = obj.get("instances")
        if not isinstance(instances, list):
            raise body.fail("", "missing field `instances`")
        predictions = []
        for i, instance in enumerate(instances):
            inputs, params, _ = parse_generate(body, instance, f"instances[{i}]")
            response, _, _ = self._generate_json(inputs, params)
            predictions.append(response["generated_text"])
        self.send_json(200, {"predictions": predictions})

    def route_tokenize(self, data: Any, body: Body) -> None:
        inputs, _, _ = parse_generate(body, data)
        self.send_json(
            200,
            [
                {"id": p.id, "text": inputs[p.start : p.stop], "start": p.start, "stop": p.stop}
                for p in tokenize(inputs)
            ],
        )

    def route_chat_tokenize(self, data: Any, body: Body) -> None:
        self.app.metrics.add("tgi_request_count")
        inputs, _, _ = self._chat_request(data, body)
        tokens = [
            {"id": p.id, "text": inputs[p.start : p.stop], "start": p.start, "stop": p.stop}
            for p in tokenize(inputs)
        ]
        self.send_json(200, {"tokenize_response": tokens, "templated_text": inputs})


# ----------------------------------------------------------------------------------------------- main
def token_fingerprint(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(sha256 prefix, variable name) of HF_TOKEN, falling back to HUGGING_FACE_HUB_TOKEN like the router."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = env.get(name)
        if value:
            return hashlib.sha256(value.encode()).hexdigest()[:12], name
    return None, None


def _load(app: MockTGI, store: ModelStore, stop: threading.Event) -> None:
    """Background start-up: download (when not cached), shard load, then ready."""
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
            log.info("Download file: model.safetensors", span="download")
            store.download()
            log.info(f"Successfully downloaded weights for {s.model_id}", span="download")
        log.info("Starting shard rank=0", span="shard-manager")
        if s.never_ready:
            log.warn(
                "TGI_MOCK_NEVER_READY=1: the shard will never become ready; /health stays 503",
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
        log.info("Connected", target="text_generation_router::server")
        app.ready.set()
    except OSError as err:
        log.error(f"Download encountered an error: {err}", span="download")
        app.exit_code = 1
        stop.set()


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
    try:
        server = Server((host, settings.port), app)
    except OSError as err:
        log.error(f"Webserver Crashed: cannot bind {host}:{settings.port}: {err.strerror or err}")
        return 1
    servers = [server]
    if settings.prometheus_port and settings.prometheus_port != settings.port:
        try:
            servers.append(Server((host, settings.prometheus_port), app, metrics_only=True))
        except OSError as err:
            log.warn(f"Cannot serve metrics on port {settings.prometheus_port}: {err.strerror or err}")
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    log.info(f"Listening on {host}:{settings.port}", target="text_generation_router::server")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            os._exit(0)
        log.info(f"Received {signal.Signals(signum).name}, terminating")
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_load, args=(app, store, stop), daemon=True).start()
    while not stop.wait(0.2):
        pass
    app.stopping.set()
    log.info("Terminating webserver")
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    log.info("webserver terminated")
    log.info("Shutting down shards")
    return app.exit_code


if __name__ == "__main__":
    sys.exit(main())
