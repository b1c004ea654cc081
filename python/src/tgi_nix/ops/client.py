"""A typed client for Hugging Face TGI's HTTP API, sync (`TGIClient`) and async (`AsyncTGIClient`).

Both clients share everything but the I/O: each API method is described once as a `_Call` (method, path,
body, response parser) or `_StreamCall`, and the retry decisions, error mapping and SSE event parsing are
shared functions. The two classes only differ in how they send (`send` vs `await send`) and sleep.

Errors: HTTP and in-stream errors become `TGIError` subclasses carrying TGI's `error` message and
`error_type`; transport failures become `EndpointUnreachable` naming the URL and what to check.
Retries (with exponential backoff) happen only where a retry cannot duplicate work: connect errors,
and the statuses TGI uses for "not now" (429 overloaded, 503 loading).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, Unpack, overload

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ValidationError

from .. import __version__
from .client_models import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChatParameters,
    Completion,
    CompletionParameters,
    EndpointUnreachable,
    GenerateParameters,
    GenerateResponse,
    GenerationFailed,
    Info,
    ModelCard,
    ModelList,
    ModelLoading,
    Overloaded,
    StreamResponse,
    TGIError,
    Unauthorized,
    ValidationFailed,
    error_from_payload,
    error_from_response,
    unreachable,
)

__all__ = [
    "AsyncTGIClient",
    "EndpointUnreachable",
    "GenerationFailed",
    "ModelLoading",
    "Overloaded",
    "RetryPolicy",
    "TGIClient",
    "TGIError",
    "Unauthorized",
    "ValidationFailed",
    "metric_total",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
RETRY_STATUSES = frozenset({429, 503})
DONE = "[DONE]"


# --------------------------------------------------------------------------------------------- retries
@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for the failures that are safe to retry, capped at `max_backoff`; a numeric
    Retry-After header lengthens the wait. No jitter: the callers here are few (probe, tests, scripts) and
    fixed delays keep the retry schedule predictable and testable."""

    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    statuses: frozenset[int] = RETRY_STATUSES

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2.0**attempt)

    def after_error(self, attempt: int, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before retrying, or None when the error is final. Only connect-phase errors are
        retried: a read error may come after TGI started generating, and a retry would run it twice."""
        if attempt >= self.retries or not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return None
        return self.delay(attempt)

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        if attempt >= self.retries or response.status_code not in self.statuses:
            return None
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            return min(self.max_backoff, max(self.delay(attempt), float(retry_after)))
        return self.delay(attempt)


# ----------------------------------------------------------------------------------- calls and parsing
@dataclass(frozen=True)
class _Call(Generic[T]):
    """One request/response exchange: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    body: Mapping[str, Any] | None = None
    answers: frozenset[int] = frozenset()  # non-2xx statuses that are answers, not errors


@dataclass(frozen=True)
class _StreamCall(Generic[T]):
    """A POST answered with server-sent events; `parse` gets each event's decoded JSON."""

    path: str
    body: Mapping[str, Any]
    parse: Callable[[Any], T]


def _parse_model(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as err:
        raise _unexpected(str(response.request.url), model, err) from None


def _unexpected(url: str, model: type[BaseModel], err: ValidationError) -> TGIError:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return TGIError(f"{url} answered with an unexpected {model.__name__}: {where}: {first['msg']}", url=url)


def _event_parser(model: type[M]) -> Callable[[Any], M]:
    def parse(data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as err:
            raise _unexpected("event stream", model, err) from None

    return parse


def _decode_event(sse: ServerSentEvent, url: str) -> Any:
    """The event's JSON; raises the typed error for error events. `DONE` ends OpenAI-style streams."""
    if sse.data == DONE:
        return DONE
    try:
        data = json.loads(sse.data)
    except ValueError:
        raise TGIError(f"{url} sent an event that is not JSON: {sse.data[:200]!r}", url=url) from None
    if isinstance(data, Mapping) and "error" in data and data["error"] is not None:
        raise error_from_payload(data, url=url)
    return data


def _check_params(given: Mapping[str, Any], allowed: type, what: str) -> None:
    unknown = sorted(set(given) - set(allowed.__annotations__))
    if unknown:
        raise TypeError(f"unknown {what} parameter(s): {', '.join(unknown)}")


def _parse_metrics(response: httpx.Response) -> dict[str, Metric]:
    try:
        return {family.name: family for family in text_string_to_metric_families(response.text)}
    except ValueError as err:
        url = str(response.request.url)
        raise TGIError(f"{url} is not in the Prometheus text format: {err}", url=url) from None


def _messages(messages: Sequence[ChatMessage | Mapping[str, Any]]) -> list[Any]:
    return [m.model_dump(exclude_none=True) if isinstance(m, ChatMessage) else dict(m) for m in messages]


def _health_call() -> _Call[bool]:
    return _Call("GET", "/health", lambda r: r.status_code == 200, answers=frozenset({503}))


def _info_call() -> _Call[Info]:
    return _Call("GET", "/info", lambda r: _parse_model(Info, r))


def _models_call() -> _Call[list[ModelCard]]:
    return _Call("GET", "/v1/models", lambda r: _parse_model(ModelList, r).data)


def _metrics_call() -> _Call[dict[str, Metric]]:
    return _Call("GET", "/metrics", _parse_metrics)


def _generate_body(inputs: str, params: GenerateParameters) -> dict[str, Any]:
    _check_params(params, GenerateParameters, "generate")
    return {"inputs": inputs, "parameters": {"details": True, **params}}


def _generate_call(inputs: str, params: GenerateParameters) -> _Call[GenerateResponse]:
    return _Call("POST", "/generate", lambda r: _parse_model(GenerateResponse, r),
                 _generate_body(inputs, params))


def _generate_stream_call(inputs: str, params: GenerateParameters) -> _StreamCall[StreamResponse]:
    return _StreamCall("/generate_stream", _generate_body(inputs, params), _event_parser(StreamResponse))


def _chat_body(messages: Sequence[ChatMessage | Mapping[str, Any]], stream: bool,
               params: ChatParameters) -> dict[str, Any]:
    _check_params(params, ChatParameters, "chat")
    return {"model": "tgi", **params, "messages": _messages(messages), "stream": stream}


def _chat_call(messages: Sequence[ChatMessage | Mapping[str, Any]],
               params: ChatParameters) -> _Call[ChatCompletion]:
    return _Call("POST", "/v1/chat/completions", lambda r: _parse_model(ChatCompletion, r),
                 _chat_body(messages, False, params))


def _chat_stream_call(messages: Sequence[ChatMessage | Mapping[str, Any]],
                      params: ChatParameters) -> _StreamCall[ChatCompletionChunk]:
    return _StreamCall("/v1/chat/completions", _chat_body(messages, True, params),
                       _event_parser(ChatCompletionChunk))


def _completion_body(prompt: str | list[str], stream: bool, params: CompletionParameters) -> dict[str, Any]:
    _check_params(params, CompletionParameters, "completion")
    return {"model": "tgi", **params, "prompt": prompt, "stream": stream}


def _completion_call(prompt: str | list[str], params: CompletionParameters) -> _Call[Completion]:
    return _Call("POST", "/v1/completions", lambda r: _parse_model(Completion, r),
                 _completion_body(prompt, False, params))


def _completion_stream_call(prompt: str | list[str], params: CompletionParameters) -> _StreamCall[Completion]:
    return _StreamCall("/v1/completions", _completion_body(prompt, True, params), _event_parser(Completion))


def metric_total(metrics: Mapping[str, Metric], name: str) -> float | None:
    """Sum of a counter's or gauge's samples over all label sets; None when the metric is absent."""
    family = metrics.get(name)
    if family is None:
        return None
    names = {name, f"{name}_total"}
    return float(sum(sample.value for sample in family.samples if sample.name in names))


# --------------------------------------------------------------------------------------------- clients
class _BaseClient:
    """Configuration, request building and outcome decisions shared by both clients."""

    _http: httpx.Client | httpx.AsyncClient

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        timeout: float | httpx.Timeout,
        retries: int,
        backoff: float,
        retry_statuses: Collection[int],
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = RetryPolicy(retries=retries, backoff=backoff, statuses=frozenset(retry_statuses))
        self._headers = {"user-agent": f"tgi-nix/{__version__}"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:  # never shows the API key
        return f"{type(self).__name__}({self.base_url!r})"

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None,
                 stream: bool = False) -> httpx.Request:
        headers = {"accept": "text/event-stream", "cache-control": "no-store"} if stream else None
        return self._http.build_request(method, path, json=body, headers=headers)

    def _delay_after_error(self, attempt: int, request: httpx.Request, exc: httpx.TransportError) -> float:
        """Seconds before the next attempt; raises `EndpointUnreachable` when the error is final."""
        delay = self.retry.after_error(attempt, exc)
        if delay is None:
            raise unreachable(str(request.url), exc, self.timeout) from exc
        return delay

    def _delay_after_response(self, attempt: int, response: httpx.Response) -> float:
        """For a (read) error response: seconds before the next attempt, or raises the typed error."""
        delay = self.retry.after_response(attempt, response)
        if delay is None:
            raise error_from_response(response)
        return delay

    def _stream_error(self, request: httpx.Request, exc: Exception) -> TGIError:
        url = str(request.url)
        if isinstance(exc, SSEError):
            return TGIError(f"{url} did not answer with an event stream: {exc}", url=url)
        assert isinstance(exc, httpx.TransportError)
        return unreachable(url, exc, self.timeout)


class TGIClient(_BaseClient):
    """Synchronous TGI client. Use as a context manager, or call `close()`."""

    _http: httpx.Client

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.5,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout=timeout, retries=retries, backoff=backoff,
                         retry_statuses=retry_statuses)
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=self.timeout,
                                  transport=transport)

    def __enter__(self) -> TGIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, request: httpx.Request, *, stream: bool = False,
              answers: frozenset[int] = frozenset()) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                time.sleep(self._delay_after_error(attempt, request, exc))
            else:
                if response.is_success or response.status_code in answers:
                    return response
                response.read()
                response.close()
                time.sleep(self._delay_after_response(attempt, response))
            attempt += 1

    def _call(self, call: _Call[T]) -> T:
        request = self._request(call.method, call.path, call.body)
        return call.parse(self._send(request, answers=call.answers))

    def _stream(self, call: _StreamCall[T]) -> Iterator[T]:
        request = self._request("POST", call.path, call.body, stream=True)
        response = self._send(request, stream=True)
        try:
            for sse in EventSource(response).iter_sse():
                data = _decode_event(sse, str(request.url))
                if data == DONE:
                    return
                yield call.parse(data)
        except (httpx.TransportError, SSEError) as exc:
            raise self._stream_error(request, exc) from exc
        finally:
            response.close()

    def health(self) -> bool:
        """True when TGI answers 200, False on 503 (loading or unhealthy); raises when unreachable."""
        return self._call(_health_call())

    def info(self) -> Info:
        return self._call(_info_call())

    def models(self) -> list[ModelCard]:
        return self._call(_models_call())

    def metrics(self) -> dict[str, Metric]:
        """`/metrics` parsed into Prometheus metric families, by family name."""
        return self._call(_metrics_call())

    def generate(self, inputs: str, **params: Unpack[GenerateParameters]) -> GenerateResponse:
        """`/generate`; `details` defaults to True. Greedy unless `do_sample=True`."""
        return self._call(_generate_call(inputs, params))

    def generate_stream(self, inputs: str, **params: Unpack[GenerateParameters]) -> Iterator[StreamResponse]:
        """`/generate_stream`: one `StreamResponse` per token; the request is sent on the first `next()`."""
        return self._stream(_generate_stream_call(inputs, params))

    @overload
    def chat(self, messages: Sequence[ChatMessage | Mapping[str, Any]], *, stream: Literal[False] = False,
             **params: Unpack[ChatParameters]) -> ChatCompletion: ...

    @overload
    def chat(self, messages: Sequence[ChatMessage | Mapping[str, Any]], *, stream: Literal[True],
             **params: Unpack[ChatParameters]) -> Iterator[ChatCompletionChunk]: ...

    def chat(self, messages: Sequence[ChatMessage | Mapping[str, Any]], *, stream: bool = False,
             **params: Unpack[ChatParameters]) -> ChatCompletion | Iterator[ChatCompletionChunk]:
        """`/v1/chat/completions`; with `stream=True` an iterator of chunks that stops at `[DONE]`."""
        if stream:
            return self._stream(_chat_stream_call(messages, params))
        return self._call(_chat_call(messages, params))

    @overload
    def completions(self, prompt: str | list[str], *, stream: Literal[False] = False,
                    **params: Unpack[CompletionParameters]) -> Completion: ...

    @overload
    def completions(self, prompt: str | list[str], *, stream: Literal[True],
                    **params: Unpack[CompletionParameters]) -> Iterator[Completion]: ...

    def completions(self, prompt: str | list[str], *, stream: bool = False,
                    **params: Unpack[CompletionParameters]) -> Completion | Iterator[Completion]:
        """`/v1/completions`; with `stream=True` an iterator of chunks that stops at `[DONE]`."""
        if stream:
            return self._stream(_completion_stream_call(prompt, params))
        return self._call(_completion_call(prompt, params))


