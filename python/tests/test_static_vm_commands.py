"""The VM harness runs each command under `set -euo pipefail`: in `producer | grep -q PATTERN`, grep exits at
its first match and a producer that still writes (journalctl, podman logs) dies of SIGPIPE, failing the
pipeline although the line was there - a wait then times out depending on load and log size (issue 14,
item 10). GNU grep also stops early when its output is /dev/null. So a pipe into grep must read to the
end: `| grep -c PATTERN` (prints the count; status 1 when there is none). Checked here over every
scenario and harness file, for both drivers (NixOS's test driver runs the same scripts)."""

from __future__ import annotations

import re

from .conftest import REPO

FILES = sorted(
    [*(REPO / "nixos-tests" / "scenarios").glob("*.py"),
     *(REPO / "python" / "src" / "tgi_nix" / "testing").rglob("*.py"),
     *(REPO / "python" / "tests").glob("test_vm_*.py")]
)  # fmt: skip
# `| grep` with a q/quiet flag, or with its output sent to /dev/null, up to the next pipe or quote.
EARLY_EXIT = re.compile(r"\|\s*grep\b(?:[^|'\"]*\s-[A-Za-z]*q|[^|'\"]*--quiet|[^|'\"]*--silent|[^|'\"]*>\s*/dev/null)")


def test_the_files_are_found() -> None:
    assert len(FILES) > 10 and any(p.name == "readiness.py" for p in FILES)


def test_no_pipe_into_an_early_exiting_grep() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in FILES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if EARLY_EXIT.search(line)
    ]
    assert offenders == [], "use `| grep -c PATTERN` instead:\n" + "\n".join(offenders)


def test_the_check_catches_the_pattern() -> None:
    for bad in ["journalctl -u x | grep -q 'y'", "podman logs m 2>&1 | grep -qx y", "a | grep -E y > /dev/null",
                "a | grep --quiet y"]:
        assert EARLY_EXIT.search(bad), bad
    for good in ["journalctl -u x | grep -c 'y'", "grep -q y /tmp/file", "a | grep -E 'p|q' | grep -c q"]:
        assert not EARLY_EXIT.search(good), good
