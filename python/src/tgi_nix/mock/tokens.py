"""A deterministic tokenizer and token generator: words chosen from a hash of (model, prompt, seed)."""

from __future__ import annotations

import hashlib
import json
import random
import re
import zlib
from dataclasses import dataclass
from typing import Any

from .constants import EOS_ID, EOS_TEXT, VOCAB, WORDS

TOKEN_RE = re.compile(r"\s*(\w+|[^\w\s])")


@dataclass(frozen=True)
class Piece:
    id: int
    text: str  # decoded text, with its leading whitespace
    start: int  # char offsets of the token proper
    stop: int


def token_id(text: str) -> int:
    return 3 + zlib.crc32(text.strip().encode()) % (VOCAB - 3)


def tokenize(text: str) -> list[Piece]:
    return [Piece(token_id(m.group(1)), m.group(0), m.start(1), m.end(1)) for m in TOKEN_RE.finditer(text)]


@dataclass
class Token:
    id: int
    text: str
    logprob: float
    special: bool = False

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "logprob": self.logprob, "special": self.special}


def _seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()[:8], "big")


def _schema_sample(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value that fits a (simple) JSON schema, for grammar / response_format requests."""
    if not isinstance(schema, dict) or depth > 4:
        return None
    kind = schema.get("type")
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return (
            {k: _schema_sample(v, rng, depth + 1) for k, v in props.items()}
            if isinstance(props, dict)
            else {}
        )
    if kind == "array":
        return [_schema_sample(schema.get("items", {"type": "string"}), rng, depth + 1)]
    if kind == "integer":
        return rng.randint(1, 100)
    if kind == "number":
        return rng.randint(1, 1000) / 10
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return rng.choice(WORDS)


@dataclass
class Plan:
    """A validated generation request (router/src/validation.rs ValidGenerateRequest)."""

    inputs: str
    pieces: list[Piece]
    max_new_tokens: int
    stop: list[str]
    sampling: bool
    seed: int
    top_n_tokens: int
    decoder_input_details: bool
    json_schema: dict[str, Any] | None

    @property
    def input_length(self) -> int:
        return len(self.pieces)


class Generation:
    """Deterministic token stream for one sequence; finish reasons follow TGI's StoppingCriteria order."""

    def __init__(self, model_id: str, plan: Plan) -> None:
        self.plan = plan
        self.seed_used = _seed_of(model_id, plan.inputs, plan.seed if plan.sampling else "greedy")
        self.rng = random.Random(self.seed_used)
        self.natural_length = self.rng.randint(12, 60)
        self.script: list[str] | None = None
        if plan.json_schema is not None:
            text = json.dumps(_schema_sample(plan.json_schema, self.rng), separators=(", ", ": "))
            self.script = [m.group(0) for m in TOKEN_RE.finditer(text)]
        self.tokens: list[Token] = []
        self.top_tokens: list[list[Token]] = []
        self.text = ""
        self.finish_reason: str | None = None

    def _next_text(self, index: int) -> str | None:
        if self.script is not None:
            return self.script[index] if index < len(self.script) else None
        if index >= self.natural_length:
            return None
        last = self.tokens[-1].text if self.tokens else "."
        if index > 0 and last not in {".", ","} and self.rng.random() < 0.12:
            return self.rng.choice([".", ".", ","])
        word = self.rng.choice(WORDS)
        return " " + (word.capitalize() if last == "." else word)

    def step(self) -> tuple[Token, list[Token]]:
        index = len(self.tokens)
        text = self._next_text(index)
        logprob = -self.rng.randint(1, 900) / 256
        token = (
            Token(EOS_ID, EOS_TEXT, logprob, True) if text is None else Token(token_id(text), text, logprob)
        )
        tops: list[Token] = []
        if self.plan.top_n_tokens:
            alt = random.Random(_seed_of(self.seed_used, index))
            tops = [token] + [
                Token(token_id(w), " " + w, logprob - alt.randint(1, 256) / 64)
                for w in alt.sample(WORDS, self.plan.top_n_tokens - 1)
            ]
        self.tokens.append(token)
        self.top_tokens.append(tops)
        if not token.special:
            self.text += token.text
        if len(self.tokens) >= self.plan.max_new_tokens:
            self.finish_reason = "length"
        elif token.special:
            self.finish_reason = "eos_token"
        elif any(self.text.endswith(s) for s in self.plan.stop if s):
            self.finish_reason = "stop_sequence"
        return token, tops

    def prefill(self) -> list[dict[str, Any]]:
        if not self.plan.decoder_input_details:
            return []
        rng = random.Random(_seed_of("prefill", self.plan.inputs))
        return [
            {"id": p.id, "text": p.text, "logprob": None if i == 0 else -rng.randint(1, 2000) / 256}
            for i, p in enumerate(self.plan.pieces)
        ]

    def mean_logprob(self) -> float:
        return sum(t.logprob for t in self.tokens) / max(1, len(self.tokens))
