"""`tgi-nix validate`'s systemd step as a user meets it: systemd's own reason, the unit line mapped back to
the option it comes from, a podman that is not installed here as a note, and `-q` silent when valid."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tgi_nix.cli import main

from .conftest import EXAMPLES

# A systemd-analyze that rejects the TimeoutStartSec= line of the main unit, as systemd words it.
FAKE_ANALYZE = """#!/bin/sh
if [ "$1" = --version ]; then echo "systemd 256 (256.1)"; exit 0; fi
for f in "$@"; do
  case "$f" in
    *huggingface-tgi-a.service)
      n=$(grep -n '^TimeoutStartSec=' "$f" | cut -d: -f1)
      echo "$f:$n: Failed to parse sec value, ignoring: $(grep '^TimeoutStartSec=' "$f" | cut -d= -f2)" >&2
      exit 1 ;;
  esac
done
exit 0
"""


@pytest.fixture
def fake_analyze(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemd-analyze"
    script.write_text(FAKE_ANALYZE)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_a_rejected_unit_line_names_the_option(
    fake_analyze: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[instances.a]\nmodel = "org/m"\nport = 8080\nstartTimeout = "2h"\n')
    assert main(["validate", str(spec)]) == 3
    err = capsys.readouterr().err
    assert "huggingface-tgi-a.service, line " in err and "TimeoutStartSec=2h: Failed to parse sec value" in err
    assert "(set by instances.a.startTimeout)" in err
    assert "tgi-nix-validate-" not in err  # no temporary path


def test_podman_missing_here_is_a_note_with_systemds_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES / "cpu-only.toml"), "--podman", "/nonexistent"]) == 0
    err = capsys.readouterr().err
    assert "podman is not installed at /nonexistent" in err and "No such file or directory" in err
    assert "exited 1" not in err


def test_quiet_prints_nothing_when_valid(capsys: pytest.CaptureFixture[str]) -> None:
    # cpu-only has notes on an older systemd, and /nonexistent adds one: -q shows none of them.
    assert main(["validate", "-q", str(EXAMPLES / "cpu-only.toml"), "--podman", "/nonexistent"]) == 0
    assert capsys.readouterr() == ("", "")


def test_quiet_still_prints_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[instances.a]\nmodel = "org/m"\nport = 0\n')
    assert main(["validate", "-q", str(spec)]) == 2
    assert "instances.a.port" in capsys.readouterr().err


def test_the_unit_key_table_names_real_keys_and_options(tmp_path: Path) -> None:
    """core/unit-keys.nix maps unit keys to options: every option exists, and every key is one the
    rendered units of the examples use (a renamed key or option would silently stop the mapping)."""
    from tgi_nix.generate.validate import _unit_key_options
    from tgi_nix.spec.loader import INSTANCE_KEYS

    table = _unit_key_options()
    assert {option for options in table.values() for option in options} <= set(INSTANCE_KEYS)
    used: set[str] = set()
    for example in sorted(EXAMPLES.glob("*.toml")):
        out = tmp_path / example.stem
        assert main(["render-units", str(example), "-o", str(out)]) == 0
        for unit in (out / "systemd").glob("*.service"):
            used |= {line.split("=", 1)[0] for line in unit.read_text().splitlines() if "=" in line}
    assert set(table) <= used, set(table) - used
