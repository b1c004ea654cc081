"""The TGI client: unit tests on httpx.MockTransport, then integration tests against the mock server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tgi_nix.errors import EndpointError
from tgi_nix.ops.client import (
    AsyncTGIClient,
    EndpointUnreachable,
    GenerationFailed,
    ModelLoading,
    Overloaded,
    TGIClient,
    TGIError,
    Unauthorized,
    ValidationFailed,
    metric_total,
)
from tgi_nix.ops.client_models import ChatMessage, Info

BASE = "http://tgi.test:8080"

# Responses recorded from real TGI (huggingface/text-generation-inference integration-tests snapshots).
REAL_GENERATE = {  # test_flash_llama/test_flash_llama.json (trimmed to 3 tokens)
    "details": {
        "best_of_sequences": None,
        "finish_reason": "length",
        "generated_tokens": 3,
        "prefill": [
            {"id": 1, "logprob": None, "text": "<s>"},
            {"id": 4321, "logprob": -8.6875, "text": "Test"},
            {"id": 2009, "logprob": -11.546875, "text": "request"},
        ],
        "seed": None,
        "tokens": [
            {"id": 363, "logprob": -1.5351562, "special": False, "text": " for"},
            {"id": 847, "logprob": -2.5722656, "special": False, "text": " /"},
            {"id": 2754, "logprob": -2.2714844, "special": False, "text": "api"},
        ],
        "top_tokens": None,
    },
    "generated_text": " for /api",
}
REAL_CHAT = {  # test_chat_llama/test_flash_llama_simple.json
    "choices": [{
        "finish_reason": "length", "index": 0, "logprobs": None,
        "message": {"content": "As of your last question", "name": None, "role": "assistant", "tool_calls": None},
        "usage": None,
    }],
    "created": 1716553098, "id": "", "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "object": "text_completion",
    "system_fingerprint": "2.0.5-dev0-native",
    "usage": {"completion_tokens": 100, "prompt_tokens": 62, "total_tokens": 162},
}
_CHUNK_BASE = {"created": 1741265133, "id": "", "model": "meta-llama/Llama-3.1-8B-Instruct",
               "object": "chat.completion.chunk", "service_tier": None, "system_fingerprint": "3.1.2-dev0-native"}


def _delta(content: str, finish: str | None) -> dict[str, Any]:
    return {**_CHUNK_BASE, "usage": None, "choices": [{
        "delta": {"content": content, "function_call": None, "refusal": None, "role": "assistant",
                  "tool_calls": None},
        "finish_reason": finish, "index": 0, "logprobs": None}]}


REAL_CHAT_STREAM = [  # test_completion_prompts/test_chat_openai_usage.json
    _delta("OK", None), _delta("!", None), _delta("", "stop"),
    {**_CHUNK_BASE, "choices": [], "usage": {"completion_tokens": 3, "completion_tokens_details": None,
                                             "prompt_tokens": 39, "prompt_tokens_details": None,
                                             "total_tokens": 42}},
]
REAL_COMPLETION = {  # test_completion_prompts/test_flash_llama_completion_single_prompt.json
    "choices": [{"finish_reason": "length", "index": 0, "logprobs": None, "text": " PR for flake8"}],
    "created": 1712862926, "id": "", "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "object": "text_completion",
    "system_fingerprint": "1.4.5-native", "usage": {"completion_tokens": 5, "prompt_tokens": 6, "total_tokens": 11},
}
INFO = {"model_id": "org/model", "model_sha": None, "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128, "max_best_of": 2, "max_stop_sequences": 4, "max_input_tokens": 4095,
        "max_total_tokens": 4096, "validation_workers": 2, "max_client_batch_size": 4,
        "router": "text-generation-router", "version": "3.3.7", "sha": None, "docker_label": None,
        "some_future_field": [1, 2]}
METRICS = """# HELP tgi_request_count Total number of requests
# TYPE tgi_request_count counter
tgi_request_count 7
# TYPE tgi_request_failure counter
tgi_request_failure{err="validation"} 2
tgi_request_failure{err="generation"} 1
# TYPE tgi_request_duration histogram
tgi_request_duration_bucket{le="0.5"} 3
tgi_request_duration_bucket{le="+Inf"} 4
tgi_request_duration_sum 1.5
tgi_request_duration_count 4
"""


def token_event(index: int, text: str, last: bool = False) -> dict[str, Any]:
    return {"index": index, "token": {"id": index, "text": text, "logprob": -0.5, "special": False},
            "generated_text": "final" if last else None,
            "details": {"finish_reason": "length", "generated_tokens": index, "seed": None,
                        "input_length": 2} if last else None}


def sse(*events: Any, chunk: int | None = None) -> httpx.Response:
    """An event-stream response; `chunk` splits the body into small pieces like a real network read."""
    body = "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events).encode()
    headers = {"content-type": "text/event-stream"}
    if chunk is None:
        return httpx.Response(200, headers=headers, content=body)
    pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)]
    return httpx.Response(200, headers=headers, content=iter(pieces))


Item = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler: answers with `items` in order (the last one repeats), records requests."""

    def __init__(self, *items: Item) -> None:
        self.items = list(items)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            return item
        return item(request)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def client(script: Script, **kwargs: Any) -> TGIClient:
    return TGIClient(BASE, transport=httpx.MockTransport(script), **kwargs)


