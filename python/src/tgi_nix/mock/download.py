"""The launcher's download step: what `text-generation-launcher` runs (`download-weights`) before the
shards, with the same code as the mock's `text-generation-server download-weights` (hub.py)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from .hub import HubCache, HubError, model_sha, preflight
from .launcher import LauncherError, Settings
from .logger import Logger

__all__ = ["ModelStore", "model_sha"]


class ModelStore:
    """The instance's model in the hub cache (hub.py has the layout)."""

    def __init__(self, settings: Settings, logger: Logger) -> None:
        self.s, self.log = settings, logger
        self.cache = HubCache(settings.cache_root, settings.model_id, settings.revision)
        self.model_dir = self.cache.repo
        self.sha = self.cache.sha
        self.cached = False
        self.needs_download = False

    def check(self, env: Mapping[str, str]) -> None:
        """Everything decided before the first byte (offline, the Hub's reachability, a gated model's
        token, a writable cache); raises LauncherError("DownloadError") as TGI's launcher fails."""
        if self.s.local_model:
            if not Path(self.s.model_id).exists():
                raise LauncherError(
                    f"Model path {self.s.model_id} does not exist (local weights must be mounted)",
                    "DownloadError",
                )
            return
        try:
            self.needs_download = preflight(self.cache, env)
        except HubError as err:
            raise LauncherError(f"{err.kind}: {err}", "DownloadError") from None
        self.cached = not self.needs_download
        if not self.needs_download:
            return
        try:
            self.cache.check_writable()
        except OSError as err:
            raise LauncherError(
                f"The Hugging Face cache directory {self.s.cache_root} is not writable: {err.strerror or err}",
                "DownloadError",
            ) from err

    def downloads(self) -> int:
        return self.cache.downloads()

    def download(self, env: Mapping[str, str], stop: threading.Event) -> int:
        """The missing bytes (resumed where a killed download stopped); raises HubError, OSError,
        hub.Stopped."""
        return self.cache.download(env, lambda message: self.log.info(message, span="download"), stop)
