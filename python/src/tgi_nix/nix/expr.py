"""Python values -> Nix literals (the `nix` filter of every template)."""

from __future__ import annotations

import re
from typing import Any

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*$")
_NIX_KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}


def nix_string(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("${", "\\${")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def nix_key(key: str) -> str:
    return key if _IDENT_RE.match(key) and key not in _NIX_KEYWORDS else nix_string(key)


def to_nix(value: Any, indent: int = 0) -> str:
    """Render JSON-like data as a Nix expression, nixfmt-style (lists/attrsets one item per line)."""
    pad = "  " * (indent + 1)
    end = "  " * indent
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # Nix integers are 64-bit signed; negative literals need parentheses inside lists.
        return str(value) if value >= 0 else f"({value})"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return nix_string(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[ ]"
        items = [to_nix(v, indent + 1) for v in value]
        if all(isinstance(v, (int, str, bool)) or v is None for v in value) and sum(map(len, items)) < 60:
            return "[ " + " ".join(items) + " ]"
        return "[\n" + "".join(f"{pad}{item}\n" for item in items) + f"{end}]"
    if isinstance(value, dict):
        if not value:
            return "{ }"
        lines = [f"{pad}{nix_key(str(k))} = {to_nix(v, indent + 1)};\n" for k, v in value.items()]
        return "{\n" + "".join(lines) + f"{end}}}"
    raise TypeError(f"cannot render {type(value).__name__} as Nix")
