"""The Hugging Face Hub as the mock sees it: the cache layout, the Hub's refusals, and a simulated,
resumable download.

The cache is the real hub layout (huggingface_hub's `file_download`), so du, doctor and the model unit
measure it as they would a real one:

    $HF_HOME/hub/models--<org>--<name>/
        blobs/<etag>                 a finished file; blobs/<etag>.incomplete while it downloads
        refs/<revision>              the commit sha the revision points to
        snapshots/<sha>/<file>       symlink to ../../blobs/<etag>
        .tgi-mock-complete           mock-only: written last, lists the files (the "complete" test)

Environment (names as huggingface_hub and the mock images read them):
  HF_HUB_OFFLINE=1           never contact the Hub; a model that is not complete in the cache fails
  HF_ENDPOINT                when set, the Hub's address: a TCP connection to it must open first
  HF_TOKEN / HUGGING_FACE_HUB_TOKEN   needed for the model ids listed in TGI_MOCK_GATED (comma-separated)
  TGI_MOCK_MODEL_BYTES       total size of the weight files (default 32 MiB)
  TGI_MOCK_DOWNLOAD_RATE     bytes per second (default 8 MiB/s; 0: as fast as the disk)
  TGI_MOCK_DOWNLOAD_STALL_AFTER   after that many bytes (in one process) no byte more arrives, ever
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

from .constants import DEFAULT_MAX_POSITIONS, DOWNLOADS_NAME, MARKER_NAME, VOCAB

DEFAULT_MODEL_BYTES = 32 * 1024 * 1024
DEFAULT_DOWNLOAD_RATE = 8 * 1024 * 1024
WEIGHT_FILES = 4
HUB_CONNECT_TIMEOUT = 5.0
PUBLIC_ENDPOINT = "https://huggingface.co"
_PATTERN_BYTES = 65536  # the content repeats with this period, so any offset can be resumed


class HubError(Exception):
    """A refusal the way huggingface_hub raises it: `kind` is the exception's name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def offline(env: Mapping[str, str]) -> bool:
    return truthy(env.get("HF_HUB_OFFLINE"))


def token(env: Mapping[str, str]) -> str | None:
    """HF_TOKEN, falling back to HUGGING_FACE_HUB_TOKEN as huggingface_hub does; empty counts as unset."""
    return env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None


def env_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HubError("ValueError", f"{name}={raw!r} is not a whole number of bytes") from None
    if value < 0:
        raise HubError("ValueError", f"{name}={raw!r} must be >= 0")
    return value


def hub_cache_root(env: Mapping[str, str], override: str | None = None) -> Path:
    """Where huggingface_hub keeps repositories: an explicit cache, else $HF_HOME/hub (/data in the image)."""
    explicit = override or env.get("HUGGINGFACE_HUB_CACHE") or env.get("HF_HUB_CACHE")
    return Path(explicit) if explicit else Path(env.get("HF_HOME", "/data")) / "hub"


def model_sha(model_id: str, revision: str | None) -> str:
    return hashlib.sha1(f"{model_id}@{revision or 'main'}".encode()).hexdigest()


def weight_plan(total: int) -> list[tuple[str, int]]:
    """TGI's sharded safetensors names, the bytes split as evenly as they go."""
    count = max(1, min(WEIGHT_FILES, total))
    base, extra = divmod(total, count)
    return [
        (f"model-{k:05d}-of-{count:05d}.safetensors", base + (1 if k <= extra else 0)) for k in range(1, count + 1)
    ]


def reach_hub(env: Mapping[str, str]) -> None:
    """Open (and close) a TCP connection to HF_ENDPOINT when it is set; raises HubError when it cannot."""
    endpoint = env.get("HF_ENDPOINT", "").strip()
    if not endpoint:
        return
    parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    host = parsed.hostname or ""
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        port = -1
    if not host or port < 0:
        raise HubError("ValueError", f"HF_ENDPOINT={endpoint!r} is not a URL such as http://host:port")
    try:
        socket.create_connection((host, port), timeout=HUB_CONNECT_TIMEOUT).close()
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise HubError(
            "requests.exceptions.ConnectionError",
            f"Cannot reach the Hub at {endpoint} ({host}:{port}: {reason}). Please check your connection "
            "and try again or make sure your Internet connection is on.",
        ) from None


