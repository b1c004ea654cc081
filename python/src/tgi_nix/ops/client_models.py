"""TGI's request parameters, response shapes and errors (router/src/lib.rs), as typed Python.

Responses are pydantic models that keep unknown fields (`extra="allow"`): TGI adds fields between
releases and the client must not break on them. Only the fields a caller needs to act on are required.
Request parameters are `TypedDict`s so that `generate(..., max_new_tokens=8)` is checked by mypy.
Errors map TGI's status codes and `error_type`s, and transport failures, to `TGIError` subclasses.
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Mapping
from typing import Any, TypedDict

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ..errors import EndpointError


class TGIModel(BaseModel):
    """Base of every response model: tolerant of fields added by newer TGI releases."""

    model_config = ConfigDict(extra="allow", frozen=True)


# --------------------------------------------------------------------------------------------- /info
class Info(TGIModel):
    """`GET /info`: the served model and the router's limits. Nullable fields may be absent on old releases."""

    model_id: str = Field(description="Hugging Face model id or local path the server loaded.")
    model_sha: str | None = Field(None, description="Commit of the model repository, when known.")
    model_pipeline_tag: str | None = Field(None, description="Hub pipeline tag, e.g. `text-generation`.")
    model_dtype: str | None = Field(None, description="Weights dtype (TGI < 2.1 only).")
    model_device_type: str | None = Field(None, description="Device type (TGI < 2.1 only).")
    max_concurrent_requests: int | None = Field(None, description="Requests in flight before 429.")
    max_best_of: int | None = Field(None, description="Largest allowed `best_of`.")
    max_stop_sequences: int | None = Field(None, description="Largest number of `stop` sequences.")
    max_input_tokens: int | None = Field(None, description="Longest prompt in tokens (TGI >= 2.1).")
    max_input_length: int | None = Field(None, description="Longest prompt in tokens (TGI < 2.1 name).")
    max_total_tokens: int | None = Field(None, description="Largest prompt + generated tokens.")
    validation_workers: int | None = Field(None, description="Tokenizer workers validating requests.")
    max_client_batch_size: int | None = Field(None, description="Most prompts in one request.")
    router: str | None = Field(None, description="Router name, `text-generation-router`.")
    version: str | None = Field(None, description="TGI version.")
    sha: str | None = Field(None, description="Git commit TGI was built from.")
    docker_label: str | None = Field(None, description="Image label TGI was built with.")


# -------------------------------------------------------------------------------- /generate(_stream)
class PrefillToken(TGIModel):
    """A prompt token (`decoder_input_details`); the first one has no logprob."""

    id: int = Field(description="Token id.")
    text: str = Field(description="Decoded token text.")
    logprob: float | None = Field(None, description="Log probability; null for the first token.")


class Token(TGIModel):
    """A generated token."""

    id: int = Field(description="Token id.")
    text: str = Field(description="Decoded token text, with its leading whitespace.")
    logprob: float | None = Field(None, description="Log probability of the token.")
    special: bool = Field(False, description="Whether it is a special token such as EOS.")


class BestOfSequence(TGIModel):
    """One of the other `best_of` candidates."""

    generated_text: str = Field(description="The candidate's text.")
    finish_reason: str = Field(description="`length`, `eos_token` or `stop_sequence`.")
    generated_tokens: int = Field(description="Number of generated tokens.")
    seed: int | None = Field(None, description="Sampling seed, null for greedy decoding.")
    prefill: list[PrefillToken] = Field(default_factory=list, description="Prompt tokens.")
    tokens: list[Token] = Field(default_factory=list, description="Generated tokens.")
    top_tokens: list[list[Token]] | None = Field(None, description="Most likely tokens at each step.")


class Details(TGIModel):
    """`details` of a `/generate` response (requested with `details=True`)."""

    finish_reason: str = Field(description="`length`, `eos_token` or `stop_sequence`.")
    generated_tokens: int = Field(description="Number of generated tokens.")
    seed: int | None = Field(None, description="Sampling seed, null for greedy decoding.")
    prefill: list[PrefillToken] = Field(default_factory=list, description="Prompt tokens.")
    tokens: list[Token] = Field(default_factory=list, description="Generated tokens.")
    top_tokens: list[list[Token]] | None = Field(None, description="Most likely tokens at each step.")
    best_of_sequences: list[BestOfSequence] | None = Field(None, description="The other candidates.")