def aclient(script: Script, **kwargs: Any) -> AsyncTGIClient:
    return AsyncTGIClient(BASE, transport=httpx.MockTransport(script), **kwargs)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff sleeps of both clients, recorded instead of slept."""
    recorded: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr("tgi_nix.ops.client.time.sleep", recorded.append)
    monkeypatch.setattr("tgi_nix.ops.client.asyncio.sleep", fake_async_sleep)
    return recorded


# --------------------------------------------------------------------------------- unit: each method
def test_health_true_on_200_false_on_503_without_retrying(sleeps: list[float]) -> None:
    script = Script(httpx.Response(200))
    assert client(script).health() is True
    script = Script(httpx.Response(503, json={"error": "unhealthy", "error_type": "healthcheck"}))
    assert client(script).health() is False
    assert len(script.requests) == 1 and sleeps == []
    assert script.requests[0].method == "GET" and script.requests[0].url.path == "/health"


def test_info_parses_and_keeps_unknown_fields() -> None:
    info = client(Script(httpx.Response(200, json=INFO))).info()
    assert isinstance(info, Info)
    assert (info.model_id, info.max_input_tokens, info.version, info.sha) == ("org/model", 4095, "3.3.7", None)
    assert info.model_extra == {"some_future_field": [1, 2]}


def test_info_of_old_tgi_with_only_legacy_fields() -> None:
    old = {"model_id": "bigscience/bloom-560m", "model_dtype": "torch.float16", "model_device_type": "cuda",
           "max_input_length": 1024, "waiting_served_ratio": 1.2, "version": "1.4.0"}
    info = client(Script(httpx.Response(200, json=old))).info()
    assert info.max_input_length == 1024 and info.max_input_tokens is None and info.model_dtype == "torch.float16"


def test_models() -> None:
    body = {"object": "list", "data": [{"id": "org/model", "object": "model", "created": 0, "owned_by": "org/model"}]}
    models = client(Script(httpx.Response(200, json=body))).models()
    assert [m.id for m in models] == ["org/model"]


def test_generate_sends_tgi_request_and_parses_real_response() -> None:
    script = Script(httpx.Response(200, json=REAL_GENERATE))
    response = client(script).generate("Test request", max_new_tokens=3, do_sample=False, stop=["\n"])
    assert script.bodies == [{"inputs": "Test request",
                              "parameters": {"details": True, "max_new_tokens": 3, "do_sample": False,
                                             "stop": ["\n"]}}]
    assert script.requests[0].url == f"{BASE}/generate"
    assert response.generated_text == " for /api"
    assert response.details is not None
    assert response.details.finish_reason == "length" and response.details.generated_tokens == 3
    assert response.details.prefill[0].logprob is None and response.details.prefill[1].text == "Test"
    assert [t.text for t in response.details.tokens] == [" for", " /", "api"]


def test_generate_details_can_be_turned_off() -> None:
    script = Script(httpx.Response(200, json={"generated_text": "x"}))
    assert client(script).generate("a", details=False).details is None
    assert script.bodies[0]["parameters"] == {"details": False}


def test_generate_rejects_unknown_parameters_before_sending() -> None:
    script = Script(httpx.Response(200, json=REAL_GENERATE))
    with pytest.raises(TypeError, match="max_tokens"):
        client(script).generate("a", max_tokens=3)  # type: ignore[call-arg]
    assert script.requests == []


def test_generate_stream_yields_tokens_and_final_details() -> None:
    events = [token_event(1, " a"), token_event(2, " b"), token_event(3, " c", last=True)]
    script = Script(sse(*events, chunk=7))
    tokens = list(client(script).generate_stream("x", max_new_tokens=3))
    assert [t.token.text for t in tokens] == [" a", " b", " c"]
    assert [t.generated_text for t in tokens] == [None, None, "final"]
    assert tokens[-1].details is not None and tokens[-1].details.input_length == 2
    assert tokens[0].details is None
    request = script.requests[0]
    assert request.url.path == "/generate_stream" and request.headers["accept"] == "text/event-stream"


def test_generate_stream_is_lazy_and_raises_in_band_error_after_good_tokens() -> None:
    error = {"error": "Request failed during generation: Server error: CUDA OOM", "error_type": "generation"}
    script = Script(sse(token_event(1, " a"), error))
    stream = client(script).generate_stream("x")
    assert script.requests == []  # nothing sent until iterated
    assert next(stream).token.text == " a"
    with pytest.raises(GenerationFailed) as info:
        next(stream)
    assert info.value.error_type == "generation" and "CUDA OOM" in info.value.server_message
    assert info.value.status_code is None and "sent an error event" in info.value.message


def test_stream_error_status_raises_before_any_event() -> None:
    body = {"error": "Input validation error: `top_p` must be > 0.0 and < 1.0", "error_type": "validation"}
    with pytest.raises(ValidationFailed) as info:
        list(client(Script(httpx.Response(422, json=body))).generate_stream("x", top_p=3.0))
    assert info.value.status_code == 422 and info.value.server_message == body["error"]


def test_connection_dropped_mid_stream_is_endpoint_unreachable() -> None:
    def body() -> Iterator[bytes]:
        yield f"data: {json.dumps(token_event(1, ' a'))}\n\n".encode()
        raise httpx.ReadError("connection reset by peer")

    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())
    stream = client(Script(response)).generate_stream("x")
    assert next(stream).token.text == " a"
    with pytest.raises(EndpointUnreachable) as info:
        next(stream)
    assert info.value.reason == "connection lost" and "generate_stream" in info.value.message


def test_stream_that_is_not_an_event_stream_is_an_error() -> None:
    with pytest.raises(TGIError, match="did not answer with an event stream"):
        list(client(Script(httpx.Response(200, json={"generated_text": "x"}))).generate_stream("x"))


def test_stream_with_a_non_json_event_is_an_error() -> None:
    with pytest.raises(TGIError, match="not JSON"):
        list(client(Script(sse("<html>"))).generate_stream("x"))


def test_chat_sends_openai_request_and_parses_real_response() -> None:
    script = Script(httpx.Response(200, json=REAL_CHAT))
    messages: list[ChatMessage | dict[str, str]] = [ChatMessage(role="system", content="be brief"), {"role": "user", "content": "weather?"}]
    completion = client(script).chat(messages, max_tokens=100, seed=1)
    assert script.requests[0].url.path == "/v1/chat/completions"
    assert script.bodies[0] == {"model": "tgi", "max_tokens": 100, "seed": 1, "stream": False,
                                "messages": [{"role": "system", "content": "be brief"},
                                             {"role": "user", "content": "weather?"}]}
    assert completion.choices[0].message.content == "As of your last question"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.total_tokens == 162


def test_chat_stream_stops_at_done_and_parses_real_chunks() -> None:
    never = _delta("after done", None)
    script = Script(sse(*REAL_CHAT_STREAM, "[DONE]", never, chunk=11))
    chunks = list(client(script).chat([{"role": "user", "content": "hi"}], stream=True,
                                      stream_options={"include_usage": True}))
    assert len(chunks) == 4
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "OK!"
    assert chunks[2].choices[0].finish_reason == "stop"
    assert chunks[3].choices == [] and chunks[3].usage is not None and chunks[3].usage.total_tokens == 42
    assert script.bodies[0]["stream"] is True


def test_chat_stream_openai_style_error_event() -> None:
    error = {"error": {"message": "Input validation error: `top_p` must be > 0.0 and < 1.0",
                       "http_status_code": 422}}
    with pytest.raises(ValidationFailed) as info:
        list(client(Script(sse(error, "[DONE]"))).chat([{"role": "user", "content": "x"}], stream=True))
    assert info.value.status_code == 422 and "top_p" in info.value.server_message


def test_completions_plain_and_streamed() -> None:
    script = Script(httpx.Response(200, json=REAL_COMPLETION))
    completion = client(script).completions("What is", max_tokens=5)
    assert completion.choices[0].text == " PR for flake8" and completion.usage is not None
    assert script.bodies[0] == {"model": "tgi", "max_tokens": 5, "prompt": "What is", "stream": False}
    chunk = {**REAL_COMPLETION, "usage": None, "choices": [{"index": 0, "text": " PR", "logprobs": None,
                                                            "finish_reason": ""}]}
    chunks = list(client(Script(sse(chunk, REAL_COMPLETION, "[DONE]"))).completions("What is", stream=True))
    assert [c.choices[0].text for c in chunks] == [" PR", " PR for flake8"]


def test_metrics_parsed_with_prometheus_parser() -> None:
    metrics = client(Script(httpx.Response(200, text=METRICS))).metrics()
    assert {"tgi_request_count", "tgi_request_failure", "tgi_request_duration"} <= set(metrics)
    assert metrics["tgi_request_count"].type == "counter"
    assert metric_total(metrics, "tgi_request_count") == 7
    assert metric_total(metrics, "tgi_request_failure") == 3  # summed over labels
    assert metric_total(metrics, "tgi_queue_size") is None


def test_metrics_that_are_not_prometheus_text_are_an_error() -> None:
    with pytest.raises(TGIError, match="Prometheus"):
        client(Script(httpx.Response(200, text="tgi_request_count{ 7\n"))).metrics()


def test_unexpected_response_shape_names_the_field() -> None:
    with pytest.raises(TGIError, match=r"unexpected Info: model_id: Field required"):
        client(Script(httpx.Response(200, json={"version": "3"}))).info()


# ----------------------------------------------------------------------------------- unit: errors
@pytest.mark.parametrize(
    ("status", "body", "cls", "error_type"),
    [
        (401, b"", Unauthorized, None),
        (422, {"error": "Input validation error: `inputs` cannot be empty", "error_type": "validation"},
         ValidationFailed, "validation"),
        (424, {"error": "Request failed during generation: Server error: boom", "error_type": "generation"},
         GenerationFailed, "generation"),
        (429, {"error": "Model is overloaded", "error_type": "overloaded"}, Overloaded, "overloaded"),
        (503, {"error": "unhealthy", "error_type": "healthcheck"}, ModelLoading, "healthcheck"),
        (500, {"error": "Incomplete generation", "error_type": "incomplete_generation"}, GenerationFailed,
         "incomplete_generation"),
        (502, b"<html>Bad Gateway</html>", TGIError, None),
    ],
)
def test_error_statuses_map_to_typed_errors(status: int, body: Any, cls: type[TGIError],
                                            error_type: str | None) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    script = Script(httpx.Response(status, content=content))
    with pytest.raises(cls) as info:
        client(script, retries=0).generate("x")
    err = info.value
    assert type(err) is cls and isinstance(err, EndpointError) and err.exit_code == 5
    assert err.status_code == status and err.error_type == error_type and err.url == f"{BASE}/generate"
    if isinstance(body, dict):
        assert err.server_message == body["error"] and body["error"] in err.message
    assert len(script.requests) == 1


def test_unauthorized_message_tells_what_to_do() -> None:
    with pytest.raises(Unauthorized, match="--api-key"):
        client(Script(httpx.Response(401))).generate("x")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "unknown host"),
        (httpx.ConnectTimeout("timed out"), "connect timeout"),
        (httpx.ReadTimeout("timed out"), "timeout"),
        (httpx.RemoteProtocolError("Server disconnected"), "connection lost"),
    ],
)
def test_transport_errors_become_endpoint_unreachable(exc: Exception, reason: str) -> None:
    with pytest.raises(EndpointUnreachable) as info:
        client(Script(exc), retries=0).info()
    assert info.value.reason == reason and info.value.exit_code == 5
    assert info.value.url == f"{BASE}/info" and f"{BASE}/info" in info.value.message


def test_refused_connection_message_says_what_to_check() -> None:
    with pytest.raises(EndpointUnreachable, match="is the instance running"):
        client(Script(httpx.ConnectError("[Errno 111] Connection refused")), retries=0).health()


# ---------------------------------------------------------------------------------- unit: retries
def test_503_and_429_are_retried_with_exponential_backoff(sleeps: list[float]) -> None:
    loading = httpx.Response(503, json={"error": "unhealthy", "error_type": "healthcheck"})
    busy = httpx.Response(429, json={"error": "Model is overloaded", "error_type": "overloaded"})
    script = Script(loading, busy, loading, httpx.Response(200, json=REAL_GENERATE))
    response = client(script, retries=3, backoff=0.25).generate("x")
    assert response.generated_text == " for /api"
    assert len(script.requests) == 4 and sleeps == [0.25, 0.5, 1.0]


def test_retries_give_up_with_the_last_error(sleeps: list[float]) -> None:
    script = Script(httpx.Response(429, json={"error": "Model is overloaded", "error_type": "overloaded"}))
    with pytest.raises(Overloaded):
        client(script, retries=2).generate("x")
    assert len(script.requests) == 3 and sleeps == [0.5, 1.0]


def test_connect_errors_are_retried_then_reported(sleeps: list[float]) -> None:
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(EndpointUnreachable):
        client(script, retries=2, backoff=1.0).info()
    assert len(script.requests) == 3 and sleeps == [1.0, 2.0]
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, json=INFO))
    assert client(script, retries=1).info().model_id == "org/model"


def test_read_timeouts_and_client_errors_are_not_retried(sleeps: list[float]) -> None:
    script = Script(httpx.ReadTimeout("timed out"))
    with pytest.raises(EndpointUnreachable):
        client(script, retries=5).generate("x")
    script2 = Script(httpx.Response(422, json={"error": "bad", "error_type": "validation"}))
    with pytest.raises(ValidationFailed):
        client(script2, retries=5).generate("x")
    assert len(script.requests) == 1 and len(script2.requests) == 1 and sleeps == []


def test_retry_statuses_and_backoff_cap_are_configurable(sleeps: list[float]) -> None:
    script = Script(httpx.Response(502), httpx.Response(503), httpx.Response(200, json=INFO))
    with pytest.raises(ModelLoading):
        client(script, retries=4, retry_statuses={502}).info()
    assert len(script.requests) == 2
    assert sleeps == [0.5]
    busy = [httpx.Response(429, headers={"retry-after": seconds}, json={"error": "x", "error_type": "overloaded"})
            for seconds in ("3", "100")]
    script = Script(*busy, httpx.Response(200, json=INFO))
    client(script, retries=2, backoff=0.1).info()
    assert sleeps == [0.5, 3.0, 8.0]  # Retry-After is honoured when longer than the backoff, up to the cap


def test_streams_retry_before_the_first_event(sleeps: list[float]) -> None:
    script = Script(httpx.Response(503, json={"error": "unhealthy", "error_type": "healthcheck"}),
                    sse(token_event(1, " a", last=True)))
    assert [e.token.text for e in client(script, retries=1).generate_stream("x")] == [" a"]
    assert len(script.requests) == 2 and sleeps == [0.5]


# ---------------------------------------------------------------------------- unit: configuration
def test_bearer_token_is_sent_and_never_shown() -> None:
    script = Script(httpx.Response(200, json=REAL_GENERATE), sse(token_event(1, " a", last=True)))
    tgi = client(script, api_key="s3cret")
    tgi.generate("x")
    list(tgi.generate_stream("x"))
    assert [r.headers["authorization"] for r in script.requests] == ["Bearer s3cret"] * 2
    assert "s3cret" not in repr(tgi)
    plain = Script(httpx.Response(200, json=REAL_GENERATE))
    client(plain).generate("x")
    assert "authorization" not in plain.requests[0].headers


def test_base_url_and_timeout() -> None:
    with pytest.raises(ValueError, match="http://"):
        TGIClient("localhost:8080")
    tgi = TGIClient("http://h:1/", timeout=3.0)
    assert tgi.base_url == "http://h:1" and tgi.timeout.read == 3.0
    script = Script(httpx.Response(200, json=INFO))
    client(script, timeout=httpx.Timeout(7.0, connect=1.0)).info()
    assert script.requests[0].extensions["timeout"] == {"connect": 1.0, "read": 7.0, "write": 7.0, "pool": 7.0}


def test_context_manager_closes_the_connection_pool() -> None:
    with client(Script(httpx.Response(200))) as tgi:
        assert tgi.health()
    with pytest.raises(RuntimeError):
        tgi.health()


# ------------------------------------------------------------------------------------- unit: async
def test_async_client_mirrors_sync_client(sleeps: list[float]) -> None:
    script = Script(httpx.Response(503, json={"error": "unhealthy", "error_type": "healthcheck"}),
                    httpx.Response(200, json=REAL_GENERATE), sse(*REAL_CHAT_STREAM, "[DONE]"),
                    httpx.Response(200, json=REAL_CHAT), sse(token_event(1, " a", last=True)),
                    httpx.Response(200, text=METRICS))

    async def scenario() -> tuple[Any, ...]:
        async with aclient(script, api_key="k") as tgi:
            generated = await tgi.generate("x", max_new_tokens=3)
            chunks = [c async for c in tgi.chat([{"role": "user", "content": "hi"}], stream=True)]
            chat = await tgi.chat([{"role": "user", "content": "hi"}])
            tokens = [e.token.text async for e in tgi.generate_stream("x")]
            metrics = await tgi.metrics()
            return generated, chunks, chat, tokens, metrics

    generated, chunks, chat, tokens, metrics = asyncio.run(scenario())
    assert generated.generated_text == " for /api" and sleeps == [0.5]
    assert len(chunks) == 4 and chat.choices[0].message.content == "As of your last question"
    assert tokens == [" a"] and metric_total(metrics, "tgi_request_count") == 7
    assert all(r.headers["authorization"] == "Bearer k" for r in script.requests)


def test_async_errors_are_the_same_types() -> None:
    error = {"error": "Request failed during generation: boom", "error_type": "generation"}

    async def scenario(script: Script, stream: bool) -> None:
        async with aclient(script, retries=0) as tgi:
            if stream:
                async for _ in tgi.generate_stream("x"):
                    pass
            else:
                await tgi.info()

    with pytest.raises(GenerationFailed):
        asyncio.run(scenario(Script(sse(token_event(1, " a"), error)), stream=True))
    with pytest.raises(EndpointUnreachable, match="connection refused"):
        asyncio.run(scenario(Script(httpx.ConnectError("[Errno 111] Connection refused")), stream=False))
    with pytest.raises(ModelLoading):
        asyncio.run(scenario(Script(httpx.Response(503)), stream=False))


# ============================================================================ integration: mock server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MockTGI:
    """A running `tgi_nix.mock` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/health").status_code != 200:
            assert time.monotonic() < deadline, f"mock not ready: {self.log.read_text()[-2000:]}"
            threading.Event().wait(0.05)


