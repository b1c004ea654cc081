"""`tgi-nix validate`: schema, rendered Nix parses, the core evaluates, systemd accepts the units."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ToolMissingError, UnitVerifyError
from ..fsutil import write_tree_atomic
from ..nix.bridge import evaluate, module_dir, parse_nix_file, run_nix
from ..nix.facts import CoreResult
from ..spec.schema import Spec
from .render import SCRIPTS_SUBDIR, executable_files, render_spec_module, render_unit_tree

# `<unit>:<line>: <message>`, as systemd reports a line it rejects.
_POSITION_RE = re.compile(r"^(?P<unit>[^\s:/]+\.service):(?P<line>\d+): (?P<message>.*)$")
_UNKNOWN_KEY_RE = re.compile(r"Unknown key '?(?P<key>[A-Za-z]+)'? in section")


@dataclass
class Report:
    """What validation found; `notes` are informational, `warnings` deserve attention."""

    instances: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    core: CoreResult | None = None


def systemd_version() -> int:
    """The major version of this host's systemd-analyze."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        raise ToolMissingError("systemd-analyze not found; install systemd (Debian: apt-get install systemd)")
    out = subprocess.run([analyze, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"systemd (\d+)", out)
    return int(match.group(1)) if match else 0


def host_systemd_version() -> int | None:
    """This host's systemd major version (the units' default target), None when it has none."""
    try:
        return systemd_version() or None
    except ToolMissingError:
        return None


def describe_target(target: int | None) -> str:
    return "a current systemd (NixOS)" if target is None else f"systemd {target}"


def _unit_key_options() -> dict[str, list[str]]:
    """The core's table of which options a unit-file key is rendered from (core/unit-keys.nix)."""
    table: dict[str, list[str]] = json.loads(
        run_nix(["--eval", "--strict", "--json", str(module_dir() / "core" / "unit-keys.nix")], "reading core/unit-keys.nix")
    )
    return table


def explain(line: str, unit_dir: Path, owners: Mapping[str, str]) -> str:
    """systemd-analyze's line without the temporary directory; a `<unit>:<n>:` position becomes the
    line's key and the options that key is rendered from (`owners`: unit file -> instance)."""
    line = line.replace(f"{unit_dir}/", "")
    position = _POSITION_RE.match(line)
    if position is None:
        return line
    unit, number, message = position.group("unit", "line", "message")
    try:
        text = (unit_dir / unit).read_text().splitlines()[int(number) - 1]
    except (OSError, IndexError):
        return line
    key, _, value = text.partition("=")
    shown = value if len(value) <= 80 else value[:77] + "..."
    options = _unit_key_options().get(key, [])
    owner = owners.get(unit)
    where = ""
    if owner is not None and options:
        where = " (set by " + " or ".join(f"instances.{owner}.{option}" for option in options) + ")"
    return f"{unit}, line {number}: {key}={shown}: {message}{where}"


def verify_units(
    unit_dir: Path,
    podman: str,
    target: int | None = None,
    owners: Mapping[str, str] | None = None,
    newer_keys: Mapping[str, int] | None = None,
) -> list[str]:
    """Run `systemd-analyze verify` on every unit in `unit_dir`, rendered for systemd `target`
    (None: current); return notes, raise on real errors naming the unit line and, through `owners`
    (unit file -> instance name), the options it comes from. `newer_keys` (the core's
    newerSystemdKeys: key -> first systemd that has it) are rendered only for a target that has
    them, so an older host's systemd-analyze rejecting one is a note."""
    newer_keys = newer_keys or {}
    version = systemd_version()
    units = sorted(str(p) for p in unit_dir.glob("*.service"))
    if not units:
        return []
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        check=False,
        # Resolve Requires=/After= between the rendered units themselves.
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:"},
    )
    notes: list[str] = []
    problems: list[str] = []
    explained = False
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.strip()
        if not line:
            continue
        key = _UNKNOWN_KEY_RE.search(line)
        if key and version < newer_keys.get(key.group("key"), 0):
            # The target has the key (the core renders it only then); this host cannot check it.
            note = (
                f"{key.group('key')} (systemd >= {newer_keys[key.group('key')]}) was not verified: "
                f"the units are rendered for {describe_target(target)}, this host's systemd-analyze is {version}"
            )
            if note not in notes:
                notes.append(note)
            continue
        if f"Command {podman} is not executable" in line:
            reason = line.rsplit(": ", 1)[-1]
            note = (f"podman is not installed at {podman} on this host (systemd: {reason}); the units' podman"
                    " command was not checked")
            if note not in notes:
                notes.append(note)
            explained = True
            continue
        problems.append(explain(line, unit_dir, owners or {}))
    # A non-zero status that only the noted lines explain (podman missing here) is not a rejection.
    if problems or (proc.returncode != 0 and not explained):
        detail = "\n".join(problems) or f"systemd-analyze verify exited {proc.returncode} without saying why"
        raise UnitVerifyError(f"systemd-analyze verify rejected the rendered units:\n{detail}")
    return notes


def validate(spec: Spec, source: str, podman: str, systemd_version: int | None = None) -> Report:
    """`systemd_version`: the target systemd the units are rendered for (None: a current one)."""
    report = Report(instances=sorted(spec.instances))
    with tempfile.TemporaryDirectory(prefix="tgi-nix-validate-") as tmp:
        tmp_path = Path(tmp)
        module = tmp_path / "huggingface-tgi-instances.nix"
        module.write_text(render_spec_module(spec, source))
        parse_nix_file(module)
        out = tmp_path / "units"
        # The core's rules (SpecError naming every option path) and facts in one evaluation; the
        # units run the scripts from where they are written here, so systemd checks them too.
        report.core = evaluate(
            spec, podman=podman, scripts_dir=str(out / SCRIPTS_SUBDIR), source=source,
            systemd_version=systemd_version,
        )  # fmt: skip
        report.warnings.extend(str(w) for w in report.core.warnings)
        report.notes.extend(report.core.notes)
        files = render_unit_tree(report.core)
        write_tree_atomic(out, files, executable_files(files))
        owners = {
            unit: name
            for name, facts in report.core.instances.items()
            for unit in (facts.service_name, facts.image_service_name)
        }
        report.notes.extend(
            verify_units(out / "systemd", podman, systemd_version, owners, report.core.newer_systemd_keys)
        )
    return report
