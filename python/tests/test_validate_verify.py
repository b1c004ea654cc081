"""`tgi-nix validate`'s systemd step as a user meets it: systemd's own reason, the unit line mapped back to
the option it comes from, a podman that is not installed here as a note, and `-q` silent when valid."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tgi_nix.cli import main
from tgi_nix.errors import NixError, SpecError, ToolMissingError, UnitVerifyError
from tgi_nix.generate.validate import (
    _unit_key_options,
    explain,
    host_systemd_version,
    systemd_version,
    validate,
)
from tgi_nix.nix.bridge import module_dir
from tgi_nix.spec.loader import INSTANCE_KEYS, parse_spec

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
    table = _unit_key_options()
    assert {option for options in table.values() for option in options} <= set(INSTANCE_KEYS)
    used: set[str] = set()
    for example in sorted(EXAMPLES.glob("*.toml")):
        out = tmp_path / example.stem
        assert main(["render-units", str(example), "-o", str(out)]) == 0
        for unit in (out / "systemd").glob("*.service"):
            used |= {line.split("=", 1)[0] for line in unit.read_text().splitlines() if "=" in line}
    assert set(table) <= used, set(table) - used


# ------------------------------------------------------------------ verify_units and explain, in process
def install_analyze(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int, body: str) -> None:
    """A systemd-analyze that reports `version` and runs `body` (sh) on `verify --man=no <units>`."""
    bin_dir = tmp_path / "analyze-bin"
    bin_dir.mkdir()
    script = bin_dir / "systemd-analyze"
    script.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo "systemd {version} ({version}.1)"; exit 0; fi\n'
                      f"shift 2\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


# What systemd-analyze 252 says of each RestartSteps= line the units carry (the key is systemd 254's).
UNKNOWN_RESTART_STEPS = """for f in "$@"; do
  n=$(grep -n '^RestartSteps=' "$f" | cut -d: -f1)
  [ -n "$n" ] && echo "$f:$n: Unknown key 'RestartSteps' in section [Service], ignoring." >&2