class GenerateResponse(TGIModel):
    """`POST /generate`."""

    generated_text: str = Field(description="The generated text (prefixed by the prompt with return_full_text).")
    details: Details | None = Field(None, description="Token details, when requested.")


class StreamDetails(TGIModel):
    """`details` of the last `/generate_stream` event."""

    finish_reason: str = Field(description="`length`, `eos_token` or `stop_sequence`.")
    generated_tokens: int = Field(description="Number of generated tokens.")
    seed: int | None = Field(None, description="Sampling seed, null for greedy decoding.")
    input_length: int | None = Field(None, description="Prompt length in tokens (TGI >= 2.1).")


class StreamResponse(TGIModel):
    """One `/generate_stream` event: a token; the last one also carries the full text and details."""

    index: int | None = Field(None, description="1-based token index.")
    token: Token = Field(description="The generated token.")
    top_tokens: list[Token] | None = Field(None, description="Most likely tokens at this step.")
    generated_text: str | None = Field(None, description="Full text, only on the last event.")
    details: StreamDetails | None = Field(None, description="Only on the last event, with `details=True`.")


# ----------------------------------------------------------------------------- OpenAI-compatible routes
class Usage(TGIModel):
    """Token counts of a chat or completion request."""

    prompt_tokens: int = Field(description="Prompt tokens.")
    completion_tokens: int = Field(description="Generated tokens.")
    total_tokens: int = Field(description="Sum of both.")


class ChatMessage(TGIModel):
    """A chat message, as sent and as answered."""

    role: str = Field(description="`system`, `user`, `assistant` or `tool`.")
    content: str | list[dict[str, Any]] | None = Field(None, description="Text, or content parts.")
    name: str | None = Field(None, description="Optional participant name.")
    tool_calls: list[dict[str, Any]] | None = Field(None, description="Tool calls made by the assistant.")


class ChatChoice(TGIModel):
    """One choice of a non-streamed chat completion."""

    index: int = Field(description="Choice index.")
    message: ChatMessage = Field(description="The assistant's message.")
    logprobs: dict[str, Any] | None = Field(None, description="Token logprobs, with `logprobs=True`.")
    finish_reason: str | None = Field(None, description="`stop`, `length`, ... (OpenAI names).")


class ChatCompletion(TGIModel):
    """`POST /v1/chat/completions` without streaming."""

    id: str = Field("", description="Completion id (TGI leaves it empty).")
    object: str = Field("chat.completion", description="Object type.")
    created: int = Field(0, description="Unix time of creation.")
    model: str = Field("", description="Served model id.")
    system_fingerprint: str | None = Field(None, description="TGI version and image label.")
    choices: list[ChatChoice] = Field(description="Generated choices (TGI returns one).")
    usage: Usage | None = Field(None, description="Token counts.")


class ChatDelta(TGIModel):
    """The new part of the message in a streamed chunk."""

    role: str | None = Field(None, description="`assistant`.")
    content: str | None = Field(None, description="New text.")
    tool_calls: list[dict[str, Any]] | dict[str, Any] | None = Field(None, description="Tool call deltas.")


class ChatChunkChoice(TGIModel):
    """One choice of a streamed chat chunk."""

    index: int = Field(description="Choice index.")
    delta: ChatDelta = Field(description="New text for this choice.")
    logprobs: dict[str, Any] | None = Field(None, description="Token logprobs, with `logprobs=True`.")
    finish_reason: str | None = Field(None, description="Set on the choice's last chunk.")


class ChatCompletionChunk(TGIModel):
    """One event of a streamed chat completion; the usage-only chunk has no choices."""

    id: str = Field("", description="Completion id (TGI leaves it empty).")
    object: str = Field("chat.completion.chunk", description="Object type.")
    created: int = Field(0, description="Unix time of creation.")
    model: str = Field("", description="Served model id.")
    system_fingerprint: str | None = Field(None, description="TGI version and image label.")
    choices: list[ChatChunkChoice] = Field(default_factory=list, description="New text per choice.")
    usage: Usage | None = Field(None, description="Token counts (with stream_options.include_usage).")


