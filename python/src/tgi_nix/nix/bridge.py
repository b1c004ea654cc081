"""Asking the Nix core (`modules/huggingface-tgi/core/`) for validation findings and facts.

Python never re-implements the unit logic or the rules: it dumps the instances (types checked by
the schema) as JSON and lets real `nix-instantiate` evaluate the core, exactly as the NixOS module
does. The core ships inside this package (`tgi_nix/nix/module`, a link to the checkout's
`modules/huggingface-tgi` that the wheel turns into a copy), so an installed CLI needs no checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import NixError, SpecError, ToolMissingError
from ..spec.schema import Spec
from .facts import Check, CoreResult, Finding, PodmanUser

DEFAULT_PODMAN = "/run/current-system/sw/bin/podman"
DEFAULT_SHELL = "/bin/bash"
# Where render-units' units expect the scripts on a host without NixOS.
DEFAULT_SCRIPTS_DIR = "/usr/local/libexec/tgi-nix"
PACKAGED_MODULE = Path(__file__).resolve().parent / "module"


def module_dir() -> Path:
    """The NixOS module directory whose core the CLI evaluates: `$TGI_NIX_ROOT/modules/huggingface-tgi`
    when set (a checkout under test), else the copy shipped in the package."""
    env = os.environ.get("TGI_NIX_ROOT")
    found = Path(env) / "modules" / "huggingface-tgi" if env else PACKAGED_MODULE
    if not (found / "core" / "default.nix").is_file():
        where = f"TGI_NIX_ROOT={env}" if env else "the installed package"
        raise ToolMissingError(
            f"cannot find the Nix core (core/default.nix) in {found} ({where}); reinstall tgi-nix"
            + (" or point TGI_NIX_ROOT at a tgi-nix checkout" if env else "")
        )
    return found


def checkout_root() -> Path:
    """The tgi-nix checkout this CLI runs from (generated files, nixos-tests/); an installed
    package has none."""
    root = module_dir().resolve().parents[1]
    if not (root / "flake.nix").is_file():
        raise ToolMissingError(f"{root} is no tgi-nix checkout; run from one or set TGI_NIX_ROOT to one")
    return root


def nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if not found:
        raise ToolMissingError(
            "nix-instantiate not found; install Nix (Debian/Ubuntu: apt-get install nix-bin)"
        )
    return found


# Nix failing to set up /nix/var/nix for the calling user (an unprivileged user without a daemon).
_NIX_STATE_DENIED = re.compile(
    r"(could not set permissions on|cannot create directory|Permission denied|Operation not permitted).*'?/nix/var/nix"
    r"|/nix/var/nix\S*'?: (Permission denied|Operation not permitted)"
)


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
        stderr = proc.stderr.strip()
        if _NIX_STATE_DENIED.search(stderr):
            # Not the spec's fault: Nix cannot set up its state directory for this user.
            first = next(line for line in stderr.splitlines() if _NIX_STATE_DENIED.search(line))
            raise ToolMissingError(
                f"Nix cannot run as this user ({first.removeprefix('error: ').strip()}); run as root, or give"
                " Nix a state directory you own: NIX_STATE_DIR=$HOME/.local/state/nix tgi-nix ..."
            )
        raise NixError(f"{what} failed:\n{stderr}")
    return proc.stdout


def parse_nix_file(path: Path) -> None:
    """`nix-instantiate --parse`: raises NixError naming the file on a syntax error."""
    run_nix(["--parse", str(path)], f"nix-instantiate --parse {path}")


def user_podman_argv(user: PodmanUser) -> list[str]:
    """podman as a rootless instance's user (the core's `podmanUser`), run from `/`: podman fails
    when it cannot enter the caller's working directory (root's home, say)."""
    return [
        "runuser", "-u", user.name, "--", "env", "-C", "/",
        f"HOME={user.home}", f"XDG_RUNTIME_DIR={user.runtime_dir}", "podman",
    ]  # fmt: skip


def core_input(
    spec: Spec,
    podman: str = DEFAULT_PODMAN,
    shell: str = DEFAULT_SHELL,
    scripts_dir: str = DEFAULT_SCRIPTS_DIR,
    systemd_version: int | None = None,
) -> dict[str, Any]:
    return {
        "instances": {name: inst.to_core() for name, inst in spec.instances.items()},
        "podman": podman,
        "shell": shell,
        "scriptsDir": scripts_dir,
        "systemdVersion": systemd_version,
    }


def _nul_paths(value: Any, path: str) -> list[str]:
    """Where `value` holds a NUL character (in a string or a key): Nix strings cannot hold one, so such
    a value never reaches the core (it would be cut short there, or its attribute not found)."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            shown = key if key.isidentifier() and "\x00" not in key else json.dumps(key)
            found += [f"{path}.{shown}"] if "\x00" in key else _nul_paths(item, f"{path}.{shown}")
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, f"{path}[{i}]")]
    return []


def _eval_core(payload: dict[str, Any], source: str = "spec") -> Any:
    nul = _nul_paths(payload.get("instances", {}), "instances")
    if nul:
        raise SpecError(f"{source} is invalid:\n" + "\n".join(f"{p}: contains a NUL character (\\u0000); remove it" for p in nul))
    with tempfile.TemporaryDirectory(prefix="tgi-nix-") as tmp:
        input_file = Path(tmp) / "instances.json"
        input_file.write_text(json.dumps(payload))
        out = run_nix(
            ["--eval", "--strict", "--json", str(module_dir() / "eval.nix"), "--argstr", "input", str(input_file)],
            "evaluating the Nix core",
        )
    return json.loads(out)


def invalid(source: str, errors: list[Finding]) -> SpecError:
    return SpecError(f"{source} is invalid:\n" + "\n".join(str(e) for e in errors))


def check(spec: Spec, source: str = "spec") -> list[Finding]:
    """The core's rules (core/rules.nix, core/guarantees.nix) on the spec: raises SpecError listing
    every finding as `instances.<name>.<option>: message`; returns the warnings."""
    result = Check.model_validate(_eval_core({**core_input(spec), "checkOnly": True}, source))
    if result.errors:
        raise invalid(source, result.errors)
    return result.warnings


def evaluate(
    spec: Spec,
    podman: str = DEFAULT_PODMAN,
    shell: str = DEFAULT_SHELL,
    scripts_dir: str = DEFAULT_SCRIPTS_DIR,
    source: str = "spec",
    systemd_version: int | None = None,
) -> CoreResult:
    """Evaluate the core for every instance in one `nix-instantiate --eval --strict --json` call;
    a spec that breaks a rule raises SpecError, as `check` does. `systemd_version`: the major
    version of the systemd the units will run on (None: a current one, as on NixOS)."""
    raw = _eval_core(core_input(spec, podman, shell, scripts_dir, systemd_version), source)
    # Findings first: the facts of a spec that breaks a rule need not fit the model.
    errors = Check.model_validate({"errors": raw["errors"], "warnings": raw["warnings"]}).errors
    if errors:
        raise invalid(source, errors)
    return CoreResult.model_validate(raw)
