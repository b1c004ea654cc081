"""The CLI's exit codes, messages and atomic writes, through the real entry point."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tgi_nix.cli import main

from .conftest import EXAMPLES, REPO

VALID = '[instances.a]\nmodel = "org/model"\nport = 8080\n'


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (tracebacks would show on stderr)."""
    exe = Path(sys.executable).with_name("tgi-nix")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)


def test_validate_examples_exit_zero() -> None:
    for spec in sorted(EXAMPLES.glob("*.toml")):
        proc = run("validate", str(spec))
        assert proc.returncode == 0, proc.stderr
        assert "valid" in proc.stdout


def test_validate_bad_spec_exit_two_without_traceback(write_spec) -> None:  # type: ignore[no-untyped-def]
    proc = run("validate", str(write_spec(VALID.replace("8080", "99999"))))
    assert proc.returncode == 2
    assert "instances.a.port" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_reports_invalid_toml_position(write_spec) -> None:  # type: ignore[no-untyped-def]
    proc = run("validate", str(write_spec("[instances.a\n")))
    assert proc.returncode == 2 and "line 1" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_warns_but_passes_on_latest(write_spec) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(VALID + 'image = "ghcr.io/huggingface/text-generation-inference:latest"\n')
    proc = run("validate", str(spec))
    assert proc.returncode == 0 and "not pinned" in proc.stderr


def test_generate_writes_parseable_module(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "tgi.nix"
    assert main(["generate", str(EXAMPLES / "quick-deploy.toml"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "services.huggingface-tgi.instances" in text and "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B" in text
    subprocess.run(["nix-instantiate", "--parse", str(out)], check=True, capture_output=True)
    assert [p.name for p in out.parent.iterdir()] == ["tgi.nix"]  # no temp files left behind


def test_failed_generate_leaves_existing_file_untouched(write_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "tgi.nix"
    out.write_text("# precious\n")
    bad = write_spec(VALID + "prot = 1\n", name="bad.toml")
    assert main(["generate", str(bad), "-o", str(out)]) == 2
    assert out.read_text() == "# precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "tgi.nix"]
    missing = tmp_path / "new.nix"
    assert main(["generate", str(bad), "-o", str(missing)]) == 2
    assert not missing.exists()


def test_render_units_tree(tmp_path: Path) -> None:
    out = tmp_path / "units"
    rc = main(
        ["render-units", str(EXAMPLES / "quick-deploy.toml"), "-o", str(out), "--podman", "/usr/bin/podman"]
    )
    assert rc == 0
    names = sorted(p.name for p in (out / "systemd").iterdir())
    assert names == [
        "huggingface-tgi-deepseek-image.service",
        "huggingface-tgi-deepseek-model.service",
        "huggingface-tgi-deepseek.service",
        "huggingface-tgi-scout-image.service",
        "huggingface-tgi-scout-model.service",
        "huggingface-tgi-scout.service",
    ]
    tmpfiles = (out / "tmpfiles.d" / "huggingface-tgi.conf").read_text()
    assert "d /var/lib/huggingface-tgi/scout 0750 root root - -" in tmpfiles
    unit = (out / "systemd" / "huggingface-tgi-scout.service").read_text()
    assert "ExecStart=/usr/bin/podman run --name=huggingface-tgi-scout" in unit


def test_render_units_bad_spec_writes_nothing(write_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "units"
    assert main(["render-units", str(write_spec(VALID + "gpus = 3\n")), "-o", str(out)]) == 2
    assert not out.exists()


def test_options_check_detects_stale_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    shutil.copytree(REPO / "modules", root / "modules")
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "flake.nix", root / "flake.nix")
    monkeypatch.setenv("TGI_NIX_ROOT", str(root))
    assert main(["options", "--check"]) == 0
    (root / "docs" / "options.md").write_text("stale\n")
    assert main(["options", "--check"]) == 1
    assert main(["options"]) == 0
    assert main(["options", "--check"]) == 0


def test_missing_nix_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["render-units", str(EXAMPLES / "cpu-only.toml"), "-o", "/tmp/never-written"]) == 4
    assert "nix-instantiate not found" in capsys.readouterr().err
    assert not Path("/tmp/never-written").exists()


def test_usage_errors_exit_two() -> None:
    proc = run("generate", str(EXAMPLES / "cpu-only.toml"))
    assert proc.returncode == 2 and "Missing option" in proc.stderr
