"""`tgi-nix init`: ask for one instance and write a spec file (the answers are checked in `ops.init_wizard`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

T = TypeVar("T")


def _asking(check: Callable[[str], T]) -> Callable[[str], T]:
    """A prompt's value_proc: an answer the check refuses is a click.BadParameter, so click asks again."""
    from ..ops.init_wizard import BadAnswer

    def proc(answer: str) -> T:
        try:
            return check(answer)
        except BadAnswer as err:
            raise click.BadParameter(str(err)) from None

    return proc


@click.command("init")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("spec.toml"), show_default=True,
              help="Spec file to write (atomically, after validation).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def init_cmd(output: Path, force: bool) -> None:
    """Create a spec file for one TGI instance by answering a few questions."""
    from ..fsutil import check_destination, write_atomic
    from ..ops import init_wizard as wizard

    # Before any question: a destination we cannot write is said now, not after the last answer.
    wizard.refuse_overwrite(output, force)
    check_destination(output, force=True)
    model = click.prompt("Hugging Face model id (owner/name)", value_proc=_asking(wizard.ask_model))
    name = click.prompt("Instance name", default=wizard.default_instance_name(model),
                        value_proc=_asking(wizard.ask_name))
    port = click.prompt("Host port", default=str(wizard.next_free_port()), value_proc=_asking(wizard.ask_port))
    if not wizard.port_is_free(port):
        click.echo(f"note: port {port} is in use on 127.0.0.1 right now; free it before starting {name}")
    gpus = click.prompt(
        "GPUs (all, none, or indices such as 0,1)",
        default="all" if wizard.NVIDIA_CONTROL_DEVICE.exists() else "none",
        value_proc=_asking(wizard.ask_gpus),
    )
    token_file = click.prompt(
        "Token file with HF_TOKEN=... (none for public models)", default=wizard.DEFAULT_TOKEN_FILE,
        value_proc=_asking(wizard.ask_token_file),
    )
    instance: dict[str, Any] = {"model": model, "port": port}
    if gpus is not None:
        instance["gpus"] = gpus
    if token_file is not None:
        instance["environmentFile"] = token_file
    text, _spec = wizard.build_spec_text(name, instance)
    wizard.refuse_overwrite(output, force)  # again: the file may have appeared while we were asking
    write_atomic(output, text, force=True)  # refuse_overwrite decided; a spec has no generated header
    click.echo(f"wrote {output}: instance {name!r} serving {model} on 127.0.0.1:{port}")
    if token_file is not None and not Path(token_file).exists():
        click.echo(f"next: install -D -m 0600 -o root /dev/null {token_file}, then add HF_TOKEN=hf_... to it")
    click.echo(f"next: tgi-nix validate {output}")