class CompletionChoice(TGIModel):
    """One choice of a (streamed) text completion."""

    index: int = Field(description="Index of the prompt this answers.")
    text: str = Field(description="Generated text (a token when streaming).")
    logprobs: Any = Field(None, description="Token logprobs, when requested.")
    finish_reason: str | None = Field(None, description="Why generation stopped; empty until the end.")


class Completion(TGIModel):
    """`POST /v1/completions`, and each event of its stream."""

    id: str = Field("", description="Completion id (TGI leaves it empty).")
    object: str = Field("text_completion", description="Object type.")
    created: int = Field(0, description="Unix time of creation.")
    model: str = Field("", description="Served model id.")
    system_fingerprint: str | None = Field(None, description="TGI version and image label.")
    choices: list[CompletionChoice] = Field(default_factory=list, description="One choice per prompt.")
    usage: Usage | None = Field(None, description="Token counts (on the last stream event).")


class ModelCard(TGIModel):
    """An entry of `GET /v1/models`."""

    id: str = Field(description="Served model id.")
    object: str = Field("model", description="Object type.")
    created: int = Field(0, description="Always 0 in TGI.")
    owned_by: str = Field("", description="The model id again.")


class ModelList(TGIModel):
    """`GET /v1/models`."""

    object: str = Field("list", description="Object type.")
    data: list[ModelCard] = Field(description="The served model (one).")


# ---------------------------------------------------------------------------------- request parameters
class GenerateParameters(TypedDict, total=False):
    """`parameters` of `/generate` and `/generate_stream` (router/src/lib.rs GenerateParameters)."""

    best_of: int
    temperature: float
    repetition_penalty: float
    frequency_penalty: float
    top_k: int
    top_p: float
    typical_p: float
    do_sample: bool
    max_new_tokens: int | None
    return_full_text: bool
    stop: list[str]
    truncate: int
    watermark: bool
    details: bool
    decoder_input_details: bool
    seed: int
    top_n_tokens: int
    grammar: dict[str, Any]
    adapter_id: str


class ChatParameters(TypedDict, total=False):
    """Optional fields of an OpenAI-style chat request, as TGI reads them."""

    model: str
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: list[str]
    frequency_penalty: float
    presence_penalty: float
    logprobs: bool
    top_logprobs: int
    n: int
    response_format: dict[str, Any]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    stream_options: dict[str, Any]


class CompletionParameters(TypedDict, total=False):
    """Optional fields of an OpenAI-style completion request, as TGI reads them."""

    model: str
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    stop: list[str]
    frequency_penalty: float
    repetition_penalty: float


# ---------------------------------------------------------------------------------------------- errors
class TGIError(EndpointError):
    """TGI answered with an error, or with something that is not TGI's API."""

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(f"{message}; {self.hint}" if self.hint else message)
        self.server_message = server_message if server_message is not None else message
        self.url = url
        self.status_code = status_code
        self.error_type = error_type


class Unauthorized(TGIError):
    hint = "the instance runs with --api-key: pass the key (api_key=..., or probe --api-key-file)"


class ValidationFailed(TGIError):
    hint = "the request was rejected by TGI's validation (see the limits in /info)"


class GenerationFailed(TGIError):
    hint = "the model failed while generating; see the instance's journal"


class Overloaded(TGIError):
    hint = "more requests than --max-concurrent-requests are in flight; retry later"


class ModelLoading(TGIError):
    hint = "the model is still loading or the server is unhealthy; wait for /health to answer 200"


class EndpointUnreachable(TGIError):
    """No HTTP answer at all: connection refused, unknown host, timeout, connection dropped."""

    def __init__(self, message: str, *, url: str, reason: str) -> None:
        super().__init__(message, url=url)
        self.reason = reason