@contextmanager
def run_mock(tmp: Path, model: str = "org/model", *, load_delay: float = 0.0, args: Sequence[str] = (),
             env: dict[str, str] | None = None, ready: bool = True, port: int | None = None) -> Iterator[MockTGI]:
    """Start the mock on a free loopback port; wait until the port accepts (and, with `ready`, /health).
    Without `ready` the mock answers 503 while it loads (--health-before-ready): TGI itself keeps the port
    closed until then, so there would be nothing to talk to."""
    port = port or free_port()
    log = tmp / f"mock-{port}.log"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("TGI_MOCK_", "HF_"))}
    base_env.update(TGI_MOCK_MODEL_BYTES="65536", TGI_MOCK_DOWNLOAD_RATE="0")
    cmd = [sys.executable, "-m", "tgi_nix.mock", "--model-id", model, "--hostname", "127.0.0.1",
           "--port", str(port), "--prometheus-port", "0", "--huggingface-hub-cache", str(tmp / "hub"),
           "--download-delay", "0", "--load-delay", str(load_delay), *args,
           *([] if ready else ["--health-before-ready"])]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**base_env, **(env or {})})
    mock = MockTGI(process, port, log)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, f"mock exited: {log.read_text()[-2000:]}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mock port never opened"
                threading.Event().wait(0.02)  # not time.sleep: tests patch it
        if ready:
            mock.wait_ready()
        yield mock
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def mock_tgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockTGI]:
    with run_mock(tmp_path_factory.mktemp("mock")) as mock:
        yield mock


