"""Test-script globals like the NixOS test driver's: `subtest`, `start_all`, the machines by name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import log
from .machine import Machine


@contextmanager
def subtest(name: str) -> Iterator[None]:
    """Group the checks of one scenario step; logs its duration, and its name when it fails."""
    t0 = time.monotonic()
    log(f"subtest: {name}")
    try:
        yield
    except BaseException:
        log(f"subtest failed: {name} (after {time.monotonic() - t0:.1f} s)")
        raise
    log(f"subtest ok: {name} ({time.monotonic() - t0:.1f} s)")


def start_all(*machines: Machine) -> None:
    for m in machines:
        m.start()


def script_globals(machines: list[Machine]) -> dict[str, Any]:
    """What a NixOS test script sees: each machine by name (`machine` if there is one), helpers."""
    env: dict[str, Any] = {m.name: m for m in machines}
    env.update(
        machines=machines,
        subtest=subtest,
        start_all=lambda: start_all(*machines),
        join_all=lambda: None,
    )
    if len(machines) == 1:
        env.setdefault("machine", machines[0])
    return env


def run_test_script(script: str | Path, machines: list[Machine]) -> None:
    """Run a NixOS-style test script (source text or a file) against booted-on-demand machines."""
    source = Path(script).read_text() if isinstance(script, Path) else script
    filename = str(script) if isinstance(script, Path) else "<test script>"
    exec(compile(source, filename, "exec"), script_globals(machines))  # noqa: S102 - it is the test script
