"""The fake model download into the Hugging Face cache."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from .constants import DEFAULT_MAX_POSITIONS, DOWNLOADS_NAME, MARKER_NAME, VOCAB
from .launcher import LauncherError, Settings
from .logger import Logger


def model_sha(model_id: str, revision: str | None) -> str:
    return hashlib.sha1(f"{model_id}@{revision or 'main'}".encode()).hexdigest()


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
