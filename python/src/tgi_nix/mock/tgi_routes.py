"""TGI's native generation routes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .model import Outcome
from .parsing import ApiError, Body, Params, parse_generate
from .tokens import Generation, tokenize
from .transport import Exchange


def _details(gen: Generation, seed: int | None, with_text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if with_text is not None:
        out["generated_text"] = with_text
    out.update(
        finish_reason=gen.finish_reason,
        generated_tokens=len(gen.tokens),
        seed=seed,
        prefill=gen.prefill(),
        tokens=[t.json() for t in gen.tokens],
    )
    if any(gen.top_tokens):
        out["top_tokens"] = [[t.json() for t in tops] for tops in gen.top_tokens]
    return out


class TgiRoutes(Exchange):
    """TGI's own generation routes: /generate, /generate_stream, / (compat), /vertex, /tokenize."""

    def _compute_headers(self, inputs: list[str]) -> dict[str, str]:
        return {
            "x-compute-type": self.app.s.compute_type,
            "x-compute-characters": str(sum(len(i) for i in inputs)),
        }

    def _generate_json(self, inputs: str, p: Params) -> tuple[dict[str, Any], dict[str, str], Outcome]:
        """generate_internal: the GenerateResponse and its x-* headers."""
        app = self.app
        app.metrics.add("tgi_request_count")
        outcome = app.generate(inputs, p)
        best = outcome.best
        prefix = inputs if p.return_full_text else ""
        response: dict[str, Any] = {"generated_text": prefix + best.text}
        if p.details or p.decoder_input_details:
            details = _details(best, outcome.seed)
            if outcome.others:
                details["best_of_sequences"] = [
                    _details(g, g.plan.seed if g.plan.sampling else None, prefix + g.text)
                    for g in outcome.others
                ]
            response["details"] = details
        headers = self._compute_headers([inputs])
        headers.update(
            app._record_success(
                outcome.start, outcome.queued, outcome.inference_start, outcome.end, len(best.tokens)
            )
        )
        headers["x-prompt-tokens"] = str(outcome.input_length)
        headers["x-generated-tokens"] = str(len(best.tokens))
        return response, headers, outcome

    def route_generate(self, data: Any, body: Body) -> None:
        inputs, params, _ = parse_generate(body, data)
        response, headers, _ = self._generate_json(inputs, params)
        self.send_json(200, response, headers)

    def route_compat(self, data: Any, body: Body) -> None:
        inputs, params, stream = parse_generate(body, data, "CompatGenerateRequest")
        if params.return_full_text is None:
            params.return_full_text = True  # pipeline_tag is text-generation
        if stream:
            self._stream_generate(inputs, params)
        else:
            response, headers, _ = self._generate_json(inputs, params)
            self.send_json(200, [response], headers)

    def route_stream(self, data: Any, body: Body) -> None:
        inputs, params, _ = parse_generate(body, data)
        self._stream_generate(inputs, params)

    def _stream_generate(self, inputs: str, params: Params) -> None:
        self.app.metrics.add("tgi_request_count")

        def events() -> Iterator[str]:
            try:
                for event, _ in self.app.stream(
                    inputs, params, params.details, bool(params.return_full_text)
                ):
                    yield json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            except ApiError as err:
                yield json.dumps(err.body(), ensure_ascii=False, separators=(",", ":"))

        self.sse(events(), {**self._compute_headers([inputs]), "x-accel-buffering": "no"})

    def route_vertex(self, data: Any, body: Body) -> None:
        obj = body.obj(data, "", "VertexRequest")
        instances = obj.get("instances")
        if not isinstance(instances, list):
            raise body.fail("", "missing field `instances`")
        predictions = []
        for i, instance in enumerate(instances):
            inputs, params, _ = parse_generate(body, instance, f"instances[{i}]")
            response, _, _ = self._generate_json(inputs, params)
            predictions.append(response["generated_text"])
        self.send_json(200, {"predictions": predictions})

    def route_tokenize(self, data: Any, body: Body) -> None:
        inputs, _, _ = parse_generate(body, data)
        self.send_json(
            200,
            [
                {"id": p.id, "text": inputs[p.start : p.stop], "start": p.start, "stop": p.stop}
                for p in tokenize(inputs)
            ],
        )
