"""Snapshot helper: compare rendered text with tests/snapshots/<name>; UPDATE_SNAPSHOTS=1 rewrites."""

from __future__ import annotations

import os
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.is_file(), f"no snapshot {path}; run the tests with UPDATE_SNAPSHOTS=1 and review the diff"
    expected = path.read_text()
    assert text == expected, f"{name} differs from its snapshot; if intended, rerun with UPDATE_SNAPSHOTS=1"
