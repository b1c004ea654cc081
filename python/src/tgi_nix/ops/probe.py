"""The checks behind `tgi-nix probe URL|SPEC`: TGI endpoints are up, serve the right model and behave.

Checks per endpoint, in order: health (waiting while the model loads), info (model id), determinism
(two greedy generations agree), stream (time to first token, tokens/s), chat, chat-stream, metrics
(`tgi_request_count` grew by at least the probe's own requests). Exit codes: 0 all passed, 1 a check
failed, 5 an endpoint could not be reached (that wins over 1).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import SpecError
from ..nix.bridge import evaluate
from ..spec.loader import load_spec
from .client import EndpointUnreachable, TGIClient, TGIError, metric_total

PROMPT = "What is deep learning?"
CHAT_MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]
POLL_INTERVAL = 0.5
CONNECT_TIMEOUT = 2.0  # an unreachable endpoint must fail fast, not after --timeout


class BadTarget(ValueError):
    """The probe's argument is neither a URL nor a spec file (the CLI reports it as a bad argument)."""


@dataclass(frozen=True)
class Target:
    """One endpoint to probe; `model` is the model id it must serve (None: any); `api_key_file` and
    `unit` come from the instance's facts when the target is a spec's instance."""

    name: str
    url: str
    model: str | None = None
    api_key_file: str | None = None
    unit: str | None = None


# Paths of TGI's routes: a URL ending in one is not the server's base URL.
_ROUTE_RE = re.compile(r"/(v1(/.*)?|health|info|generate(_stream)?|metrics|docs)/?$")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class EndpointReport:
    target: Target
    checks: list[Check] = field(default_factory=list)
    reachable: bool = True

    @property
    def ok(self) -> bool:
        return self.reachable and all(check.ok for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.target.name, "url": self.target.url, "model": self.target.model, "ok": self.ok,
                "reachable": self.reachable, "checks": [asdict(check) for check in self.checks]}


def targets_from(target: str, model: str | None) -> list[Target]:
    """A URL gives one target; a spec file gives every enabled instance, each with its model."""
    if target.startswith(("http://", "https://")):
        url = target.rstrip("/")
        path = urlsplit(url).path
        if _ROUTE_RE.search(path):
            base = url[: len(url) - len(path)]
            raise BadTarget(f"{target!r} is a route of the server; give its base URL, such as {base}")
        return [Target(url, url, model)]
    if not Path(target).is_file() and not target.endswith(".toml"):
        raise BadTarget(f"{target!r} is neither a URL (http://host:port) nor a spec file (.toml)")
    # The core's facts say where this host reaches each instance (a wildcard address: loopback).
    spec = load_spec(target, check=False)
    enabled = spec.enabled()
    if not enabled:
        raise SpecError(f"{target} has no enabled instance to probe")
    core = evaluate(spec, source=target)
    return [
        Target(name, facts.network.url, facts.model.id, facts.secrets.api_key_file, facts.service_name)
        for name, facts in ((name, core.instances[name]) for name in enabled)
    ]


def exit_code(reports: list[EndpointReport]) -> int:
    if any(not report.reachable for report in reports):
        return EndpointUnreachable.exit_code
    return 0 if all(report.ok for report in reports) else 1


