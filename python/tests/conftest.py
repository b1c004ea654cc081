"""Shared fixtures (the repository root and the example specs) and the CI guard for VM tests."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def write_spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write TOML text to a spec file in a temp dir and return its path."""

    def _write(text: str, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A VM test whose QEMU died under it (MachineCrashed: a guest kernel panic under TCG, or the
    host killing QEMU) runs once more on a freshly booted machine. Only that error: a failed check,
    a timeout or a boot that never reaches the shell fails at once. The rerun shows as `R` and in
    the summary, and the first attempt's error (QEMU's status, the console's last lines) is kept."""
    for item in items:
        if item.get_closest_marker("vm") is not None:
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=["MachineCrashed"]))


_RERUNS: list[pytest.TestReport] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.outcome == "rerun":  # type: ignore[comparison-overlap]
        _RERUNS.append(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Why a VM test was rerun (QEMU's status, the panic on the console), even when the rerun passed."""
    for report in _RERUNS:
        terminalreporter.section(f"rerun after QEMU died: {report.nodeid}", sep="-")
        terminalreporter.write_line(report.longreprtext[-6000:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """Under CI=true a VM test that skips (a missing tool, not root, anything) fails instead: a
    skipped VM test in CI would pass the run without testing what it promises. The one guard for
    every test file; on a developer machine the skip stays a skip."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and os.environ.get("CI") == "true"
        and item.get_closest_marker("vm") is not None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"VM test skipped under CI=true ({reason}); CI must have every VM tool"