class AsyncTGIClient(_BaseClient):
    """Asynchronous TGI client: the same methods as `TGIClient`, awaited (`async for` for streams)."""

    _http: httpx.AsyncClient

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.5,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key=api_key, timeout=timeout, retries=retries, backoff=backoff,
                         retry_statuses=retry_statuses)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self.timeout,
                                       transport=transport)

    async def __aenter__(self) -> AsyncTGIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, request: httpx.Request, *, stream: bool = False,
                    answers: frozenset[int] = frozenset()) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                await asyncio.sleep(self._delay_after_error(attempt, request, exc))
            else:
                if response.is_success or response.status_code in answers:
                    return response
                await response.aread()
                await response.aclose()
                await asyncio.sleep(self._delay_after_response(attempt, response))
            attempt += 1

    async def _call(self, call: _Call[T]) -> T:
        request = self._request(call.method, call.path, call.body)
        return call.parse(await self._send(request, answers=call.answers))

    async def _stream(self, call: _StreamCall[T]) -> AsyncIterator[T]:
        request = self._request("POST", call.path, call.body, stream=True)
        response = await self._send(request, stream=True)
        try:
            async for sse in EventSource(response).aiter_sse():
                data = _decode_event(sse, str(request.url))
                if data == DONE:
                    return
                yield call.parse(data)
        except (httpx.TransportError, SSEError) as exc:
            raise self._stream_error(request, exc) from exc
        finally:
            with contextlib.suppress(httpx.TransportError):
                await response.aclose()

    async def health(self) -> bool:
        """True when TGI answers 200, False on 503 (loading or unhealthy); raises when unreachable."""
        return await self._call(_health_call())

    async def info(self) -> Info:
        return await self._call(_info_call())

    async def models(self) -> list[ModelCard]:
        return await self._call(_models_call())

    async def metrics(self) -> dict[str, Metric]:
        """`/metrics` parsed into Prometheus metric families, by family name."""
        return await self._call(_metrics_call())

    async def generate(self, inputs: str, **params: Unpack[GenerateParameters]) -> GenerateResponse:
        """`/generate`; `details` defaults to True. Greedy unless `do_sample=True`."""
        return await self._call(_generate_call(inputs, params))

    def generate_stream(self, inputs: str, **params: Unpack[GenerateParameters]) -> AsyncIterator[StreamResponse]:
        """`/generate_stream` as an async iterator (`async for`); the request is sent on the first step."""
        return self._stream(_generate_stream_call(inputs, params))

    @overload
    def chat(self, messages: Sequence[ChatMessage | Mapping[str, Any]], *, stream: Literal[False] = False,
             **params: Unpack[ChatParameters]) -> Coroutine[Any, Any, ChatCompletion]: ...

    @overload
    def chat(self, messages: Sequence[ChatMessage | Mapping[str, Any]], *, stream: Literal[True],
             **params: Unpack[ChatParameters]) -> AsyncIterator[ChatCompletionChunk]: ...

    def chat(self, messages: Sequence[ChatMessage | Mapping[str, Any]], *, stream: bool = False,
             **params: Unpack[ChatParameters]
             ) -> Coroutine[Any, Any, ChatCompletion] | AsyncIterator[ChatCompletionChunk]:
        """`await chat(...)`, or `async for chunk in chat(..., stream=True)` (stops at `[DONE]`)."""
        if stream:
            return self._stream(_chat_stream_call(messages, params))
        return self._call(_chat_call(messages, params))

    @overload
    def completions(self, prompt: str | list[str], *, stream: Literal[False] = False,
                    **params: Unpack[CompletionParameters]) -> Coroutine[Any, Any, Completion]: ...

    @overload
    def completions(self, prompt: str | list[str], *, stream: Literal[True],
                    **params: Unpack[CompletionParameters]) -> AsyncIterator[Completion]: ...

    def completions(self, prompt: str | list[str], *, stream: bool = False,
                    **params: Unpack[CompletionParameters]
                    ) -> Coroutine[Any, Any, Completion] | AsyncIterator[Completion]:
        """`await completions(...)`, or `async for chunk in completions(..., stream=True)`."""
        if stream:
            return self._stream(_completion_stream_call(prompt, params))
        return self._call(_completion_call(prompt, params))
