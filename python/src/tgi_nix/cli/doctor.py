"""`tgi-nix doctor`: check this host for a spec's instances (the checks are in `ops.doctor`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click


@click.command("doctor")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("/"),
              show_default=True, help="Read host files under this directory (commands still run on this host).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor_cmd(spec: Path, root: Path, as_json: bool) -> None:
    """Check this host for SPEC: token file, disk space, ports, podman, CDI devices, unit state."""
    from rich.console import Console

    from ..errors import CheckFailed
    from ..nix.bridge import evaluate
    from ..ops import doctor
    from ..spec.loader import load_spec

    parsed = load_spec(spec)
    core = evaluate(parsed, source=str(spec))
    findings = doctor.run_checks(
        parsed, core.instances, doctor.Host(root=root, run=doctor.run_command), core.warnings
    )
    failed = [f for f in findings if f.level == "fail"]
    if as_json:
        click.echo(json.dumps({"ok": not failed, "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        doctor.print_table(findings, Console(soft_wrap=False))
    if failed:
        raise CheckFailed(f"{len(failed)} check(s) failed")
