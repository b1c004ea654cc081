"""The `tgi-nix` command line. One wrapper (`main`) turns known errors into exit codes."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import TgiNixError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tgi-nix")
def cli() -> None:
    """Declarative Hugging Face TGI instances for NixOS, in podman."""


def _register_commands() -> None:
    # Commands live in their own modules; each exposes one click command object.
    # Keep one import per line so parallel work does not collide.
    from ..cli.spec import generate_cmd, options_cmd, render_units_cmd, validate_cmd

    for command in (validate_cmd, generate_cmd, render_units_cmd, options_cmd):
        cli.add_command(command)
    from ..cli.mock import mock_cmd
    from ..generate.k8s import render_k8s_cmd
    from ..ops.doctor import doctor_cmd
    from ..ops.init_wizard import init_cmd
    from ..ops.probe import probe_cmd

    cli.add_command(render_k8s_cmd)
    cli.add_command(doctor_cmd)
    cli.add_command(init_cmd)
    cli.add_command(probe_cmd)
    cli.add_command(mock_cmd)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every `TgiNixError` to its exit code with a one-line message, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="tgi-nix", standalone_mode=False)
    except TgiNixError as err:
        click.echo(f"error: {err.message}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    # Commands may return an int exit code (e.g. `probe` when a check fails).
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
