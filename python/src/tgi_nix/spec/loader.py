"""Loading a spec file (TOML) into the schema, with errors a user can act on."""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import SpecError
from .schema import Instance, Spec, option_name

INSTANCE_KEYS = sorted(option_name(name) for name in Instance.model_fields)
SPEC_KEYS = sorted(Spec.model_fields)
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def _segment(part: str) -> str:
    # Keys with spaces, dots or control characters are quoted so the path stays unambiguous.
    return part if _PLAIN_KEY_RE.match(part) else json.dumps(part)


def _dotted(loc: Iterable[int | str]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif parts:
            parts.append(f".{_segment(part)}")
        else:
            parts.append(_segment(str(part)))
    return "".join(parts) or "spec"


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic inserts union branch tags (e.g. "literal['all']", "list[...]") into locations.
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))


def _explain(error: ErrorDetails) -> str:
    loc = _clean_loc(tuple(error["loc"]))
    path = _dotted(loc)
    kind = error["type"]
    got = error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        keys = INSTANCE_KEYS if len(loc) == 3 and loc[0] == "instances" else SPEC_KEYS
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(keys)}"
        return f"{path}: unknown key; {hint}"
    if kind == "missing":
        return f"{path}: required key is missing; add it to the instance"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    elif got is not None and not isinstance(got, dict):
        message = f"{message} (got {got!r})"
    return f"{path}: {message}"


def format_validation_error(err: ValidationError) -> str:
    lines: list[str] = []
    for error in err.errors():
        line = _explain(error)
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def parse_spec(data: dict[str, Any], source: str = "spec") -> Spec:
    """Keys and types only (the schema); the rules on the values are the Nix core's (`load_spec`)."""
    try:
        return Spec.model_validate(data)
    except ValidationError as err:
        raise SpecError(f"{source} is invalid:\n{format_validation_error(err)}") from None


def load_spec(path: str | Path, *, check: bool = True) -> Spec:
    """Read and validate a TOML spec: keys and types here, then (with `check`) the core's rules,
    the same ones the NixOS module asserts. Every failure is a `SpecError` naming the file and the
    option path."""
    spec_path = Path(path)
    try:
        raw = spec_path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{spec_path}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{spec_path}: is a directory, expected a TOML spec file") from None
    except OSError as err:
        raise SpecError(f"{spec_path}: cannot read: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{spec_path}: not UTF-8 text (byte {err.start}); save the spec as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{spec_path}: invalid TOML: {err}") from None
    return checked_spec(data, str(spec_path)) if check else parse_spec(data, str(spec_path))


def checked_spec(data: dict[str, Any], source: str = "spec") -> Spec:
    """`parse_spec` plus the core's rules on the values (core/rules.nix, core/guarantees.nix)."""
    from ..nix.bridge import check

    spec = parse_spec(data, source)
    check(spec, source)
    return spec


def toml_value(value: Any) -> str:
    """One spec value as TOML (strings, booleans, integers, lists, inline tables)."""
    if isinstance(value, str):
        # JSON string escapes are a subset of TOML's basic-string escapes; JSON leaves DEL (U+007F)
        # raw, which TOML forbids in basic strings.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_segment(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML rendering for {value!r}")


def spec_toml(instances: dict[str, dict[str, Any]], comments: Iterable[str] = ()) -> str:
    """A spec file's text for `instances` (name -> options by their spec names)."""
    lines = [f"# {line}" for line in comments]
    for name, options in instances.items():
        lines += ["", f"[instances.{_segment(name)}]"]
        lines += [f"{_segment(key)} = {toml_value(value)}" for key, value in options.items()]
    return "\n".join(lines).lstrip("\n") + "\n"
