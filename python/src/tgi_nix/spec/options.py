"""Derive NixOS option declarations from the pydantic schema (types, defaults, examples, descriptions)."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ..nix.expr import to_nix
from .schema import Instance, option_name


@dataclass(frozen=True)
class OptionDoc:
    """One option of `services.huggingface-tgi.instances.<name>`, ready for the templates."""

    name: str
    nix_type: str
    description: str
    default: str | None  # Nix literal; None = required
    default_text: str | None
    example: str | None

    @property
    def required(self) -> bool:
        return self.default is None and self.default_text is None


def _int_type(metadata: list[Any]) -> str:
    lo = hi = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            lo = item.ge
        elif isinstance(item, annotated_types.Le):
            hi = item.le
    # The exact bounds of the schema, so a hand-written configuration is held to the same range.
    if lo == 1 and hi is None:
        return "types.ints.positive"
    if lo == 0 and hi is None:
        return "types.ints.unsigned"
    if lo is not None and hi is not None:
        return f"(types.ints.between {lo} {hi})"
    return "types.int"


def _paren(expr: str) -> str:
    return expr if " " not in expr or expr.startswith("(") else f"({expr})"


def nix_type_of(annotation: Any, metadata: list[Any] | None = None) -> str:
    """lib.types expression for a Python annotation (the subset the schema uses)."""
    metadata = list(metadata or [])
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = get_args(annotation)
        for item in extra:
            if isinstance(item, FieldInfo):
                metadata.extend(item.metadata)
            else:
                metadata.append(item)
        return nix_type_of(inner, metadata)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner = nix_type_of(args[0], metadata) if len(args) == 1 else "types.anything"
        return f"types.nullOr {_paren(inner)}"
    if origin is Literal:
        values = " ".join(to_nix(v) for v in get_args(annotation))
        return f"types.enum [ {values} ]"
    if origin is list:
        (item,) = get_args(annotation)
        return f"types.listOf {_paren(nix_type_of(item))}"
    if origin is dict:
        _, value = get_args(annotation)
        return f"types.attrsOf {_paren(nix_type_of(value))}"
    if annotation is bool:
        return "types.bool"
    if annotation is int:
        return _int_type(metadata)
    if annotation is str:
        return "types.str"
    raise TypeError(f"no Nix type for {annotation!r}")


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def option_docs() -> list[OptionDoc]:
    docs: list[OptionDoc] = []
    for field_name, field in Instance.model_fields.items():
        extra = _extra(field)
        nix_type = str(extra.get("nixType") or nix_type_of(field.annotation, field.metadata))
        if field.default is not PydanticUndefined:
            default: str | None = to_nix(field.default)
        elif field.default_factory is not None:
            default = to_nix(field.default_factory())  # type: ignore[call-arg]
        else:
            default = None
        default_text = extra.get("nixDefaultText")
        example = to_nix(field.examples[0]) if field.examples else None
        docs.append(
            OptionDoc(
                name=option_name(field_name),
                nix_type=nix_type,
                description=field.description or "",
                default=default,
                default_text=str(default_text) if default_text is not None else None,
                example=example,
            )
        )
    return docs
