"""Asking the Nix core (`modules/huggingface-tgi/core.nix`) for unit facts.

Python never re-implements the unit logic: it dumps the validated instances as JSON and lets real
`nix-instantiate` evaluate the core, exactly as the NixOS module does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NixError, ToolMissingError
from ..spec.schema import Spec

DEFAULT_PODMAN = "/run/current-system/sw/bin/podman"
DEFAULT_SHELL = "/bin/sh"


def project_root() -> Path:
    """The checkout (or installed share dir) holding `modules/huggingface-tgi/`."""
    env = os.environ.get("TGI_NIX_ROOT")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "modules" / "huggingface-tgi" / "core.nix").is_file():
            return parent
    raise ToolMissingError(
        "cannot find modules/huggingface-tgi/core.nix; run from a tgi-nix checkout or set TGI_NIX_ROOT"
    )


def module_dir() -> Path:
    return project_root() / "modules" / "huggingface-tgi"


def nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if not found:
        raise ToolMissingError(
            "nix-instantiate not found; install Nix (Debian/Ubuntu: apt-get install nix-bin)"
        )
    return found


def run_nix(args: list[str], what: str) -> str:
    proc = subprocess.run(
        [nix_instantiate(), *args],
        capture_output=True,
        text=True,
        check=False,
        # Evaluation needs no store or daemon; keep Nix from touching the user's profile state.
        env={**os.environ, "NIX_REMOTE": os.environ.get("NIX_REMOTE", "")},
    )
    if proc.returncode != 0:
        raise NixError(f"{what} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def parse_nix_file(path: Path) -> None:
    """`nix-instantiate --parse`: raises NixError naming the file on a syntax error."""
    run_nix(["--parse", str(path)], f"nix-instantiate --parse {path}")


@dataclass(frozen=True)
class CoreResult:
    """What the core computed for a spec (see `evaluate` in core.nix)."""

    raw: dict[str, Any]

    @property
    def unit_files(self) -> dict[str, str]:
        return dict(self.raw["unitFiles"])

    @property
    def tmpfiles_rules(self) -> list[str]:
        return list(self.raw["tmpfilesRules"])

    @property
    def instances(self) -> dict[str, dict[str, Any]]:
        return dict(self.raw["instances"])

    @property
    def firewall_ports(self) -> list[int]:
        return list(self.raw["firewallPorts"])

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """Rootless instances' system users: name -> {"uid", "home"}."""
        return dict(self.raw["users"])


def user_podman_argv(user: Mapping[str, Any]) -> list[str]:
    """podman as a rootless instance's user (the core's `podmanUser`: name, uid, home), run from `/`:
    podman fails when it cannot enter the caller's working directory (root's home, say)."""
    return [
        "runuser", "-u", str(user["name"]), "--", "env", "-C", "/",
        f"HOME={user['home']}", f"XDG_RUNTIME_DIR=/run/user/{user['uid']}", "podman",
    ]  # fmt: skip


def core_input(spec: Spec, podman: str = DEFAULT_PODMAN, shell: str = DEFAULT_SHELL) -> dict[str, Any]:
    return {
        "instances": {name: inst.to_core() for name, inst in spec.instances.items()},
        "podman": podman,
        "shell": shell,
    }


def evaluate(spec: Spec, podman: str = DEFAULT_PODMAN, shell: str = DEFAULT_SHELL) -> CoreResult:
    """Evaluate the core for every instance in one `nix-instantiate --eval --strict --json` call."""
    with tempfile.TemporaryDirectory(prefix="tgi-nix-") as tmp:
        input_file = Path(tmp) / "instances.json"
        input_file.write_text(json.dumps(core_input(spec, podman, shell)))
        out = run_nix(
            [
                "--eval",
                "--strict",
                "--json",
                str(module_dir() / "eval.nix"),
                "--argstr",
                "input",
                str(input_file),
            ],
            "evaluating the Nix core",
        )
    return CoreResult(json.loads(out))