@pytest.fixture
def tgi(mock_tgi: MockTGI) -> Iterator[TGIClient]:
    with TGIClient(mock_tgi.url, retries=0) as tgi:
        yield tgi


def test_live_health_info_models(tgi: TGIClient) -> None:
    assert tgi.health() is True
    info = tgi.info()
    assert info.model_id == "org/model" and info.max_total_tokens and info.version
    assert [m.id for m in tgi.models()] == ["org/model"]


def test_live_greedy_generate_is_deterministic_and_matches_stream(tgi: TGIClient) -> None:
    first = tgi.generate("What is deep learning?", max_new_tokens=12, do_sample=False)
    second = tgi.generate("What is deep learning?", max_new_tokens=12, do_sample=False)
    assert first.generated_text == second.generated_text != ""
    assert first.details is not None and first.details.generated_tokens == len(first.details.tokens)
    events = list(tgi.generate_stream("What is deep learning?", max_new_tokens=12, do_sample=False))
    last = events[-1]
    assert last.generated_text == first.generated_text
    assert last.details is not None and last.details.generated_tokens == len(events)
    assert all(e.generated_text is None for e in events[:-1])


def test_live_chat_and_completions(tgi: TGIClient) -> None:
    messages = [{"role": "user", "content": "Say hi"}]
    completion = tgi.chat(messages, max_tokens=8, temperature=0.0)
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens >= 1
    chunks = list(tgi.chat(messages, max_tokens=8, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-2].choices[0].finish_reason is not None
    text = tgi.completions("Once upon", max_tokens=4)
    assert text.choices[0].text and text.choices[0].finish_reason
    streamed = list(tgi.completions("Once upon", max_tokens=4, stream=True))
    assert len(streamed) == 4 and streamed[-1].usage is not None


def test_live_metrics_count_requests(tgi: TGIClient) -> None:
    before = metric_total(tgi.metrics(), "tgi_request_count")
    assert before is not None
    tgi.generate("count me", max_new_tokens=2)
    list(tgi.generate_stream("count me", max_new_tokens=2))
    after = metric_total(tgi.metrics(), "tgi_request_count")
    assert after is not None and after >= before + 2


def test_live_errors_are_typed(tgi: TGIClient) -> None:
    with pytest.raises(ValidationFailed, match="max_new_tokens") as info:
        tgi.generate("x", max_new_tokens=0)
    assert info.value.status_code == 422 and info.value.error_type == "validation"
    with pytest.raises(GenerationFailed) as gen:
        tgi.generate("please __tgi_mock_fail__")
    assert gen.value.status_code == 424
    with pytest.raises(GenerationFailed, match="error event"):
        list(tgi.generate_stream("please __tgi_mock_fail__"))
    with pytest.raises(ValidationFailed):
        list(tgi.chat([{"role": "user", "content": "x"}], top_p=3.0, stream=True))


def test_live_async_client(mock_tgi: MockTGI) -> None:
    async def scenario() -> tuple[bool, str, list[str]]:
        async with AsyncTGIClient(mock_tgi.url) as tgi:
            results = await asyncio.gather(*(tgi.generate("same", max_new_tokens=5) for _ in range(4)))
            texts = {r.generated_text for r in results}
            assert len(texts) == 1
            chunks = [c.choices[0].delta.content or "" async for c in tgi.chat(
                [{"role": "user", "content": "hi"}], max_tokens=5, stream=True)]
            return await tgi.health(), texts.pop(), chunks

    healthy, text, chunks = asyncio.run(scenario())
    assert healthy and text and len(chunks) == 5


def test_live_api_key(tmp_path: Path) -> None:
    with run_mock(tmp_path, args=["--api-key", "k3y"]) as mock:
        with TGIClient(mock.url, retries=0) as anonymous:
            assert anonymous.health() and anonymous.info().model_id == "org/model"  # never authenticated
            with pytest.raises(Unauthorized):
                anonymous.generate("x")
            with pytest.raises(Unauthorized):
                list(anonymous.chat([{"role": "user", "content": "x"}], stream=True))
        with TGIClient(mock.url, api_key="k3y", retries=0) as keyed:
            assert keyed.generate("x", max_new_tokens=2).details is not None


def test_live_loading_model(tmp_path: Path, sleeps: list[float]) -> None:
    with run_mock(tmp_path, load_delay=30, ready=False) as mock, TGIClient(mock.url, retries=2) as tgi:
        assert tgi.health() is False
        with pytest.raises(ModelLoading) as info:
            tgi.generate("x")
        assert info.value.status_code == 503 and sleeps == [0.5, 1.0]


def test_live_overloaded(tmp_path: Path) -> None:
    args = ["--max-concurrent-requests", "1", "--token-delay", "0.05"]
    with run_mock(tmp_path, args=args) as mock, TGIClient(mock.url, retries=0) as tgi:
        started = threading.Event()

        def hold() -> None:
            stream = tgi.generate_stream("slow", max_new_tokens=10)
            next(stream)
            started.set()
            list(stream)

        holder = threading.Thread(target=hold)
        holder.start()
        assert started.wait(10)
        with pytest.raises(Overloaded) as info:
            tgi.generate("x", max_new_tokens=1)
        holder.join()
        assert info.value.status_code == 429 and info.value.error_type == "overloaded"


def test_live_unreachable_port_fails_fast() -> None:
    start = time.monotonic()
    with pytest.raises(EndpointUnreachable) as info, TGIClient(f"http://127.0.0.1:{free_port()}",
                                                               retries=0) as tgi:
        tgi.health()
    assert info.value.reason == "connection refused" and time.monotonic() - start < 2
