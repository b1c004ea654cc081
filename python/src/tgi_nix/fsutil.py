"""Atomic writes: a failed command never leaves a half-written file or touches an existing one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `text` to a temp file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_tree_atomic(target: Path, files: Mapping[str, str], executable: Collection[str] = ()) -> None:
    """Write relative paths -> contents under `target` (mode 0755 for the paths in `executable`,
    else 0644).

    A new directory appears complete or not at all (built beside it, then renamed); into an existing
    directory every file is replaced atomically, and files not named in `files` are left alone.
    """
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            for rel, text in files.items():
                dest = staging / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text, encoding="utf-8")
                dest.chmod(0o755 if rel in executable else 0o644)
            staging.chmod(0o755)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return
    for rel, text in files.items():
        write_atomic(target / rel, text, 0o755 if rel in executable else 0o644)
