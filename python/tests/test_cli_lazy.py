"""The lazy CLI: `tgi-nix --help` imports no command module and nothing heavy, and the group's registry
(`COMMANDS`) matches the commands it stands for."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click
import pytest

from tgi_nix.cli import COMMANDS, cli

HEAVY = ("rich", "httpx", "httpx_sse", "pydantic", "yaml", "jinja2", "prometheus_client")
COMMAND_MODULES = sorted({f"tgi_nix.cli{entry.module}" for entry in COMMANDS.values()})


def imported_after(argv: list[str]) -> set[str]:
    """The modules a fresh interpreter has imported after running `tgi-nix ARGV`."""
    code = (
        "import json, sys\n"
        "from tgi_nix.cli import main\n"
        f"code = main({argv!r})\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def loaded(name: str) -> click.Command:
    ctx = click.Context(cli, info_name="tgi-nix")
    command = cli.get_command(ctx, name)
    assert command is not None
    return command


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    modules = imported_after(["--help"])
    assert not [m for m in modules if m.partition(".")[0] in HEAVY]
    assert not modules & set(COMMAND_MODULES)


def test_a_command_help_imports_only_its_module() -> None:
    modules = imported_after(["probe", "--help"])
    assert "tgi_nix.cli.probe" in modules
    assert not modules & (set(COMMAND_MODULES) - {"tgi_nix.cli.probe"})
    assert not [m for m in modules if m.partition(".")[0] in HEAVY]  # the checks load when a probe runs


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_registry_matches_the_command(name: str) -> None:
    command = loaded(name)
    assert command.name == name
    placeholder = click.Command(name, help=COMMANDS[name].help)
    for limit in range(20, 130, 7):
        assert placeholder.get_short_help_str(limit) == command.get_short_help_str(limit), (
            f"COMMANDS[{name!r}].help in tgi_nix/cli/__init__.py must be the first paragraph of the command's help"
        )


def test_every_command_of_the_command_modules_is_registered() -> None:
    registered = {(f"tgi_nix.cli{e.module}", e.attribute) for e in COMMANDS.values()}
    found = {
        (module, attribute)
        for module in COMMAND_MODULES
        for attribute, value in vars(importlib.import_module(module)).items()
        if isinstance(value, click.Command)
    }
    assert found == registered


@pytest.mark.parametrize("width", [60, 80, 200])
def test_listing_is_what_an_eager_group_prints(width: int) -> None:
    ctx = click.Context(cli, info_name="tgi-nix")
    eager = click.Group("tgi-nix", commands={name: loaded(name) for name in COMMANDS})
    lazy_out, eager_out = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
    cli.format_commands(ctx, lazy_out)
    eager.format_commands(ctx, eager_out)
    assert lazy_out.getvalue() == eager_out.getvalue()
    assert all(name in lazy_out.getvalue() for name in COMMANDS)
