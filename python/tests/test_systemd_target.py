"""The systemd the units run on: render-units/validate render for a target version (RestartSteps
and RestartMaxDelaySec need systemd >= 254) and say what they changed; the image unit's retries end,
and while they last the main unit's start waits for them (RestartMode=direct, systemd >= 254)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tgi_nix.generate.validate import systemd_version
from tgi_nix.nix.bridge import evaluate, module_dir
from tgi_nix.spec.loader import parse_spec

from .conftest import EXAMPLES

GPU_SPEC = {"instances": {"g": {"model": "a/b", "port": 8080, "gpus": [0]}}}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("tgi-nix")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)


def keys(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.split("\n"):
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z]+", key):
            found.setdefault(key, []).append(value)
    return found


def main_unit(version: int | None) -> tuple[dict[str, list[str]], list[str]]:
    core = evaluate(parse_spec(GPU_SPEC), podman="/usr/bin/podman", systemd_version=version)
    return keys(core.unit_files["huggingface-tgi-g.service"]), core.notes


@pytest.mark.parametrize("version", [None, 254, 257])
def test_current_systemd_gets_the_back_off(version: int | None) -> None:
    unit, notes = main_unit(version)
    assert unit["RestartSec"] == ["2s"] and unit["RestartSteps"] == ["5"] and unit["RestartMaxDelaySec"] == ["5min"]
    assert unit["StartLimitBurst"] == ["10"] and unit["StartLimitIntervalSec"] == ["6h"]
    assert notes == []


@pytest.mark.parametrize("version", [245, 252, 253])
def test_older_systemd_gets_a_fixed_delay_that_does_not_fail_after_a_burst(version: int) -> None:
    unit, notes = main_unit(version)
    assert "RestartSteps" not in unit and "RestartMaxDelaySec" not in unit
    assert unit["RestartSec"] == ["1min"] and unit["Restart"] == ["on-failure"]
    # 24 immediate failures 1 min apart take 23 min before the unit stays failed, as long as the
    # back-off's 10 (2 s growing to 5 min) take; 10 starts at 2 s were a 20-second burst.
    assert unit["StartLimitBurst"] == ["24"] and unit["StartLimitIntervalSec"] == ["6h"]
    (note,) = notes
    assert f"systemd {version}" in note and "RestartSteps" in note and "1 min" in note


def test_image_unit_gives_up_and_opens_no_gpu_device() -> None:
    core = evaluate(parse_spec(GPU_SPEC), podman="/usr/bin/podman")
    image = keys(core.unit_files["huggingface-tgi-g-image.service"])
    main = keys(core.unit_files["huggingface-tgi-g.service"])
    assert image["Restart"] == ["on-failure"] and image["RestartSec"] == ["30s"]
    assert image["StartLimitBurst"] == ["10"] and image["StartLimitIntervalSec"] == ["1h"]
    assert not any("nvidia" in d for d in image.get("DeviceAllow", []))
    assert any("nvidia" in d for d in main["DeviceAllow"])
    (stop,) = image["ExecStopPost"]
    assert stop.split()[1:] == ["huggingface-tgi-g-image", "30min", "ghcr.io/huggingface/text-generation-inference:3.3.7"]


def image_unit(version: int | None) -> dict[str, list[str]]:
    core = evaluate(parse_spec(GPU_SPEC), podman="/usr/bin/podman", systemd_version=version)
    return keys(core.unit_files["huggingface-tgi-g-image.service"])


@pytest.mark.parametrize("version", [None, 254, 257])
def test_a_retried_pull_keeps_the_main_units_start_waiting(version: int | None) -> None:
    # RestartMode=direct: a failed try goes straight back to activating, so the main unit's start job
    # (Requires=/After= the image unit) waits for the retry instead of failing with 'dependency'.
    assert image_unit(version)["RestartMode"] == ["direct"]
    main, _ = main_unit(version)
    assert "RestartMode" not in main  # the main unit's own failures stay visible (OnFailure=, doctor)


@pytest.mark.parametrize("version", [245, 252, 253])
def test_older_systemd_is_told_that_a_failed_pull_stops_the_main_units_start(version: int) -> None:
    assert "RestartMode" not in image_unit(version)  # unknown to systemd < 254
    (note,) = main_unit(version)[1]
    assert "RestartMode=direct" in note and "start it again once the image unit is active" in note


def test_image_failure_report_names_the_image_and_the_way_out() -> None:
    script = module_dir() / "scripts" / "failure-report.sh"
    env = {**os.environ, "SERVICE_RESULT": "exit-code", "EXIT_STATUS": "125"}
    out = subprocess.run(
        ["sh", str(script), "huggingface-tgi-g-image", "1h", "ghcr.io/x/y:9.9.9"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout  # fmt: skip
    assert out.startswith("huggingface-tgi-g-image: could not fetch image ghcr.io/x/y:9.9.9 (exit-code, status 125)")
    assert "systemctl reset-failed huggingface-tgi-g-image" in out
    clean = subprocess.run(
        ["sh", str(script), "huggingface-tgi-g-image", "1h", "ghcr.io/x/y:9.9.9"],
        capture_output=True, text=True, check=True, env={**os.environ, "SERVICE_RESULT": "success"},
    ).stdout  # fmt: skip
    assert clean == ""


needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")


@needs_systemd
def test_render_for_252_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    out = tmp_path / "units"
    proc = run(
        "render-units", str(EXAMPLES / "quick-deploy.toml"), "-o", str(out),
        "--podman", "/bin/true", "--systemd-version", "252",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "note: rendered for systemd 252" in proc.stderr
    units = sorted(str(p) for p in (out / "systemd").glob("*.service"))
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True, text=True, check=False,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{out / 'systemd'}:"},
    )  # fmt: skip
    output = verify.stdout + verify.stderr
    assert "Unknown key" not in output and "Unknown lvalue" not in output, output
    assert "RestartSteps" not in (out / "systemd" / "huggingface-tgi-deepseek.service").read_text()


@needs_systemd
def test_render_units_defaults_to_the_hosts_systemd(tmp_path: Path) -> None:
    host = systemd_version()
    proc = run("render-units", str(EXAMPLES / "cpu-only.toml"), "-o", str(tmp_path / "u"))
    assert proc.returncode == 0, proc.stderr
    text = next((tmp_path / "u" / "systemd").glob("*-smol.service")).read_text()
    assert ("RestartSteps=5" in text) == (host >= 254)
    assert (f"note: rendered for systemd {host}" in proc.stderr) == (host < 254)


@needs_systemd
def test_validate_notes_speak_of_the_target_not_the_host() -> None:
    host = systemd_version()
    spec = str(EXAMPLES / "cpu-only.toml")
    current = run("validate", spec, "--systemd-version", "current")
    assert current.returncode == 0, current.stderr
    assert "host has" not in current.stderr
    if host < 254:
        # The NixOS target has the keys; this host's systemd-analyze just cannot check them.
        assert "rendered for a current systemd (NixOS)" in current.stderr
        assert "not verified" in current.stderr
    old = run("validate", spec, "--systemd-version", "252")
    assert old.returncode == 0, old.stderr
    assert "note: rendered for systemd 252" in old.stderr and "not verified" not in old.stderr


@pytest.mark.parametrize("bad", ["two-five-two", "0", "-1"])
def test_bad_systemd_version_is_one_line_exit_2(bad: str, tmp_path: Path) -> None:
    proc = run("render-units", str(EXAMPLES / "cpu-only.toml"), "-o", str(tmp_path / "u"), "--systemd-version", bad)
    assert proc.returncode == 2 and "--systemd-version" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "u").exists()