def check_access(model_id: str, revision: str | None, env: Mapping[str, str]) -> None:
    """A model listed in TGI_MOCK_GATED needs a token, as the Hub answers 401 without one."""
    gated = {m.strip() for m in env.get("TGI_MOCK_GATED", "").split(",") if m.strip()}
    if model_id in gated and token(env) is None:
        endpoint = env.get("HF_ENDPOINT", "").strip() or PUBLIC_ENDPOINT
        raise HubError(
            "huggingface_hub.errors.GatedRepoError",
            f"401 Client Error. Cannot access gated repo for url {endpoint}/{model_id}/resolve/"
            f"{revision or 'main'}/config.json. Access to model {model_id} is restricted. You must have access "
            "to it and be authenticated to access it. Please log in.",
        )


def _pattern(name: str) -> bytes:
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (_PATTERN_BYTES // len(seed) + 1))[:_PATTERN_BYTES]


def expected_bytes(name: str, start: int, end: int) -> bytes:
    """The content of file `name` between two offsets (deterministic, so a resumed file is whole)."""
    pattern = _pattern(name)
    out = bytearray()
    offset = start
    while offset < end:
        at = offset % _PATTERN_BYTES
        piece = pattern[at : at + min(_PATTERN_BYTES - at, end - offset)]
        out += piece
        offset += len(piece)
    return bytes(out)


class Stopped(Exception):
    """The download was asked to stop (SIGTERM in the launcher)."""


class HubCache:
    """One model in one cache: `root` is the hub cache folder ($HF_HOME/hub)."""

    def __init__(self, root: Path, model_id: str, revision: str | None) -> None:
        self.root, self.model_id, self.revision = root, model_id, revision
        self.sha = model_sha(model_id, revision)
        self.repo = root / ("models--" + model_id.replace("/", "--"))
        self.snapshot = self.repo / "snapshots" / self.sha
        self.marker = self.repo / MARKER_NAME

    def etag(self, name: str) -> str:
        return hashlib.sha256(f"{self.model_id}@{self.sha}/{name}".encode()).hexdigest()

    def blob(self, name: str) -> Path:
        return self.repo / "blobs" / self.etag(name)

    def has(self, name: str) -> bool:
        return (self.snapshot / name).is_file()

    def complete(self) -> bool:
        """Every file the finished download listed is in the snapshot (follows the symlinks)."""
        try:
            files = json.loads(self.marker.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return isinstance(files, list) and all(isinstance(n, str) and self.has(n) for n in files)

    def downloads(self) -> int:
        try:
            return int((self.root / DOWNLOADS_NAME).read_text().strip() or "0")
        except (OSError, ValueError):
            return 0

    def check_writable(self) -> None:
        """Raises OSError when the cache cannot take files."""
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".tgi-mock-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()

    def _link(self, name: str) -> None:
        link = self.snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("..") / ".." / "blobs" / self.etag(name))

    def _small_file(self, name: str, text: str) -> None:
        blob = self.blob(name)
        blob.parent.mkdir(parents=True, exist_ok=True)
        partial = blob.with_name(blob.name + ".incomplete")
        partial.write_text(text)
        partial.replace(blob)
        self._link(name)

    def download(
        self,
        env: Mapping[str, str],
        info: Callable[[str], None],
        stop: threading.Event | None = None,
    ) -> int:
        """Fetch what is missing (resuming partial files) and mark the model complete; returns the bytes
        fetched by this call. Raises HubError, OSError, or Stopped when `stop` is set."""
        total = env_int(env, "TGI_MOCK_MODEL_BYTES", DEFAULT_MODEL_BYTES) or 0
        rate = env_int(env, "TGI_MOCK_DOWNLOAD_RATE", DEFAULT_DOWNLOAD_RATE) or 0
        stall_after = env_int(env, "TGI_MOCK_DOWNLOAD_STALL_AFTER", None)
        waiter = stop or threading.Event()
        plan = weight_plan(max(1, total))
        (self.repo / "blobs").mkdir(parents=True, exist_ok=True)
        (self.repo / "refs").mkdir(exist_ok=True)
        (self.repo / "refs" / (self.revision or "main")).write_text(self.sha)
        if not self.has("config.json"):
            config = {
                "architectures": ["MockForCausalLM"],
                "model_type": "mock",
                "max_position_embeddings": DEFAULT_MAX_POSITIONS,
                "vocab_size": VOCAB,
                "_name_or_path": self.model_id,
            }
            self._small_file("config.json", json.dumps(config, indent=2) + "\n")
        started = time.monotonic()
        fetched = 0

        def pace() -> None:
            """Hold the rate; hang for good once the stall point is passed."""
            if stall_after is not None and fetched >= stall_after:
                while not waiter.wait(3600):
                    pass
                raise Stopped
            if rate and waiter.wait(max(0.0, started + fetched / rate - time.monotonic())):
                raise Stopped
            if waiter.is_set():
                raise Stopped

        for index, (name, size) in enumerate(plan, 1):
            if self.has(name) and (self.snapshot / name).stat().st_size == size:
                info(f"File {name} already present in cache.")
            else:
                blob = self.blob(name)
                partial = blob.with_name(blob.name + ".incomplete")
                have = min(partial.stat().st_size, size) if partial.exists() else 0
                info(f"Download file: {name}")
                if have:
                    info(f"Resuming download of {name} from byte {have} of {size} ({partial})")
                file_started = time.monotonic()
                with partial.open("r+b" if partial.exists() else "wb") as out:
                    out.seek(have)
                    out.truncate()
                    chunk = max(4096, min(1 << 20, rate // 20 if rate else 1 << 20))
                    while have < size:
                        step = min(chunk, size - have)
                        if stall_after is not None:
                            step = min(step, max(0, stall_after - fetched))
                        if step:
                            out.write(expected_bytes(name, have, have + step))
                            out.flush()
                            have += step
                            fetched += step
                        pace()
                partial.replace(blob)
                self._link(name)
                seconds = int(time.monotonic() - file_started)
                info(f"Downloaded {self.snapshot / name} in {timedelta(seconds=seconds)}.")
            elapsed = timedelta(seconds=int(time.monotonic() - started))
            remaining = len(plan) - index
            eta = (elapsed / index) * remaining if remaining else 0
            info(f"Download: [{index}/{len(plan)}] -- ETA: {eta}")
        files = ["config.json", *(name for name, _ in plan)]
        self.marker.write_text(
            json.dumps({"model_id": self.model_id, "sha": self.sha, "files": files, "completed_at": time.time()})
            + "\n"
        )
        if fetched:
            (self.root / DOWNLOADS_NAME).write_text(f"{self.downloads() + 1}\n")
        info(f"Fetched {fetched} bytes from the Hub in this run.")
        return fetched


def preflight(cache: HubCache, env: Mapping[str, str]) -> bool:
    """What TGI's download step checks before any byte: offline, only the cache counts; online, the Hub
    is asked first (TGI lists the repository's files even when they are cached, so a Hub outage fails a
    restart: TGI #1754); a gated model needs a token. True when bytes must be fetched; raises HubError."""
    if offline(env):
        if not cache.complete():
            raise HubError(
                "huggingface_hub.errors.LocalEntryNotFoundError",
                f"Model {cache.model_id} (revision {cache.revision or 'main'}) is not in the cache {cache.root} "
                "and outgoing traffic has been disabled (HF_HUB_OFFLINE=1). To enable hf.co look-ups and "
                "downloads online, unset HF_HUB_OFFLINE.",
            )
        return False
    reach_hub(env)
    if cache.complete():
        return False
    check_access(cache.model_id, cache.revision, env)
    return True
