"""`tgi-nix init`: ask for one instance and write a spec file that `tgi-nix validate` accepts.

Every answer is checked by the schema itself (`parse_spec`), so the wizard never accepts a value
that the spec loader would reject, and the written file is read back and validated before it lands.
"""

from __future__ import annotations

import re
import socket
import tomllib
from pathlib import Path
from typing import Any

import click

from ..errors import SpecError
from ..fsutil import write_atomic
from ..spec.loader import parse_spec, spec_toml
from ..spec.schema import Spec

FIRST_PORT = 8080
DEFAULT_TOKEN_FILE = "/var/lib/huggingface-tgi/secrets.env"
NVIDIA_CONTROL_DEVICE = Path("/dev/nvidiactl")
NONE_ANSWERS = ("none", "no", "-")
_CHECK_NAME = "check"
_CHECK_BASE: dict[str, Any] = {"model": "owner/name", "port": FIRST_PORT}


def default_instance_name(model: str) -> str:
    """`deepseek-ai/DeepSeek-R1-Distill-Qwen-7B` -> `deepseek-r1-distill-qwen-7b` (a valid instance name)."""
    base = model.rstrip("/").rsplit("/", 1)[-1].lower()
    name = re.sub(r"[^a-z0-9]+", "-", base).strip("-")
    if not name[:1].isalpha():
        name = f"tgi-{name}"
    return name[:40].rstrip("-")


def port_is_free(port: int, address: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def next_free_port(start: int = FIRST_PORT) -> int:
    for port in range(start, 65536):
        if port_is_free(port):
            return port
    raise SpecError(f"no free TCP port from {start} up")


def _schema_check(instances: dict[str, Any]) -> None:
    """Raise click.BadParameter (click then asks again) with the schema's own message."""
    try:
        parse_spec({"instances": instances}, source="answer")
    except SpecError as err:
        reasons = err.message.splitlines()[1:]
        text = "; ".join(r.replace(f"instances.{_CHECK_NAME}.", "").removeprefix("instances: ") for r in reasons)
        raise click.BadParameter(text) from None


def _field(key: str, value: Any) -> Any:
    _schema_check({_CHECK_NAME: {**_CHECK_BASE, key: value}})
    return value


def ask_model(answer: str) -> str:
    return str(_field("model", answer.strip()))


def ask_name(answer: str) -> str:
    name = answer.strip()
    _schema_check({name: _CHECK_BASE})
    return name


def ask_port(answer: str) -> int:
    try:
        port = int(str(answer).strip())
    except ValueError:
        raise click.BadParameter(f"{answer!r} is not a port number") from None
    return int(_field("port", port))


def ask_gpus(answer: str) -> str | list[int] | None:
    text = answer.strip().lower()
    if text in NONE_ANSWERS or not text:
        return None
    if text == "all":
        return "all"
    try:
        indices = [int(part) for part in re.split(r"[,\s]+", text) if part]
    except ValueError:
        raise click.BadParameter(f"{answer!r}: write all, none, or GPU indices such as 0,1") from None
    _field("gpus", indices)
    return indices


def ask_token_file(answer: str) -> str | None:
    text = answer.strip()
    if text.lower() in NONE_ANSWERS:
        return None
    return str(_field("environmentFile", text))


def render_spec_toml(name: str, instance: dict[str, Any]) -> str:
    comments = ["Written by `tgi-nix init`. Check it with `tgi-nix validate`; every option: docs/options.md."]
    if "environmentFile" in instance:
        comments.append("The token file must be root-only (chmod 600) and hold a line HF_TOKEN=hf_...")
    return spec_toml({name: instance}, comments)


def build_spec_text(name: str, instance: dict[str, Any]) -> tuple[str, Spec]:
    """The TOML text and the spec it parses to; raises SpecError if the text does not round-trip."""
    text = render_spec_toml(name, instance)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"the answers do not make valid TOML ({err}); avoid control characters") from None
    if data != {"instances": {name: instance}}:
        raise SpecError("the answers do not survive a TOML round trip; avoid unusual characters")
    return text, parse_spec(data, "the new spec")


def _refuse_overwrite(output: Path, force: bool) -> None:
    if output.exists() and not force:
        raise SpecError(f"{output} already exists; pass --force to overwrite it")
    if output.is_dir():
        raise SpecError(f"{output} is a directory; give a file name such as spec.toml")


@click.command("init")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("spec.toml"), show_default=True,
              help="Spec file to write (atomically, after validation).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def init_cmd(output: Path, force: bool) -> None:
    """Create a spec file for one TGI instance by answering a few questions."""
    _refuse_overwrite(output, force)
    model = click.prompt("Hugging Face model id (owner/name)", value_proc=ask_model)
    name = click.prompt("Instance name", default=default_instance_name(model), value_proc=ask_name)
    port = click.prompt("Host port", default=str(next_free_port()), value_proc=ask_port)
    if not port_is_free(port):
        click.echo(f"note: port {port} is in use on 127.0.0.1 right now; free it before starting {name}")
    gpus = click.prompt(
        "GPUs (all, none, or indices such as 0,1)",
        default="all" if NVIDIA_CONTROL_DEVICE.exists() else "none",
        value_proc=ask_gpus,
    )
    token_file = click.prompt(
        "Token file with HF_TOKEN=... (none for public models)", default=DEFAULT_TOKEN_FILE, value_proc=ask_token_file
    )
    instance: dict[str, Any] = {"model": model, "port": port}
    if gpus is not None:
        instance["gpus"] = gpus
    if token_file is not None:
        instance["environmentFile"] = token_file
    text, _spec = build_spec_text(name, instance)
    _refuse_overwrite(output, force)  # again: the file may have appeared while we were asking
    write_atomic(output, text)
    click.echo(f"wrote {output}: instance {name!r} serving {model} on 127.0.0.1:{port}")
    if token_file is not None and not Path(token_file).exists():
        click.echo(f"next: install -m 0600 -o root /dev/null {token_file}, then add HF_TOKEN=hf_... to it")
    click.echo(f"next: tgi-nix validate {output}")