done
exit 0"""
GPU = {"instances": {"a": {"model": "org/m", "port": 8080, "gpus": [0]}, "b": {"model": "org/m", "port": 8081}}}


def test_host_systemd_version_reads_systemd_analyze(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_analyze(tmp_path, monkeypatch, 256, "exit 0")
    assert host_systemd_version() == 256
    # A systemd-analyze that cannot say its version: no version, not a crash.
    mute = tmp_path / "analyze-bin" / "systemd-analyze"
    mute.write_text("#!/bin/sh\necho 'something went wrong' >&2\nexit 1\n")
    assert systemd_version() == 0 and host_systemd_version() is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert host_systemd_version() is None
    with pytest.raises(ToolMissingError) as err:
        systemd_version()
    assert str(err.value) == "systemd-analyze not found; install systemd (Debian: apt-get install systemd)"


@pytest.mark.parametrize(("target", "words"), [(None, "a current systemd (NixOS)"), (256, "systemd 256")])
def test_a_key_only_the_target_knows_is_one_note_naming_target_and_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: int | None, words: str
) -> None:
    install_analyze(tmp_path, monkeypatch, 250, UNKNOWN_RESTART_STEPS)
    report = validate(parse_spec(GPU), "spec.toml", "/bin/true", systemd_version=target)
    # Two main units carry RestartSteps=: one note, not one per line.
    expected = (f"RestartSteps (systemd >= 254) was not verified: the units are rendered for {words}, "
                "this host's systemd-analyze is 250")
    assert report.notes.count(expected) == 1, report.notes
    assert report.instances == ["a", "b"]


def test_an_older_target_renders_no_key_the_host_cannot_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_analyze(tmp_path, monkeypatch, 250, UNKNOWN_RESTART_STEPS)
    report = validate(parse_spec(GPU), "spec.toml", "/bin/true", systemd_version=252)
    assert not any("not verified" in note for note in report.notes), report.notes
    assert any("rendered for systemd 252" in note for note in report.notes), report.notes
    assert report.core is not None and "RestartSteps" not in report.core.unit_files["huggingface-tgi-a.service"]


def test_a_host_systemd_that_has_the_key_and_rejects_it_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_analyze(tmp_path, monkeypatch, 254, UNKNOWN_RESTART_STEPS)
    with pytest.raises(UnitVerifyError, match="RestartSteps=5: Unknown key"):
        validate(parse_spec(GPU), "spec.toml", "/bin/true")


PODMAN_MISSING = 'echo "$(basename "$1"): Command /opt/podman is not executable: No such file or directory" >&2'


@pytest.mark.parametrize("first", [PODMAN_MISSING, UNKNOWN_RESTART_STEPS.removesuffix("exit 0"), "echo >&2"])
def test_a_noted_line_does_not_hide_a_rejection_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    install_analyze(tmp_path, monkeypatch, 250, f'{first}\necho "$(basename "$1"): Failed to parse something" >&2\nexit 1')
    with pytest.raises(UnitVerifyError, match="Failed to parse something"):
        validate(parse_spec(GPU), "spec.toml", "/opt/podman")


def test_every_rejected_line_is_its_own_line_of_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_analyze(tmp_path, monkeypatch, 256, 'for f in "$@"; do echo "$(basename "$f"): bad unit" >&2; done\nexit 1')
    with pytest.raises(UnitVerifyError) as err:
        validate(parse_spec({"instances": {"a": {"model": "org/m", "port": 8080}}}), "spec.toml", "/bin/true")
    assert str(err.value).split("\n") == [
        "systemd-analyze verify rejected the rendered units:",
        "huggingface-tgi-a-image.service: bad unit",
        "huggingface-tgi-a-model.service: bad unit",
        "huggingface-tgi-a.service: bad unit",
    ]


def test_podman_missing_here_is_the_whole_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_analyze(tmp_path, monkeypatch, 256, f"{PODMAN_MISSING}\n{PODMAN_MISSING}\nexit 1")
    report = validate(parse_spec(GPU), "spec.toml", "/opt/podman")
    assert report.notes.count("podman is not installed at /opt/podman on this host (systemd: No such file or "
                              "directory); the units' podman command was not checked") == 1, report.notes


def test_a_silent_failure_of_systemd_analyze_is_still_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_analyze(tmp_path, monkeypatch, 256, "exit 3")
    with pytest.raises(UnitVerifyError, match="systemd-analyze verify exited 3 without saying why"):
        validate(parse_spec(GPU), "spec.toml", "/bin/true")


def test_validate_names_the_source_and_passes_the_cores_warnings_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_analyze(tmp_path, monkeypatch, 256, "exit 0")
    with pytest.raises(SpecError, match=r"^my\.toml is invalid:\ninstances\.a\.model: "):
        validate(parse_spec({"instances": {"a": {"model": "no model id", "port": 8080}}}), "my.toml", "/bin/true")
    unreleased = {"instances": {"a": {"model": "org/m", "port": 8080,
                                      "image": "ghcr.io/huggingface/text-generation-inference:2.5.1"}}}
    report = validate(parse_spec(unreleased), "my.toml", "/bin/true")
    assert any(w.startswith("instances.a.image: ") and "2.5.1" in w for w in report.warnings), report.warnings


def unit_line(tmp_path: Path, text: str, message: str = "bad", owners: dict[str, str] | None = None) -> str:
    unit = tmp_path / "u.service"
    unit.write_text(f"[Service]\n{text}\n")
    return explain(f"{tmp_path}/u.service:2: {message}", tmp_path, {"u.service": "a"} if owners is None else owners)


def test_explain_names_the_line_its_key_and_the_options(tmp_path: Path) -> None:
    assert unit_line(tmp_path, "Environment=A=1") == "u.service, line 2: Environment=A=1: bad (set by instances.a.environment)"
    assert unit_line(tmp_path, "DeviceAllow=/dev/x rw") == (
        "u.service, line 2: DeviceAllow=/dev/x rw: bad (set by instances.a.gpus or instances.a.cdiDevices)")
    # A key no option sets (hardening), or a unit no instance owns: the line alone.
    assert unit_line(tmp_path, "ProtectHome=yes") == "u.service, line 2: ProtectHome=yes: bad"
    assert unit_line(tmp_path, "User=x", owners={}) == "u.service, line 2: User=x: bad"
    # Not a position, or one past the end of the file: systemd's line as it is, without the directory.

    assert explain(f"{tmp_path}/u.service: something", tmp_path, {}) == "u.service: something"
    assert explain(f"{tmp_path}/u.service:9: bad", tmp_path, {}) == "u.service:9: bad"


def test_explain_shows_values_up_to_80_characters_whole(tmp_path: Path) -> None:
    exact = "x" * 80
    assert f"User={exact}: bad" in unit_line(tmp_path, f"User={exact}")
    longer = "y" * 81
    assert f"User={'y' * 77}...: bad" in unit_line(tmp_path, f"User={longer}")


def test_a_broken_unit_key_table_says_what_was_being_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "modules" / "huggingface-tgi"
    shutil.copytree(module_dir(), copy)
    (copy / "core" / "unit-keys.nix").write_text("{ broken")
    monkeypatch.setenv("TGI_NIX_ROOT", str(tmp_path))
    with pytest.raises(NixError, match=r"^reading core/unit-keys\.nix failed:"):
        _unit_key_options()
