"""Packaging: pyproject.toml declares the dependencies once (the Nix package and devShell read them) and
ships every data file the package has."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import REPO

PYPROJECT = tomllib.loads((REPO / "python" / "pyproject.toml").read_text())
PACKAGE = REPO / "python" / "src" / "tgi_nix"


def test_package_data_ships_every_data_file() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["tgi_nix"]
    # Follow links: nix/module is the checkout's modules/huggingface-tgi, copied into the wheel.
    data = sorted(
        (Path(root) / name).relative_to(PACKAGE).as_posix()
        for root, _, files in os.walk(PACKAGE, followlinks=True)
        for name in files
        if Path(name).suffix not in {".py", ".pyc"} and "__pycache__" not in Path(root).parts
    )
    assert "nix/module/core/default.nix" in data and "nix/module/scripts/remove-container.sh" in data
    assert "py.typed" in data
    assert [name for name in data if not any(fnmatch.fnmatch(name, p) for p in patterns)] == []
    # Every pattern matches something (no stale entries such as the old nix/*.nix).
    assert [p for p in patterns if not any(fnmatch.fnmatch(name, p) for name in data)] == []


def test_pexpect_is_for_tests_only() -> None:
    assert not any(dep.startswith("pexpect") for dep in PYPROJECT["project"]["dependencies"])
    assert any(dep.startswith("pexpect") for dep in PYPROJECT["project"]["optional-dependencies"]["dev"])
    assert not [p for p in PACKAGE.rglob("*.py") if re.search(r"^\s*(import|from) pexpect", p.read_text(), re.M)]


@pytest.mark.skipif(shutil.which("nix-instantiate") is None, reason="needs nix-instantiate")
def test_nix_reads_the_dependencies_from_pyproject() -> None:
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", str(REPO / "pkgs" / "tgi-nix" / "python-deps.nix")],
        capture_output=True, text=True, check=True,
    )

    def names(requirements: list[str]) -> list[str]:
        return [re.split(r"[^A-Za-z0-9._-]", r.strip(), maxsplit=1)[0].lower() for r in requirements]

    dev = [name for name in names(PYPROJECT["project"]["optional-dependencies"]["dev"])
           if not name.startswith("types-")]
    assert json.loads(proc.stdout) == {"dependencies": names(PYPROJECT["project"]["dependencies"]), "dev": dev}


@pytest.mark.slow
def test_a_wheel_gives_a_cli_that_works_outside_the_checkout(tmp_path: Path) -> None:
    """`pip install ./python` (a wheel): the installed CLI evaluates its own copy of the Nix core."""
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(REPO / "python")], check=True, timeout=600)
    (wheel,) = dist.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=600)
    work.mkdir()
    shutil.copy(REPO / "examples" / "cpu-only.toml", work / "spec.toml")
    env = {k: v for k, v in os.environ.items() if k != "TGI_NIX_ROOT"} | {"PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c", "import sys, tgi_nix; from tgi_nix.cli import main; print(tgi_nix.__file__); "
         "sys.exit(main(['render-units', 'spec.toml', '-o', 'units']))"],
        cwd=work, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0].startswith(str(site))
    assert (work / "units" / "scripts" / "remove-container.sh").read_text().startswith("#!/bin/bash\n")
    assert (work / "units" / "systemd" / "huggingface-tgi-smol.service").is_file()