_BY_STATUS: dict[int, type[TGIError]] = {
    401: Unauthorized,
    422: ValidationFailed,
    424: GenerationFailed,
    429: Overloaded,
    503: ModelLoading,
}
_BY_ERROR_TYPE: dict[str, type[TGIError]] = {
    "validation": ValidationFailed,
    "generation": GenerationFailed,
    "incomplete_generation": GenerationFailed,
    "overloaded": Overloaded,
    "healthcheck": ModelLoading,
    "unhealthy": ModelLoading,
}


def error_from_payload(payload: Mapping[str, Any], *, url: str, status_code: int | None = None) -> TGIError:
    """TGI's `{"error", "error_type"}` or the OpenAI routes' `{"error": {"message", "http_status_code"}}`.
    Without `status_code` the payload came as an event inside a stream."""
    where = f"{url} answered {status_code}" if status_code else f"{url} sent an error event"
    error = payload.get("error")
    error_type = payload.get("error_type")
    if isinstance(error, Mapping):
        message = str(error.get("message", error))
        error_type = error_type or error.get("type")
        code = error.get("http_status_code")
        status_code = status_code or (code if isinstance(code, int) else None)
    else:
        message = str(error)
    error_type = str(error_type) if error_type is not None else None
    cls = _BY_STATUS.get(status_code or 0) or _BY_ERROR_TYPE.get(error_type or "", TGIError)
    kind = f" ({error_type})" if error_type else ""
    return cls(f"{where}{kind}: {message}", url=url, status_code=status_code,
               error_type=error_type, server_message=message)


def _body_summary(response: httpx.Response) -> str:
    """A non-JSON error body in one short line: an HTML page by its title (is this TGI at all?)."""
    body = response.text.strip()
    if "html" in response.headers.get("content-type", "").lower() or body[:15].lower().startswith(("<!doctype", "<html")):
        title = re.search(r"<title[^>]*>([^<]{1,120})", body, re.IGNORECASE)
        page = f" ({' '.join(title.group(1).split())!r})" if title else ""
        return f"an HTML page{page}, not TGI's JSON; check that the URL and port are a TGI server's"
    line = " ".join(body.split())
    return (line[:200] + ("..." if len(line) > 200 else "")) or response.reason_phrase


def error_from_response(response: httpx.Response) -> TGIError:
    """The typed error for a non-2xx response whose body has been read."""
    url = str(response.request.url)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, Mapping) and "error" in payload:
        return error_from_payload(payload, url=url, status_code=response.status_code)
    text = _body_summary(response)
    cls = _BY_STATUS.get(response.status_code, TGIError)
    return cls(f"{url} answered {response.status_code}: {text}", url=url, status_code=response.status_code,
               server_message=text)


def _in_chain(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def unreachable(url: str, exc: httpx.TransportError, timeout: httpx.Timeout) -> EndpointUnreachable:
    """Say which URL failed, how, and what to check."""
    text = str(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        reason = "connect timeout"
        detail = (f"no connection within {timeout.connect} s; check the host and port, the firewall "
                  "(openFirewall) and the instance's listenAddress")
    elif isinstance(exc, httpx.TimeoutException):
        reason = "timeout"
        detail = (f"no answer within {timeout.read} s; the server may be overloaded or generating a long "
                  "answer (raise the timeout)")
    elif _in_chain(exc, socket.gaierror) or "name or service not known" in text.lower():
        reason = "unknown host"
        detail = f"cannot resolve the host name ({text}); check the URL"
    elif _in_chain(exc, ConnectionRefusedError) or "connection refused" in text.lower() or (
        f"errno {errno.ECONNREFUSED}" in text.lower()
    ):
        reason = "connection refused"
        detail = ("connection refused; is the instance running (systemctl status huggingface-tgi-<name>)? "
                  "TGI opens its port only once the model is loaded, and the port must match the spec")
    elif isinstance(exc, httpx.ConnectError):
        reason = "connect error"
        detail = f"cannot connect ({text or type(exc).__name__}); check the host and port"
    else:
        reason = "connection lost"
        detail = f"the connection failed mid-request ({type(exc).__name__}: {text})"
    return EndpointUnreachable(f"cannot reach TGI at {url}: {detail}", url=url, reason=reason)
