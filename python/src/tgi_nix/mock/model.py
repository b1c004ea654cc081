"""The "model": the router's and backend's state (readiness, concurrency limit, validation,
generation, metrics), without HTTP."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .constants import DEFAULT_GENERATION_LENGTH, DOCKER_LABEL, FAIL_MAGIC, GIT_SHA, TGI_VERSION
from .download import ModelStore, model_sha
from .launcher import Settings
from .logger import Logger
from .metrics import Metrics
from .parsing import ApiError, Params, validation_error
from .tokens import Generation, Plan, tokenize


@dataclass
class Outcome:
    """A finished non-streamed generation (InferResponse + timings)."""

    best: Generation
    others: list[Generation]
    input_length: int
    seed: int | None
    start: float
    queued: float
    inference_start: float
    end: float


class MockTGI:
    """Router + backend state: readiness, concurrency limit, validation, generation, metrics."""

    def __init__(
        self, settings: Settings, logger: Logger, store: ModelStore, token_prefix: str | None
    ) -> None:
        self.s, self.log, self.store, self.token_prefix = settings, logger, store, token_prefix
        self.ready = threading.Event()
        self.stopping = threading.Event()
        # Set by POST /mock/unhealthy: the shard's health check fails from then on, as a wedged GPU
        # makes TGI's /health answer 503 while the process lives.
        self.sick = threading.Event()
        self.permits = threading.BoundedSemaphore(max(1, settings.max_concurrent_requests))
        self.no_permits = settings.max_concurrent_requests == 0
        self._lock = threading.Lock()
        self.in_flight = 0
        self.exit_code = 0
        self.metrics = Metrics(settings.max_input_tokens, settings.max_total_tokens)
        self.metrics.set("tgi_batch_max_total_tokens", settings.max_batch_total_tokens)
        self.sha = model_sha(settings.model_id, settings.revision)

    # -- informational
    def info(self) -> dict[str, Any]:
        s = self.s
        return {
            "model_id": s.model_id,
            "model_sha": self.sha,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": s.max_concurrent_requests,
            "max_best_of": s.max_best_of,
            "max_stop_sequences": s.max_stop_sequences,
            "max_input_tokens": s.max_input_tokens,
            "max_total_tokens": s.max_total_tokens,
            "validation_workers": s.validation_workers,
            "max_client_batch_size": s.max_client_batch_size,
            "router": "text-generation-router",
            "version": TGI_VERSION,
            "sha": GIT_SHA,
            "docker_label": DOCKER_LABEL,
        }

    def state(self) -> dict[str, Any]:
        return {
            "downloads": self.store.downloads(),
            "hf_token_sha256_prefix": self.token_prefix,
            "ready": self.healthy(),
            "args": self.s.public_args,
            "requests_in_flight": self.in_flight,
            "model_dir": str(self.store.model_dir),
            "cached_at_start": self.store.cached,
        }

    def healthy(self) -> bool:
        return self.ready.is_set() and not self.stopping.is_set() and not self.sick.is_set()

    # -- concurrency
    def _acquire(self, count: int = 1) -> None:
        got = 0
        while got < count and not self.no_permits and self.permits.acquire(blocking=False):
            got += 1
        if got < count:
            for _ in range(got):
                self.permits.release()
            self.metrics.add("tgi_request_failure", err="overloaded")
            self.log.error("no permits available", target="text_generation_router::infer")
            raise ApiError(429, "Model is overloaded", "overloaded")
        with self._lock:
            self.in_flight += count
            self.metrics.set("tgi_batch_current_size", self.in_flight)

    def _release(self, count: int = 1) -> None:
        with self._lock:
            self.in_flight -= count
            self.metrics.set("tgi_batch_current_size", self.in_flight)
        for _ in range(count):
            self.permits.release()

    # -- validation (router/src/validation.rs, same order and messages)
    def validate(self, inputs: str, p: Params) -> Plan:
        try:
            return self._validate(inputs, p)
        except ApiError as err:
            self.metrics.add("tgi_request_failure", err="validation")
            self.log.error(
                err.error.removeprefix("Input validation error: "), target="text_generation_router::infer"
            )
            raise

    def _validate(self, inputs: str, p: Params) -> Plan:
        s = self.s
        best_of = 1 if p.best_of is None else p.best_of
        sampling = p.do_sample or any(v is not None for v in (p.temperature, p.top_k, p.top_p, p.typical_p))
        if best_of > 1 and not sampling:
            raise validation_error("you must use sampling when `best_of` is > 1")
        if p.temperature is not None and p.temperature <= 0:
            raise validation_error("`temperature` must be strictly positive")
        if p.repetition_penalty is not None and p.repetition_penalty <= 0:
            raise validation_error("`repetition_penalty` must be strictly positive")
        if p.frequency_penalty is not None and not -2.0 <= p.frequency_penalty <= 2.0:
            raise validation_error("`frequency_penalty` must be >= -2.0 and <= 2.0")
        if p.top_p is not None and not 0.0 < p.top_p < 1.0:
            raise validation_error("`top_p` must be > 0.0 and < 1.0")
        if p.typical_p is not None and not 0.0 < p.typical_p < 1.0:
            raise validation_error("`typical_p` must be > 0.0 and < 1.0")
        if p.top_k is not None and p.top_k <= 0:
            raise validation_error("`top_k` must be strictly positive")
        if p.max_new_tokens == 0:
            raise validation_error("`max_new_tokens` must be strictly positive")
        if len(p.stop) > s.max_stop_sequences:
            raise validation_error(
                f"`stop` supports up to {s.max_stop_sequences} stop sequences. Given: {len(p.stop)}"
            )
        if p.seed is not None and best_of > 1:
            raise validation_error("`seed` must not be set when `best_of` > 1")
        seed = p.seed if p.seed is not None else random.getrandbits(64)
        top_n = p.top_n_tokens or 0
        if top_n > s.max_top_n_tokens:
            raise validation_error(f"`top_n_tokens` must be >= 0 and <= {s.max_top_n_tokens}. Given: {top_n}")
        if inputs == "":
            raise validation_error("`inputs` cannot be empty")
        if p.truncate is not None and (p.truncate == 0 or p.truncate > s.max_input_tokens):
            raise validation_error(
                f"`truncate` must be strictly positive and less than {s.max_input_tokens}. "
                f"Given: {p.truncate}"
            )
        pieces = tokenize(inputs)
        if p.truncate is not None:
            pieces = pieces[-p.truncate :]
        length = len(pieces)
        max_new = p.max_new_tokens
        if max_new is None:
            max_new = min(max(s.max_total_tokens - length, 0), DEFAULT_GENERATION_LENGTH)
        if length + max_new > s.max_total_tokens:
            raise validation_error(
                f"`inputs` tokens + `max_new_tokens` must be <= {s.max_total_tokens}. "
                f"Given: {length} `inputs` tokens and {max_new} `max_new_tokens`"
            )
        if length > s.max_input_tokens:
            raise validation_error(
                f"`inputs` must have less than {s.max_input_tokens} tokens. Given: {length}"
            )
        schema = None
        if p.grammar is not None and p.grammar.get("type") in {"json", "json_object"}:
            value = p.grammar.get("value")
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError as err:
                    raise validation_error(f"grammar is not valid: {err}") from err
            if not isinstance(value, dict):
                raise validation_error("grammar is not supported")
            if "properties" not in value:
                raise validation_error("grammar is not valid: Grammar must have a 'properties' field")
            schema = value
        self.metrics.observe("tgi_request_input_length", length)
        self.metrics.observe("tgi_request_max_new_tokens", max_new)
        # The shard samples (and reports the seed) when asked to or when a logits warper is active.
        warped = (
            p.temperature not in (None, 1.0)
            or p.top_k not in (None, 0)
            or (p.top_p or 1.0) < 1.0
            or (p.typical_p or 1.0) < 1.0
        )
        return Plan(
            inputs,
            pieces,
            max_new,
            list(p.stop),
            p.do_sample or warped,
            seed,
            top_n,
            p.decoder_input_details,
            schema,
        )

    # -- generation
    def _sleep_token(self) -> None:
        if self.s.token_delay > 0 and self.stopping.wait(self.s.token_delay):
            raise ApiError(500, "Incomplete generation", "incomplete_generation", "incomplete")

    def _check_failure(self, plan: Plan) -> None:
        if FAIL_MAGIC in plan.inputs:
            self.metrics.add("tgi_batch_inference_count", method="prefill")
            self.metrics.add("tgi_request_failure", err="generation")
            message = f"Server error: mock generation failure requested by {FAIL_MAGIC}"
            self.log.error(message, target="text_generation_router_v3::backend")
            raise ApiError(424, f"Request failed during generation: {message}", "generation")

    def _record_success(
        self, start: float, queued: float, inf_start: float, end: float, tokens: int
    ) -> dict[str, str]:
        total, validation, queue, inference = end - start, queued - start, inf_start - queued, end - inf_start
        per_token = inference / max(1, tokens)
        m = self.metrics
        m.add("tgi_request_success")
        for name, value in (
            ("duration", total),
            ("validation_duration", validation),
            ("queue_duration", queue),
            ("inference_duration", inference),
            ("mean_time_per_token_duration", per_token),
            ("generated_tokens", tokens),
        ):
            m.observe(f"tgi_request_{name}", value)
        m.observe("tgi_batch_next_size", 1)
        for method, count in (("prefill", 1), ("decode", tokens - 1)):
            if count > 0:
                m.add("tgi_batch_inference_count", count, method=method)
                m.add("tgi_batch_inference_success", count, method=method)
                for suffix in ("inference", "forward", "decode", "filter"):
                    m.observe(f"tgi_batch_{suffix}_duration", per_token, method=method)
        self.log.info(
            f'Success total_time="{total:.6f}s" validation_time="{validation:.6f}s" '
            f'queue_time="{queue:.6f}s" inference_time="{inference:.6f}s" '
            f'time_per_token="{per_token:.6f}s" generated_tokens={tokens}',
            target="text_generation_router::server",
            span="generate",
        )
        return {
            "x-total-time": str(int(total * 1000)),
            "x-validation-time": str(int(validation * 1000)),
            "x-queue-time": str(int(queue * 1000)),
            "x-inference-time": str(int(inference * 1000)),
            "x-time-per-token": str(int(per_token * 1000)),
            "x-compute-time": repr(total),
        }

    def generate(self, inputs: str, p: Params) -> Outcome:
        """Infer::generate / generate_best_of: permit(s) -> validation -> tokens (TGI order)."""
        start = time.monotonic()
        best_of = p.best_of if p.best_of is not None and p.best_of > 1 else 1
        if best_of > 1:
            if self.s.max_best_of == 1:
                raise validation_error("`best_of` != 1 is not allowed for this endpoint")
            if best_of > self.s.max_best_of:
                raise validation_error(f"`best_of` must be > 0 and <= {self.s.max_best_of}. Given: {best_of}")
        self._acquire(best_of)
        try:
            plans = [self.validate(inputs, p) for _ in range(best_of)]
            queued = time.monotonic()
            self._check_failure(plans[0])
            inf_start = time.monotonic()
            gens = [Generation(self.s.model_id, plan) for plan in plans]
            while any(g.finish_reason is None for g in gens):
                self._sleep_token()
                for g in gens:
                    if g.finish_reason is None:
                        g.step()
            end = time.monotonic()
        finally:
            self._release(best_of)
        best = max(gens, key=lambda g: g.mean_logprob())
        others = [g for g in gens if g is not best]
        seed = best.plan.seed if best.plan.sampling else None
        return Outcome(best, others, best.plan.input_length, seed, start, queued, inf_start, end)

    def stream(
        self, inputs: str, p: Params, details: bool, full_text: bool
    ) -> Iterator[tuple[dict[str, Any], Generation]]:
        """generate_stream_internal: yields (StreamResponse, generation); raises ApiError in-band."""
        start = time.monotonic()
        if (p.best_of if p.best_of is not None else 1) != 1:
            self.metrics.add("tgi_request_failure", err="validation")
            raise validation_error("`best_of` != 1 is not supported when streaming tokens")
        if p.decoder_input_details:
            self.metrics.add("tgi_request_failure", err="validation")
            raise validation_error("`decoder_input_details` == true is not supported when streaming tokens")
        self._acquire()
        try:
            plan = self.validate(inputs, p)
            queued = time.monotonic()
            self._check_failure(plan)
            gen, index = Generation(self.s.model_id, plan), 0
            inf_start = time.monotonic()
            while gen.finish_reason is None:
                self._sleep_token()
                token, tops = gen.step()
                index += 1
                event: dict[str, Any] = {"index": index, "token": token.json()}
                if tops:
                    event["top_tokens"] = [t.json() for t in tops]
                event["generated_text"], event["details"] = None, None
                if gen.finish_reason is not None:
                    self._record_success(start, queued, inf_start, time.monotonic(), len(gen.tokens))
                    event["generated_text"] = (inputs if full_text else "") + gen.text
                    if details:
                        event["details"] = {
                            "finish_reason": gen.finish_reason,
                            "generated_tokens": len(gen.tokens),
                            "seed": plan.seed if plan.sampling else None,
                            "input_length": plan.input_length,
                        }
                yield event, gen
        finally:
            self._release()
