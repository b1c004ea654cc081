"""Request bodies decoded the way TGI's router (axum + serde) does, with its rejections and errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """An error answered as TGI's ErrorResponse {"error", "error_type"}."""

    def __init__(self, status: int, error: str, error_type: str, metric: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.error_type, self.metric = status, error, error_type, metric

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_type": self.error_type}


def validation_error(message: str) -> ApiError:
    return ApiError(422, f"Input validation error: {message}", "validation", "validation")


class Rejection(Exception):
    """An axum extractor rejection: status + text/plain body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


EXPECTED = {
    "bool": "a boolean",
    "u32": "u32",
    "u64": "u64",
    "usize": "usize",
    "i32": "i32",
    "f32": "f32",
    "str": "a string",
    "vec_str": "a sequence",
    "map": "a map",
}
LIMITS = {"u32": (0, 2**32 - 1), "u64": (0, 2**64 - 1), "usize": (0, 2**64 - 1), "i32": (-(2**31), 2**31 - 1)}


def unexpected(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


class Body:
    """serde-like typed access to a decoded JSON body, with serde_path_to_error style messages."""

    def __init__(self, raw: str) -> None:
        lines = raw.split("\n")
        self.pos = f"at line {len(lines)} column {len(lines[-1])}"

    def fail(self, path: str, message: str) -> Rejection:
        prefix = f"{path}: " if path else ""
        return Rejection(
            422, f"Failed to deserialize the JSON body into the target type: {prefix}{message} {self.pos}"
        )

    def obj(self, value: Any, path: str, struct: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"invalid type: {unexpected(value)}, expected struct {struct}")
        return value

    def get(
        self,
        obj: dict[str, Any],
        key: str,
        kind: str,
        path: str = "",
        *,
        required: bool = False,
        nullable: bool = True,
        default: Any = None,
    ) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in obj:
            if required:
                raise self.fail(path, f"missing field `{key}`")
            return default
        value = obj[key]
        if value is None and nullable:
            return None
        bad = self.fail(where, f"invalid type: {unexpected(value)}, expected {EXPECTED[kind]}")
        if kind == "bool":
            if not isinstance(value, bool):
                raise bad
        elif kind in LIMITS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad
            low, high = LIMITS[kind]
            if not low <= value <= high:
                raise self.fail(where, f"invalid value: integer `{value}`, expected {kind}")
        elif kind == "f32":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad
            value = float(value)
        elif kind == "str":
            if not isinstance(value, str):
                raise bad
        elif kind == "vec_str":
            if not isinstance(value, list):
                raise bad
            for i, item in enumerate(value):
                if not isinstance(item, str):
                    raise self.fail(f"{where}[{i}]", f"invalid type: {unexpected(item)}, expected a string")
        elif kind == "map" and not isinstance(value, dict):
            raise bad
        return value


@dataclass
class Params:
    """GenerateParameters (router/src/lib.rs)."""

    best_of: int | None = None
    temperature: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    do_sample: bool = False
    max_new_tokens: int | None = 100
    return_full_text: bool | None = None
    stop: list[str] = field(default_factory=list)
    truncate: int | None = None
    watermark: bool = False
    details: bool = False
    decoder_input_details: bool = False
    seed: int | None = None
    top_n_tokens: int | None = None
    grammar: dict[str, Any] | None = None
    adapter_id: str | None = None


PARAM_KINDS = {
    "best_of": "usize",
    "temperature": "f32",
    "repetition_penalty": "f32",
    "frequency_penalty": "f32",
    "top_k": "i32",
    "top_p": "f32",
    "typical_p": "f32",
    "do_sample": "bool",
    "max_new_tokens": "u32",
    "return_full_text": "bool",
    "stop": "vec_str",
    "truncate": "usize",
    "watermark": "bool",
    "details": "bool",
    "decoder_input_details": "bool",
    "seed": "u64",
    "top_n_tokens": "u32",
    "grammar": "map",
    "adapter_id": "str",
}
NOT_NULLABLE = {"do_sample", "stop", "watermark", "details", "decoder_input_details"}


def parse_generate(body: Body, data: Any, struct: str = "GenerateRequest") -> tuple[str, Params, bool]:
    """Returns (inputs, parameters, stream) like serde would for (Compat)GenerateRequest."""
    obj = body.obj(data, "", struct)
    inputs: str = body.get(obj, "inputs", "str", required=True, nullable=False)
    stream = bool(body.get(obj, "stream", "bool", nullable=False, default=False))
    if "parameters" not in obj:  # TGI's default_parameters() samples
        return inputs, Params(do_sample=True), stream
    raw = body.obj(obj["parameters"], "parameters", "GenerateParameters")
    params = Params()
    for key, kind in PARAM_KINDS.items():
        if key in raw:
            setattr(params, key, body.get(raw, key, kind, "parameters", nullable=key not in NOT_NULLABLE))
    if params.grammar is not None:
        variant = params.grammar.get("type")
        if variant not in {"json", "json_object", "regex"}:
            raise body.fail("parameters.grammar", f"unknown variant `{variant}`, expected `json` or `regex`")
        if "value" not in params.grammar:
            raise body.fail("parameters.grammar", "missing field `value`")
    return inputs, params, stream
