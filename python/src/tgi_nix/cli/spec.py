"""Spec commands: validate, generate, render-units, options."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import click
from click.decorators import FC

from ..errors import CheckFailed
from ..fsutil import check_destination, check_tree_destination, write_atomic, write_tree_atomic
from ..generate.promises import render_hardening_md
from ..generate.render import (
    executable_files,
    render_options_md,
    render_options_nix,
    render_spec_module,
    render_unit_tree,
)
from ..generate.validate import host_systemd_version, validate
from ..nix.bridge import DEFAULT_PODMAN, DEFAULT_SCRIPTS_DIR, checkout_root, evaluate, parse_nix_file
from ..spec.loader import load_spec

FORCE_OPTION = click.option(
    "--force", is_flag=True, help="Overwrite existing files that tgi-nix did not generate (no header)."
)
SPEC_ARG = click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))


def _podman_option() -> Callable[[FC], FC]:
    return click.option(
        "--podman",
        default=None,
        help=f"podman path written into the units (default: `podman` on PATH, else {DEFAULT_PODMAN}).",
    )


def _systemd_version_option() -> Callable[[FC], FC]:
    return click.option(
        "--systemd-version",
        default=None,
        metavar="N|current",
        help="Major version of the systemd the units will run on; older than 254 gets a fixed restart delay "
        "instead of the back-off (default: this host's systemd, else current; NixOS: current).",
    )


def _resolve_systemd_version(value: str | None) -> int | None:
    """None for a current systemd (NixOS); the host's version when not given."""
    if value is None:
        return host_systemd_version()
    if value == "current":
        return None
    if not value.isdigit() or not 1 <= int(value) <= 9999:
        raise click.BadParameter(f"{value!r} is not a systemd major version such as 252, or current", param_hint="--systemd-version")
    return int(value)


def _resolve_podman(podman: str | None) -> str:
    if podman:
        return podman
    found = shutil.which("podman")
    return found if found else DEFAULT_PODMAN


@click.command("validate")
@SPEC_ARG
@_podman_option()
@_systemd_version_option()
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when valid (no warnings or notes either).")
def validate_cmd(spec: Path, podman: str | None, systemd_version: str | None, quiet: bool) -> None:
    """Check SPEC: schema, generated Nix parses, the core evaluates, systemd accepts the units."""
    report = validate(
        load_spec(spec, check=False), str(spec), _resolve_podman(podman), _resolve_systemd_version(systemd_version)
    )
    if quiet:  # a valid spec prints nothing: the exit status says it (errors still print)
        return
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    names = ", ".join(report.instances) or "no instances"
    click.echo(f"{spec}: valid ({len(report.instances)} instance(s): {names})")


@click.command("generate")
@SPEC_ARG
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    required=True,
    help="The NixOS module to write (atomically; nothing is written on error); `-` writes to stdout.",
)
@FORCE_OPTION
def generate_cmd(spec: Path, output: Path, force: bool) -> None:
    """Write a NixOS module that declares SPEC's instances for the tgi-nix module."""
    to_stdout = str(output) == "-"
    if not to_stdout:
        check_destination(output, force)  # refuse a bad destination before evaluating anything
    parsed = load_spec(spec)
    text = render_spec_module(parsed, spec.name)
    # Parse before writing: a generated file that Nix rejects never reaches the target.
    with tempfile.TemporaryDirectory(prefix="tgi-nix-generate-") as tmp:
        staging = Path(tmp) / "module.nix"
        staging.write_text(text, encoding="utf-8")
        parse_nix_file(staging)
    if to_stdout:
        click.echo(text, nl=False)
        return
    write_atomic(output, text, force=force)
    click.echo(f"wrote {output} ({len(parsed.instances)} instance(s))")


@click.command("render-units")
@SPEC_ARG
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for systemd/*.service, tmpfiles.d/huggingface-tgi.conf and scripts/*.sh; files a"
    " previous render wrote there (its .tgi-nix-manifest) and no longer renders are removed.",
)
@_podman_option()
@click.option(
    "--shell", default="/bin/bash", show_default=True,
    help="bash that runs the units' scripts (their #! line; wait-ready needs bash's /dev/tcp).",
)
@click.option(
    "--scripts-dir",
    default=DEFAULT_SCRIPTS_DIR,
    show_default=True,
    help="Where the units expect the scripts: install scripts/*.sh there (mode 0755).",
)
@_systemd_version_option()
@FORCE_OPTION
def render_units_cmd(
    spec: Path, output: Path, podman: str | None, shell: str, scripts_dir: str, systemd_version: str | None,
    force: bool,
) -> None:
    """Render plain systemd units, a tmpfiles.d file and the units' scripts for SPEC (hosts without NixOS)."""
    if not scripts_dir.startswith("/"):
        raise click.BadParameter("must be an absolute path", param_hint="--scripts-dir")
    check_tree_destination(output)  # a destination we cannot write is said before rendering
    target = _resolve_systemd_version(systemd_version)
    core = evaluate(
        load_spec(spec, check=False), podman=_resolve_podman(podman), shell=shell, scripts_dir=scripts_dir,
        source=str(spec), systemd_version=target,
    )
    for note in core.notes:
        click.echo(f"note: {note}", err=True)
    files = render_unit_tree(core)
    removed = write_tree_atomic(output, files, executable_files(files), manifest=True, force=force)
    for rel in sorted(files):
        click.echo(str(output / rel))
    for rel in removed:
        click.echo(f"removed {output / rel} (no longer rendered)")


def _generated_files() -> dict[Path, str]:
    root = checkout_root()
    hardening = root / "docs" / "hardening.md"
    return {
        root / "modules" / "huggingface-tgi" / "generated" / "options.nix": render_options_nix(),
        root / "docs" / "options.md": render_options_md(),
        hardening: render_hardening_md(hardening.read_text()),
    }


@click.command("options")
@click.option("--check", is_flag=True, help="Fail if the committed files differ from the schema.")
def options_cmd(check: bool) -> None:
    """Regenerate (or --check) modules/huggingface-tgi/generated/options.nix and docs/options.md from the schema."""
    files = _generated_files()
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    if check:
        if stale:
            names = ", ".join(str(p.relative_to(checkout_root())) for p in stale)
            raise CheckFailed(f"generated files are stale: {names}; run `tgi-nix options` and commit them")
        click.echo("generated options and docs are up to date")
        return
    for path, text in files.items():
        # The checkout's own generated files (a stale one may have lost its header; docs/hardening.md
        # is hand-written around its generated table and has none).
        write_atomic(path, text, force=True)
        if path.suffix == ".nix":
            parse_nix_file(path)
        click.echo(f"{'updated' if path in stale else 'unchanged'} {path.relative_to(checkout_root())}")