# ---------------------------------------------------------------------------------------------- checks
class Prober:
    """Runs the checks against one endpoint with one client."""

    def __init__(self, target: Target, tgi: TGIClient, max_new_tokens: int, console: Console) -> None:
        self.target, self.tgi, self.max_new_tokens, self.console = target, tgi, max_new_tokens, console
        self.sent = 0  # generation requests the probe made that TGI accepted (for the metrics check)

    @contextmanager
    def _waiting(self) -> Iterator[Callable[[str], None]]:
        """Yields `show(state)`: a spinner with the elapsed time on stderr, started on the first call so
        that an endpoint that is already healthy prints nothing."""
        with ExitStack() as stack:
            task: list[tuple[Progress, TaskID]] = []

            def show(state: str) -> None:
                description = f"{self.target.name}: {state}"
                if not task:
                    progress = stack.enter_context(Progress(
                        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=self.console, transient=True))
                    task.append((progress, progress.add_task(description, total=None)))
                progress, task_id = task[0]
                progress.update(task_id, description=description)

            yield show

    def health(self, timeout: float, wait_for_start: bool) -> Check:
        """Poll /health until 200. 503 (loading) is waited for up to `timeout`; a refused connection fails at
        once (TGI opens its port only after loading, so nothing listening means not started) unless
        `wait_for_start`."""
        start = time.monotonic()
        deadline = start + timeout
        with self._waiting() as show:
            while True:
                try:
                    if self.tgi.health():
                        waited = time.monotonic() - start
                        return Check("health", True, f"healthy (waited {waited:.1f} s)", {"wait_s": round(waited, 3)})
                    state = "model loading (/health answers 503)"
                except EndpointUnreachable:
                    if not wait_for_start or time.monotonic() >= deadline:
                        raise
                    state = "waiting for the server to start"
                if time.monotonic() >= deadline:
                    return Check("health", False, f"still not healthy after {timeout:g} s: {state}")
                show(state)
                time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))

    def info(self) -> Check:
        info = self.tgi.info()
        version = f"TGI {info.version}" if info.version else "TGI"
        if self.target.model is not None and info.model_id != self.target.model:
            return Check("info", False, f"serves {info.model_id!r}, expected {self.target.model!r} ({version})")
        return Check("info", True, f"{info.model_id} ({version}, max_total_tokens {info.max_total_tokens})")

    def determinism(self) -> Check:
        texts, latencies = [], []
        for _ in range(2):
            started = time.perf_counter()
            response = self.tgi.generate(PROMPT, max_new_tokens=self.max_new_tokens, do_sample=False)
            latencies.append((time.perf_counter() - started) * 1000)
            self.sent += 1
            texts.append(response.generated_text)
        metrics = {"latency_ms": round(min(latencies), 2)}
        if texts[0] != texts[1]:
            return Check("determinism", False, f"greedy runs differ: {texts[0][:60]!r} vs {texts[1][:60]!r}", metrics)
        return Check("determinism", True, f"2 greedy runs identical: {texts[0][:48]!r}", metrics)

    def stream(self) -> Check:
        started = time.perf_counter()
        first = last = started
        tokens, final = 0, None
        for event in self.tgi.generate_stream(PROMPT, max_new_tokens=self.max_new_tokens, do_sample=False):
            last = time.perf_counter()
            if tokens == 0:
                first = last
            tokens += 1
            final = event.generated_text
        self.sent += 1
        if tokens == 0 or final is None:
            return Check("stream", False, f"{tokens} token events and no final text")
        ttft_ms = (first - started) * 1000
        decode_s = last - first
        rate = (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else tokens / max(last - started, 1e-9)
        metrics = {"ttft_ms": round(ttft_ms, 2), "tokens_per_s": round(rate, 1), "tokens": float(tokens)}
        return Check("stream", True, f"{tokens} tokens, first after {ttft_ms:.0f} ms, {rate:.1f} tokens/s",
                     metrics)

    def chat(self) -> Check:
        completion = self.tgi.chat(CHAT_MESSAGES, max_tokens=self.max_new_tokens, temperature=0.0)
        self.sent += 1
        if not completion.choices:
            return Check("chat", False, "no choices in the answer")
        choice = completion.choices[0]
        content = choice.message.content if isinstance(choice.message.content, str) else ""
        used = completion.usage.completion_tokens if completion.usage else 0
        return Check("chat", choice.finish_reason is not None,
                     f"{used} tokens, finish_reason {choice.finish_reason}: {content[:40]!r}")

    def chat_stream(self) -> Check:
        started = time.perf_counter()
        chunks, ttft_ms, finish = 0, 0.0, None
        for chunk in self.tgi.chat(CHAT_MESSAGES, max_tokens=self.max_new_tokens, temperature=0.0, stream=True):
            if chunks == 0:
                ttft_ms = (time.perf_counter() - started) * 1000
            chunks += 1
            finish = next((c.finish_reason for c in chunk.choices if c.finish_reason), finish)
        self.sent += 1
        metrics = {"ttft_ms": round(ttft_ms, 2), "chunks": float(chunks)}
        if finish is None:
            return Check("chat-stream", False, f"{chunks} chunks and none with a finish_reason", metrics)
        return Check("chat-stream", True, f"{chunks} chunks until [DONE], finish_reason {finish}", metrics)

    def request_count(self) -> float | None:
        return metric_total(self.tgi.metrics(), "tgi_request_count")

    def baseline(self) -> float | None:
        """`tgi_request_count` before the probe's requests; None when /metrics fails (the metrics check
        reports it)."""
        try:
            return self.request_count()
        except EndpointUnreachable:
            raise
        except TGIError:
            return None

    def metrics(self, before: float | None) -> Check:
        after = self.request_count()
        if after is None:
            return Check("metrics", False, "/metrics has no tgi_request_count")
        if before is None:
            return Check("metrics", False, "tgi_request_count was missing before the probe's requests")
        grown = after - before
        detail = f"tgi_request_count {before:g} -> {after:g} (probe sent {self.sent})"
        return Check("metrics", grown >= self.sent, detail, {"tgi_request_count": after, "increase": grown})


def _attempt(name: str, run: Callable[[], Check]) -> Check:
    """A check whose request TGI answered with an error fails with TGI's message; unreachable propagates."""
    try:
        return run()
    except EndpointUnreachable:
        raise
    except TGIError as err:
        return Check(name, False, err.message)


def probe(target: Target, *, api_key: str | None, timeout: float, wait_for_start: bool,
          max_new_tokens: int, request_timeout: float, console: Console) -> EndpointReport:
    report = EndpointReport(target)
    client_timeout = httpx.Timeout(request_timeout, connect=CONNECT_TIMEOUT)
    # No retries: the probe reports what a client sees, and waits for loading itself.
    with TGIClient(target.url, api_key=api_key, timeout=client_timeout, retries=0) as tgi:
        prober = Prober(target, tgi, max_new_tokens, console)
        name = "health"
        try:
            health = _attempt(name, lambda: prober.health(timeout, wait_for_start))
            report.checks.append(health)
            if not health.ok:
                return report
            before = prober.baseline()
            for name, run in (("info", prober.info), ("determinism", prober.determinism),
                              ("stream", prober.stream), ("chat", prober.chat),
                              ("chat-stream", prober.chat_stream),
                              ("metrics", lambda: prober.metrics(before))):
                report.checks.append(_attempt(name, run))
        except EndpointUnreachable as err:
            report.reachable = False
            hint = "; --wait-for-start waits for it" if name == "health" and not wait_for_start else ""
            message = err.message.replace("huggingface-tgi-<name>", target.unit) if target.unit else err.message
            report.checks.append(Check(name, False, message + hint))
        except httpx.HTTPError as err:  # a request httpx refused to build or send
            report.checks.append(Check(name, False, f"{type(err).__name__}: the request could not be made"))
    if api_key:
        # Defence in depth: whatever a server echoes back, the key is in no output.
        for check in report.checks:
            check.detail = check.detail.replace(api_key, "<api key>")
    return report


# ---------------------------------------------------------------------------------------------- output
def render(reports: list[EndpointReport], console: Console) -> None:
    for report in reports:
        title = f"{report.target.name}  {report.target.url}" if report.target.name != report.target.url \
            else report.target.url
        table = Table(title=title, title_justify="left", show_lines=False)
        table.add_column("check")
        table.add_column("status")
        table.add_column("detail", overflow="fold")
        for check in report.checks:
            status = "[green]ok[/green]" if check.ok else "[bold red]FAIL[/bold red]"
            table.add_row(check.name, status, check.detail)
        console.print(table)
    passed = sum(report.ok for report in reports)
    console.print(f"{passed}/{len(reports)} endpoint(s) passed", highlight=False)
