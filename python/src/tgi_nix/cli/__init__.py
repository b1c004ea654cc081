"""The `tgi-nix` command line. One wrapper (`main`) turns known errors into exit codes.

The group is lazy: it knows each command's name, module and one-line help (`COMMANDS`), so
`tgi-nix --help` lists them without importing any command module (nor pydantic, httpx, rich, jinja2 or
yaml); a command's module is imported when that command runs or shows its own help. Command modules
import at the top only what declaring their options needs, the rest when the command runs.
`tests/test_cli_lazy.py` checks `COMMANDS` against the commands themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from .. import __version__
from ..errors import TgiNixError


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (a module of this package and the click command in it) and the first
    paragraph of its help, from which click cuts the one-line help of `tgi-nix --help`."""

    module: str
    attribute: str
    help: str


# One entry per line so parallel work does not collide; the help is the command docstring's first paragraph.
COMMANDS: dict[str, LazyCommand] = {
    "validate": LazyCommand(".spec", "validate_cmd", "Check SPEC: schema, generated Nix parses, the core evaluates, systemd accepts the units."),
    "generate": LazyCommand(".spec", "generate_cmd", "Write a NixOS module that declares SPEC's instances for the tgi-nix module."),
    "render-units": LazyCommand(".spec", "render_units_cmd", "Render plain systemd units, a tmpfiles.d file and the units' scripts for SPEC (hosts without NixOS)."),
    "options": LazyCommand(".spec", "options_cmd", "Regenerate (or --check) modules/huggingface-tgi/generated/options.nix and docs/options.md from the schema."),
    "render-k8s": LazyCommand(".k8s", "render_k8s_cmd", "Render Kubernetes manifests (Deployment, Service, cache PVC) for SPEC's enabled instances."),
    "doctor": LazyCommand(".doctor", "doctor_cmd", "Check this host for SPEC: token file, disk space, ports, podman, CDI devices, unit state."),
    "init": LazyCommand(".init", "init_cmd", "Create a spec file for one TGI instance by answering a few questions."),
    "probe": LazyCommand(".probe", "probe_cmd", "Check TGI endpoints: a URL, or every enabled instance of a SPEC file."),
    "mock": LazyCommand(".mock", "mock_cmd", "Run the TGI mock: `tgi-nix mock --port 8080 --model-id org/name [--load-delay 5]`."),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        command = getattr(importlib.import_module(entry.module, __name__), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click.Group's, with each lazy command's help from `COMMANDS` instead of its module."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            entry = self.lazy.get(name)
            command = click.Command(name, help=entry.help) if entry else super().get_command(ctx, name)
            if command is not None and not command.hidden:
                commands.append((name, command))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tgi-nix")
def cli() -> None:
    """Declarative Hugging Face TGI instances for NixOS, in podman."""


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
    except OSError as err:
        # Last resort for a file a command reads or writes without naming it itself: one line, exit 2.
        where = f"{err.filename}: " if err.filename else ""
        click.echo(f"error: {where}{err.strerror or err}", err=True)
        return 2
    # Commands may return an int exit code (e.g. `probe` when a check fails).
    return rv if isinstance(rv, int) else 0
