"""The OpenAI-compatible routes, on top of the TGI routes (the same generation underneath)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from .constants import SYSTEM_FINGERPRINT
from .parsing import ApiError, Body, Params, unexpected
from .tgi_routes import TgiRoutes
from .tokens import tokenize


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _openai_finish(reason: str | None) -> str:
    return "stop" if reason == "eos_token" else str(reason)


def chat_template(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
        parts.append(f"<|im_start|>{message.get('role')}\n{content or ''}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


class OpenAIRoutes(TgiRoutes):
    """The OpenAI-compatible Messages API: /v1/chat/completions, /v1/completions, /chat_tokenize."""

    def _chat_request(self, data: Any, body: Body) -> tuple[str, Params, dict[str, Any]]:
        """ChatRequest::try_into_generate."""
        obj = body.obj(data, "", "ChatRequest")
        messages = obj.get("messages")
        if "messages" not in obj:
            raise body.fail("", "missing field `messages`")
        if not isinstance(messages, list):
            raise body.fail("messages", f"invalid type: {unexpected(messages)}, expected a sequence")
        for i, message in enumerate(messages):
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not (isinstance(message.get("content"), str | list) or message.get("tool_calls"))
            ):
                raise body.fail(
                    f"messages[{i}]", "data did not match any variant of untagged enum MessageBody"
                )
        get = body.get
        temperature = get(obj, "temperature", "f32")
        presence = get(obj, "presence_penalty", "f32")
        top_logprobs = get(obj, "top_logprobs", "u32")
        response_format = get(obj, "response_format", "map")
        params = Params(
            temperature=None if temperature == 0.0 else temperature,
            do_sample=temperature != 0.0,
            repetition_penalty=None if presence is None else presence + 2.0,
            frequency_penalty=get(obj, "frequency_penalty", "f32"),
            top_p=get(obj, "top_p", "f32"),
            max_new_tokens=_or(get(obj, "max_tokens", "u32"), 100),
            stop=get(obj, "stop", "vec_str") or [],
            seed=get(obj, "seed", "u64"),
            details=True,
            top_n_tokens=top_logprobs,
            grammar=response_format,
        )
        options = {
            "stream": bool(get(obj, "stream", "bool", nullable=False, default=False)),
            "logprobs": bool(get(obj, "logprobs", "bool")),
            "include_usage": bool((get(obj, "stream_options", "map") or {}).get("include_usage")),
        }
        params.decoder_input_details = not options["stream"]
        return chat_template(messages), params, options

    def route_chat(self, data: Any, body: Body) -> None:
        app = self.app
        app.metrics.add("tgi_request_count")
        inputs, params, opts = self._chat_request(data, body)
        model, now = app.s.model_id, int(time.time())
        base = {"id": "", "created": now, "model": model, "system_fingerprint": SYSTEM_FINGERPRINT}
        if not opts["stream"]:
            response, headers, outcome = self._generate_json(inputs, params)
            gen = outcome.best
            logprobs = None
            if opts["logprobs"]:
                logprobs = {
                    "content": [
                        {
                            "token": t.text,
                            "logprob": t.logprob,
                            "top_logprobs": [{"token": x.text, "logprob": x.logprob} for x in tops],
                        }
                        for t, tops in zip(gen.tokens, gen.top_tokens, strict=False)
                    ]
                }
            usage = {
                "prompt_tokens": len(gen.prefill()),
                "completion_tokens": len(gen.tokens),
                "total_tokens": len(gen.prefill()) + len(gen.tokens),
            }
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": response["generated_text"]},
                "logprobs": logprobs,
                "finish_reason": _openai_finish(gen.finish_reason),
            }
            self.send_json(
                200, {"object": "chat.completion", **base, "choices": [choice], "usage": usage}, headers
            )
            return
        app.metrics.add("tgi_request_count")

        def events() -> Iterator[str]:
            try:
                for event, _ in app.stream(inputs, params, True, False):
                    token, details = event["token"], event["details"]
                    logprobs = None
                    if opts["logprobs"]:
                        logprobs = {
                            "content": [
                                {
                                    "token": token["text"],
                                    "logprob": token["logprob"],
                                    "top_logprobs": [
                                        {"token": t["text"], "logprob": t["logprob"]}
                                        for t in event.get("top_tokens", [])
                                    ],
                                }
                            ]
                        }
                    delta = {"role": "assistant", "content": "" if token["special"] else token["text"]}
                    choice = {
                        "index": 0,
                        "delta": delta,
                        "logprobs": logprobs,
                        "finish_reason": _openai_finish(details["finish_reason"]) if details else None,
                    }
                    chunk = {"object": "chat.completion.chunk", **base, "choices": [choice], "usage": None}
                    yield json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
                    if details and opts["include_usage"]:
                        usage = {
                            "prompt_tokens": details["input_length"],
                            "completion_tokens": details["generated_tokens"],
                            "total_tokens": details["input_length"] + details["generated_tokens"],
                        }
                        yield json.dumps(
                            {"object": "chat.completion.chunk", **base, "choices": [], "usage": usage},
                            separators=(",", ":"),
                        )
            except ApiError as err:
                yield json.dumps(
                    {"error": {"message": err.error, "http_status_code": 422}},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
            yield "[DONE]"

        self.sse(events(), {**self._compute_headers([inputs]), "x-accel-buffering": "no"})

    def route_completions(self, data: Any, body: Body) -> None:
        app = self.app
        app.metrics.add("tgi_request_count")
        obj = body.obj(data, "", "CompletionRequest")
        if "prompt" not in obj:
            raise body.fail("", "missing field `prompt`")
        prompt = obj["prompt"]
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise body.fail("prompt", "data did not match any variant of untagged enum PromptDeserializer")
        if not prompts:
            raise body.fail("prompt", "Empty array detected. Do not use an empty array for the prompt.")
        get = body.get
        temperature = get(obj, "temperature", "f32")
        stream = bool(get(obj, "stream", "bool", nullable=False, default=False))
        if get(obj, "suffix", "str") is not None:
            app.metrics.add("tgi_request_failure", err="validation")
            raise ApiError(
                422,
                "Suffix is not supported and can be achieved by preprocessing the prompt.",
                "suffix not supported",
            )
        if len(prompts) > app.s.max_client_batch_size:
            app.metrics.add("tgi_request_failure", err="validation")
            raise ApiError(
                422,
                f"Number of prompts exceeds the maximum allowed batch size of {app.s.max_client_batch_size}",
                "batch size exceeded",
            )

        def params() -> Params:
            return Params(
                temperature=None if temperature == 0.0 else temperature,
                do_sample=temperature != 0.0,
                repetition_penalty=get(obj, "repetition_penalty", "f32"),
                frequency_penalty=get(obj, "frequency_penalty", "f32"),
                top_p=get(obj, "top_p", "f32"),
                max_new_tokens=_or(get(obj, "max_tokens", "u32"), 100),
                stop=get(obj, "stop", "vec_str") or [],
                details=True,
                decoder_input_details=not stream,
                seed=get(obj, "seed", "u64"),
            )

        model, now = app.s.model_id, int(time.time())
        base = {"id": "", "created": now, "model": model, "system_fingerprint": SYSTEM_FINGERPRINT}
        if not stream:
            choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            headers: dict[str, str] = {}
            for index, text in enumerate(prompts):
                response, one_headers, outcome = self._generate_json(text, params())
                gen = outcome.best
                for key, value in one_headers.items():
                    headers[key] = (
                        value
                        if key in {"x-compute-type", "x-compute-time"}
                        else str(int(headers.get(key, "0")) + int(value))
                    )
                usage["prompt_tokens"] += len(gen.prefill())
                usage["completion_tokens"] += len(gen.tokens)
                choices.append(
                    {
                        "index": index,
                        "text": response["generated_text"],
                        "logprobs": None,
                        "finish_reason": _openai_finish(gen.finish_reason),
                    }
                )
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self.send_json(
                200, {"object": "text_completion", **base, "choices": choices, "usage": usage}, headers
            )
            return

        def events() -> Iterator[str]:
            for index, text in enumerate(prompts):
                app.metrics.add("tgi_request_count")
                try:
                    for event, _ in app.stream(text, params(), True, False):
                        details = event["details"]
                        choice = {
                            "index": index,
                            "text": event["token"]["text"],
                            "logprobs": None,
                            "finish_reason": details["finish_reason"] if details else "",
                        }
                        if details:
                            usage = {
                                "prompt_tokens": details["input_length"],
                                "completion_tokens": details["generated_tokens"],
                                "total_tokens": details["input_length"] + details["generated_tokens"],
                            }
                            out = {"object": "text_completion", **base, "choices": [choice], "usage": usage}
                        else:
                            out = {
                                "object": "text_completion",
                                "id": "",
                                "created": now,
                                "choices": [choice],
                                "model": model,
                                "system_fingerprint": SYSTEM_FINGERPRINT,
                            }
                        yield json.dumps(out, ensure_ascii=False, separators=(",", ":"))
                except ApiError as err:
                    yield json.dumps(err.body(), ensure_ascii=False, separators=(",", ":"))
            yield "[DONE]"

        self.sse(events(), {**self._compute_headers(prompts), "x-accel-buffering": "no"})

    def route_chat_tokenize(self, data: Any, body: Body) -> None:
        self.app.metrics.add("tgi_request_count")
        inputs, _, _ = self._chat_request(data, body)
        tokens = [
            {"id": p.id, "text": inputs[p.start : p.stop], "start": p.start, "stop": p.stop}
            for p in tokenize(inputs)
        ]
        self.send_json(200, {"tokenize_response": tokens, "templated_text": inputs})
