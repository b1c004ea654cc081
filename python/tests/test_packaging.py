"""Packaging: pyproject.toml declares the dependencies once (the Nix package and devShell read them) and
ships every data file the package has."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib

import pytest

from .conftest import REPO

PYPROJECT = tomllib.loads((REPO / "python" / "pyproject.toml").read_text())
PACKAGE = REPO / "python" / "src" / "tgi_nix"


def test_package_data_ships_every_data_file() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["tgi_nix"]
    data = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    )
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
