"""Test support: the NixOS module evaluated against real NixOS modules by ../shared/nixos-eval.

`run_configs` writes NixOS configurations into a directory, runs the harness once over all of them
(plus the examples and the harness's own scenarios) and returns, per configuration, the assertions
that fired, the evaluation error (a type error, say) and the warnings.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO.parent / "shared" / "nixos-eval" / "run.sh"


def harness() -> Path:
    """The harness's run.sh; a missing harness skips, except under CI, where it fails."""
    if HARNESS.is_file() and shutil.which("nix-instantiate"):
        return HARNESS
    reason = f"{HARNESS} or nix-instantiate is missing"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the NixOS evaluation")
    pytest.skip(reason)


def cli() -> str:
    found = shutil.which("tgi-nix") or str(REPO / ".venv" / "bin" / "tgi-nix")
    return found


@dataclass(frozen=True)
class Evaluation:
    assertions: list[str]
    warnings: list[str]
    error: str | None

    @property
    def rejected(self) -> bool:
        return bool(self.assertions) or self.error is not None


@dataclass(frozen=True)
class HarnessRun:
    returncode: int
    output: str
    results: dict[str, Evaluation]

    def failures(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("FAIL:")]


def run_configs(configs: dict[str, str], workdir: Path) -> HarnessRun:
    """Evaluate each `name -> NixOS module text` with the harness (one run for all)."""
    run_sh = harness()
    cfg_dir = workdir / "configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    for name, text in configs.items():
        (cfg_dir / f"{name}.nix").write_text(text)
    out = workdir / "out"
    proc = subprocess.run(
        ["bash", str(run_sh), "--configs", str(cfg_dir), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TGI_NIX": cli(), "OUT": str(out)},
        timeout=1800,
    )
    if proc.returncode == 2:
        raise AssertionError(f"nixos-eval setup failed:\n{proc.stderr}")
    results: dict[str, Evaluation] = {}
    for name in configs:
        d = out / name
        report = d / "eval.json"
        try:
            data = json.loads(report.read_text())
        except (OSError, ValueError):
            # nix-instantiate stops writing its JSON at the first evaluation error
            data = None
        if data is None:
            err = (d / "eval.err").read_text() if (d / "eval.err").is_file() else "no output"
            results[name] = Evaluation([], [], err)
        else:
            results[name] = Evaluation(
                [m.strip() for m in data["failedAssertions"]], [w.strip() for w in data["warnings"]], None
            )
    return HarnessRun(proc.returncode, proc.stdout + proc.stderr, results)
