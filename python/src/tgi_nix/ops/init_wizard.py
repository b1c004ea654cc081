"""The answers behind `tgi-nix init`: one instance, checked field by field, written as a spec file that
`tgi-nix validate` accepts.

Every answer is checked by the schema and the core's rules (`checked_spec`), so the wizard never
accepts a value that the spec loader would reject, and the written file is read back and validated before it lands.
"""

from __future__ import annotations

import re
import socket
import tomllib
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..spec.loader import checked_spec, spec_toml
from ..spec.schema import Spec

FIRST_PORT = 8080
DEFAULT_TOKEN_FILE = "/var/lib/huggingface-tgi/secrets.env"
NVIDIA_CONTROL_DEVICE = Path("/dev/nvidiactl")
NONE_ANSWERS = ("none", "no", "-")
_CHECK_NAME = "check"
_CHECK_BASE: dict[str, Any] = {"model": "owner/name", "port": FIRST_PORT}


class BadAnswer(ValueError):
    """An answer the schema rejects, with the schema's message (the CLI asks again)."""


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
    """Raise BadAnswer with the schema's and the core's own message (without the option path)."""
    try:
        checked_spec({"instances": instances}, source="answer")
    except SpecError as err:
        reasons = err.message.splitlines()[1:]
        text = "; ".join(r.split(": ", 1)[1] if r.startswith("instances") else r for r in reasons)
        raise BadAnswer(text) from None


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
        raise BadAnswer(f"{answer!r} is not a port number") from None
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
        raise BadAnswer(f"{answer!r}: write all, none, or GPU indices such as 0,1") from None
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
    return text, checked_spec(data, "the new spec")


def refuse_overwrite(output: Path, force: bool) -> None:
    if output.exists() and not force:
        raise SpecError(f"{output} already exists; pass --force to overwrite it")
    if output.is_dir():
        raise SpecError(f"{output} is a directory; give a file name such as spec.toml")
