"""`tgi-nix probe` through the CLI entry point, against live mock servers."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rich.console import Console

from tgi_nix.cli import main
from tgi_nix.errors import SpecError
from tgi_nix.ops.client import EndpointUnreachable, TGIClient
from tgi_nix.ops.probe import (
    PROMPT,
    BadTarget,
    Check,
    EndpointReport,
    Prober,
    Target,
    exit_code,
    probe,
    render,
    targets_from,
)

from .test_client import (
    INFO,
    METRICS,
    REAL_CHAT,
    REAL_CHAT_STREAM,
    MockTGI,
    Script,
    free_port,
    run_mock,
    sse,
    token_event,
)

CHECKS = ["health", "info", "determinism", "stream", "chat", "chat-stream", "metrics"]


def probe_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = main(["probe", "--json", *args])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def checks(report: dict[str, Any], endpoint: int = 0) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["endpoints"][endpoint]["checks"]}


@pytest.fixture(scope="module")
def mock_tgi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockTGI]:
    with run_mock(tmp_path_factory.mktemp("mock"), "org/probe-model") as mock:
        yield mock


def test_all_checks_pass_exit_zero_with_json_report(mock_tgi: MockTGI,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc, report = probe_json(capsys, mock_tgi.url, "--model", "org/probe-model")
    assert rc == 0 and report["ok"] is True and report["exit_code"] == 0
    (endpoint,) = report["endpoints"]
    assert endpoint["url"] == mock_tgi.url and endpoint["reachable"] is True and endpoint["ok"] is True
    assert [c["name"] for c in endpoint["checks"]] == CHECKS
    for check in endpoint["checks"]:
        assert set(check) == {"name", "ok", "detail", "metrics"} and check["ok"] is True, check
    found = checks(report)
    assert "org/probe-model" in found["info"]["detail"]
    assert "identical" in found["determinism"]["detail"]
    stream = found["stream"]["metrics"]
    assert stream["ttft_ms"] > 0 and stream["tokens_per_s"] > 0 and stream["tokens"] == 16
    assert found["metrics"]["metrics"]["increase"] >= 5


def test_table_output(mock_tgi: MockTGI, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["probe", mock_tgi.url, "--max-new-tokens", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    for name in CHECKS:
        assert name in out
    assert "FAIL" not in out and "1/1 endpoint(s) passed" in out


def test_model_mismatch_exit_one(mock_tgi: MockTGI, capsys: pytest.CaptureFixture[str]) -> None:
    rc, report = probe_json(capsys, mock_tgi.url, "--model", "org/other-model")
    assert rc == 1 and report["ok"] is False
    found = checks(report)
    assert found["info"]["ok"] is False
    assert "'org/probe-model'" in found["info"]["detail"] and "'org/other-model'" in found["info"]["detail"]
    assert all(c["ok"] for name, c in found.items() if name != "info")


def test_loading_model_is_waited_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with run_mock(tmp_path, load_delay=2, ready=False) as mock:
        started = time.monotonic()
        rc, report = probe_json(capsys, mock.url, "--timeout", "20")
        assert rc == 0, report
        health = checks(report)["health"]
        assert health["ok"] and health["metrics"]["wait_s"] >= 1.0 and time.monotonic() - started < 15


def test_model_still_loading_at_timeout_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with run_mock(tmp_path, load_delay=60, ready=False) as mock:
        rc, report = probe_json(capsys, mock.url, "--timeout", "0.6")
    assert rc == 1
    assert [c["name"] for c in report["endpoints"][0]["checks"]] == ["health"]
    assert "still not healthy after 0.6 s" in checks(report)["health"]["detail"]


def test_unreachable_port_exit_five_fast(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    rc, report = probe_json(capsys, f"http://127.0.0.1:{free_port()}", "--timeout", "600")
    assert time.monotonic() - started < 3
    assert rc == 5 and report["endpoints"][0]["reachable"] is False
    assert "connection refused" in checks(report)["health"]["detail"]


def test_wait_for_start_waits_for_the_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    started = time.monotonic()
    rc, _ = probe_json(capsys, f"http://127.0.0.1:{port}", "--wait-for-start", "--timeout", "0.8")
    assert rc == 5 and 0.7 < time.monotonic() - started < 3  # gave up at the timeout, not at once

    mocks: list[Any] = []

    def start_later() -> None:
        time.sleep(1.0)
        context = run_mock(tmp_path, port=port)
        mocks.append((context, context.__enter__()))

    starter = threading.Thread(target=start_later)
    starter.start()
    try:
        rc, report = probe_json(capsys, f"http://127.0.0.1:{port}", "--wait-for-start", "--timeout", "20")
    finally:
        starter.join()
        for context, _ in mocks:
            context.__exit__(None, None, None)
    assert rc == 0, report
    assert checks(report)["health"]["metrics"]["wait_s"] >= 0.8


def test_spec_probes_every_enabled_instance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with run_mock(tmp_path, "org/alpha") as alpha, run_mock(tmp_path, "org/beta") as beta:
        spec = tmp_path / "spec.toml"
        spec.write_text(
            f'[instances.alpha]\nmodel = "org/alpha"\nport = {alpha.port}\n\n'
            f'[instances.beta]\nmodel = "org/beta"\nport = {beta.port}\nlistenAddress = "0.0.0.0"\n\n'
            f'[instances.off]\nmodel = "org/off"\nport = {free_port()}\nenable = false\n'
        )
        rc, report = probe_json(capsys, str(spec))
        assert rc == 0, report
        assert [(e["name"], e["url"], e["model"]) for e in report["endpoints"]] == [
            ("alpha", alpha.url, "org/alpha"), ("beta", beta.url, "org/beta")]

        spec.write_text(spec.read_text().replace('model = "org/beta"', 'model = "org/gamma"'))
        rc, report = probe_json(capsys, str(spec))
        assert rc == 1
        assert [e["ok"] for e in report["endpoints"]] == [True, False]
        assert checks(report, 1)["info"]["ok"] is False


def test_spec_with_unreachable_instance_exit_five(tmp_path: Path, mock_tgi: MockTGI,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[instances.up]\nmodel = "org/wrong"\nport = {mock_tgi.port}\n\n'
                    f'[instances.down]\nmodel = "org/x"\nport = {free_port()}\n')
    rc, report = probe_json(capsys, str(spec))
    assert rc == 5  # unreachable wins over the failed model check
    assert [e["reachable"] for e in report["endpoints"]] == [True, False]


def test_api_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k3y-from-file\n")
    with run_mock(tmp_path, args=["--api-key", "k3y-from-file"]) as mock:
        rc, report = probe_json(capsys, mock.url)
        assert rc == 1
        assert checks(report)["determinism"]["ok"] is False and "--api-key" in checks(report)["chat"]["detail"]
        rc, report = probe_json(capsys, mock.url, "--api-key-file", str(key_file))
        assert rc == 0, report


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "localhost:8080"]) == 2
    assert "neither a URL" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert main(["probe", "http://127.0.0.1:1", "--api-key-file", str(empty)]) == 2
    assert main(["probe", str(tmp_path / "missing.toml")]) == 2


@pytest.mark.parametrize(
    ("address", "url"),
    [("0.0.0.0", "http://127.0.0.1:8080"), ("::", "http://[::1]:8080"), ("::1", "http://[::1]:8080"),
     ("10.0.0.5", "http://10.0.0.5:8080"), ("fd00::7", "http://[fd00::7]:8080")],
)
def test_spec_targets_use_the_cores_reachable_address(address: str, url: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[instances.a]\nmodel = "org/m"\nport = 8080\nlistenAddress = "{address}"\n')
    (target,) = targets_from(str(spec), None)
    assert (target.name, target.url, target.model) == ("a", url, "org/m")


# ------------------------------------------------------------------- checks that fail (MockTransport)
def prober(script: Script) -> Prober:
    tgi = TGIClient("http://tgi.test", transport=httpx.MockTransport(script), retries=0)
    return Prober(Target("t", "http://tgi.test"), tgi, 4, Console(quiet=True))


def test_nondeterministic_generation_fails_the_check() -> None:
    script = Script(httpx.Response(200, json={"generated_text": "one"}),
                    httpx.Response(200, json={"generated_text": "two"}))
    check = prober(script).determinism()
    assert not check.ok and "'one' vs 'two'" in check.detail


def test_metrics_that_do_not_grow_fail_the_check() -> None:
    probe = prober(Script(httpx.Response(200, text=METRICS)))
    probe.sent = 5
    check = probe.metrics(before=7.0)
    assert not check.ok and "7 -> 7 (probe sent 5)" in check.detail
    assert not prober(Script(httpx.Response(200, text="# nothing\n"))).metrics(before=None).ok


def test_info_without_expected_model_passes() -> None:
    check = prober(Script(httpx.Response(200, json=INFO))).info()
    assert check.ok and "org/model" in check.detail


# ------------------------------------------------------- keys, odd URLs and servers (issue 14, item 6)
def test_spec_instances_use_their_own_api_key_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each instance's apiKeyFile, read as the units read it: the first line (a second line is not the key)."""
    (tmp_path / "a.key").write_text("key-of-a\nnot part of the key\n")
    (tmp_path / "b.key").write_text("key-of-b")
    with run_mock(tmp_path, "org/a", args=["--api-key", "key-of-a"]) as a, \
            run_mock(tmp_path, "org/b", args=["--api-key", "key-of-b"]) as b:
        spec = tmp_path / "spec.toml"
        spec.write_text(
            f'[instances.a]\nmodel = "org/a"\nport = {a.port}\napiKeyFile = "{tmp_path / "a.key"}"\n\n'
            f'[instances.b]\nmodel = "org/b"\nport = {b.port}\napiKeyFile = "{tmp_path / "b.key"}"\n'
        )
        rc, report = probe_json(capsys, str(spec))
        assert rc == 0, report
        # An explicit --api-key-file overrides them all: b then answers 401, and no key is printed.
        rc, report = probe_json(capsys, str(spec), "--api-key-file", str(tmp_path / "a.key"))
        assert rc == 1 and [e["ok"] for e in report["endpoints"]] == [True, False]
        assert "key-of" not in json.dumps(report)


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"\xff\xfesecret\n", "not UTF-8"), (b"sec ret\n", "cannot carry"), (b"s\x7fecret", "cannot carry"),
     (b"\n", "empty")],
)
def test_bad_key_files_are_one_line_without_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, words: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(content)
    assert main(["probe", "http://127.0.0.1:1", "--api-key-file", str(key_file)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and "ecret" not in err.replace(str(tmp_path), "")
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[instances.a]\nmodel = "org/a"\nport = {free_port()}\napiKeyFile = "{key_file}"\n')
    assert main(["probe", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "instances.a.apiKeyFile" in err and words in err and "ecret" not in err.replace(str(tmp_path), "")


def test_unreadable_key_file_as_an_unprivileged_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("secret\n")
    key_file.chmod(0)
    if os.access(key_file, os.R_OK):  # root reads it anyway: take away the directory instead
        key_file.unlink()
        key_file.mkdir()
    assert main(["probe", "http://127.0.0.1:1", "--api-key-file", str(key_file)]) == 2
    assert "secret" not in capsys.readouterr().err


@pytest.mark.parametrize("suffix", ["/v1", "/v1/chat/completions", "/generate", "/health/"])
def test_a_route_url_is_refused_with_the_base_url(suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", f"http://127.0.0.1:8080{suffix}"]) == 2
    err = capsys.readouterr().err
    assert "http://127.0.0.1:8080" in err and "base URL" in err and "Traceback" not in err


def test_a_server_that_is_not_tgi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import http.server

    page = b"<!DOCTYPE html><html><head><title>Welcome to nginx</title></head><body>" + b"x" * 5000 + b"</body></html>"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(404)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rc, report = probe_json(capsys, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    detail = checks(report)["health"]["detail"]
    assert rc == 1 and "HTML page ('Welcome to nginx')" in detail and "xxxx" not in detail and "\n" not in detail


def test_an_empty_spec_is_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[instances.off]\nmodel = "org/off"\nport = {free_port()}\nenable = false\n')
    assert main(["probe", str(spec)]) == 2
    assert "no enabled instance" in capsys.readouterr().err


def test_unreachable_instance_hint_names_its_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[instances.down]\nmodel = "org/x"\nport = {free_port()}\n')
    rc, report = probe_json(capsys, str(spec))
    assert rc == 5
    detail = checks(report)["health"]["detail"]
    assert "huggingface-tgi-down.service" in detail and "<name>" not in detail


# -------------------------------------------- the whole probe in process (a TGI answered by MockTransport)
class FakeTGI:
    """Answers TGI's routes by path; `overrides` (path -> response or exception) replace single routes.
    Counts generation requests in tgi_request_count, as TGI does."""

    def __init__(self, **overrides: Any) -> None:
        self.overrides = {"/" + k.replace("__", "/").replace("_", "-") if not k.startswith("/") else k: v
                          for k, v in overrides.items()}
        self.count = 7
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        answer = self.overrides.get(path)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)  # type: ignore[no-any-return]
        if answer is not None:
            return answer  # type: ignore[no-any-return]
        if path in ("/generate", "/generate_stream", "/v1/chat/completions"):
            self.count += 1
        if path == "/health":
            return httpx.Response(200)
        if path == "/info":
            return httpx.Response(200, json=INFO)
        if path == "/metrics":
            return httpx.Response(200, text=f"# TYPE tgi_request_count counter\ntgi_request_count {self.count}\n")
        if path == "/generate":
            return httpx.Response(200, json={"generated_text": "Deep learning is a kind of machine learning that "
                                                               "stacks many layers."})
        if path == "/generate_stream":
            return sse(token_event(1, "Deep"), token_event(2, " learning"), token_event(3, " is", last=True))
        if path == "/v1/chat/completions" and json.loads(request.content).get("stream"):
            return sse(*REAL_CHAT_STREAM, "[DONE]")
        if path == "/v1/chat/completions":
            return httpx.Response(200, json=REAL_CHAT)
        return httpx.Response(404, json={"error": "not found", "error_type": "not_found"})


def run_probe(monkeypatch: pytest.MonkeyPatch, fake: FakeTGI, *, target: Target | None = None,
              api_key: str | None = None, timeout: float = 5.0, wait_for_start: bool = False) -> EndpointReport:
    real = TGIClient

    def with_transport(url: str, **kwargs: Any) -> TGIClient:
        assert kwargs["retries"] == 0 and kwargs["timeout"].connect == 2.0, kwargs
        return real(url, transport=httpx.MockTransport(fake), **kwargs)

    monkeypatch.setattr("tgi_nix.ops.probe.TGIClient", with_transport)
    return probe(target or Target("t", "http://tgi.test", "org/model"), api_key=api_key, timeout=timeout,
                 wait_for_start=wait_for_start, max_new_tokens=4, request_timeout=30.0, console=Console(quiet=True))


def test_every_check_reports_what_it_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTGI()
    report = run_probe(monkeypatch, fake)
    assert report.ok and report.reachable and exit_code([report]) == 0
    found = {c.name: c for c in report.checks}
    assert list(found) == CHECKS and all(c.ok for c in found.values())
    assert found["health"].detail.startswith("healthy (waited 0.") and found["health"].metrics["wait_s"] < 1
    assert found["info"].detail == "org/model (TGI 3.3.7, max_total_tokens 4096)"
    assert found["determinism"].detail == "2 greedy runs identical: 'Deep learning is a kind of machine learning that'"
    assert found["determinism"].metrics["latency_ms"] > 0
    assert re.fullmatch(r"3 tokens, first after \d+ ms, [\d.]+ tokens/s", found["stream"].detail)
    assert found["stream"].metrics["tokens"] == 3.0 and found["stream"].metrics["tokens_per_s"] > 0
    assert found["chat"].detail == "100 tokens, finish_reason length: 'As of your last question'"
    assert found["chat-stream"].detail == "4 chunks until [DONE], finish_reason stop"
    assert found["chat-stream"].metrics["chunks"] == 4.0 and found["chat-stream"].metrics["ttft_ms"] > 0
    # 2 greedy runs, a stream, a chat and a chat stream: 5 requests, counted from before the first one.
    assert found["metrics"].detail == "tgi_request_count 7 -> 12 (probe sent 5)"
    assert found["metrics"].metrics == {"tgi_request_count": 12.0, "increase": 5.0}
    bodies = {r.url.path: json.loads(r.content) for r in fake.requests if r.content}
    assert bodies["/generate"]["parameters"]["max_new_tokens"] == 4
    assert bodies["/generate"]["parameters"]["do_sample"] is False and bodies["/generate"]["inputs"] == PROMPT
    chats = [json.loads(r.content) for r in fake.requests if r.url.path == "/v1/chat/completions"]
    assert [(c["stream"], c["max_tokens"], c["temperature"]) for c in chats] == [(False, 4, 0.0), (True, 4, 0.0)]
    streams = [json.loads(r.content) for r in fake.requests if r.url.path == "/generate_stream"]
    assert [(s["parameters"]["max_new_tokens"], s["parameters"]["do_sample"], s["inputs"]) for s in streams] == [
        (4, False, PROMPT)]
    assert report.as_json() == {"name": "t", "url": "http://tgi.test", "model": "org/model", "ok": True,
                                "reachable": True, "checks": [asdict(c) for c in report.checks]}


def test_a_check_that_tgi_refuses_fails_with_tgis_message_and_the_rest_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeTGI(generate=httpx.Response(422, json={"error": "Input validation error", "error_type": "validation"}))
    report = run_probe(monkeypatch, fake)
    found = {c.name: c for c in report.checks}
    assert list(found) == CHECKS and report.reachable and not report.ok and exit_code([report]) == 1
    assert not found["determinism"].ok and "Input validation error" in found["determinism"].detail
    assert [n for n, c in found.items() if not c.ok] == ["determinism"]


def test_an_endpoint_lost_mid_probe_is_unreachable_under_the_check_it_was_in(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTGI(info=httpx.ConnectError("Connection refused"))
    report = run_probe(monkeypatch, fake, target=Target("down", "http://tgi.test", None, unit="huggingface-tgi-down"))
    assert not report.reachable and exit_code([report, EndpointReport(Target("x", "y"))]) == 5
    assert [c.name for c in report.checks] == ["health", "info"]
    last = report.checks[-1]
    assert not last.ok and "systemctl status huggingface-tgi-down)" in last.detail
    assert "--wait-for-start" not in last.detail  # the hint is for a server that never answered


def test_refused_at_health_hints_at_wait_for_start(monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_probe(monkeypatch, FakeTGI(health=httpx.ConnectError("Connection refused")))
    (health,) = report.checks
    assert not report.reachable and health.detail.endswith("; --wait-for-start waits for it")
    assert "huggingface-tgi-<name>" in health.detail  # a URL target has no unit to name
    waited = run_probe(monkeypatch, FakeTGI(health=httpx.ConnectError("Connection refused")), timeout=0.3,
                       wait_for_start=True)
    assert not waited.reachable and "--wait-for-start" not in waited.checks[0].detail


def test_loading_until_the_timeout_is_a_failed_health_check(monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_probe(monkeypatch, FakeTGI(health=httpx.Response(503)), timeout=0.3)
    assert report.reachable and [c.name for c in report.checks] == ["health"] and exit_code([report]) == 1
    assert report.checks[0].detail == "still not healthy after 0.3 s: model loading (/health answers 503)"


def test_a_request_that_cannot_be_made_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_probe(monkeypatch, FakeTGI(info=httpx.DecodingError("bad gzip")))
    assert report.checks[-1] == Check("info", False, "DecodingError: the request could not be made")


def test_the_api_key_is_sent_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": f"bad key {request.headers['authorization']}", "error_type": "auth"})

    report = run_probe(monkeypatch, FakeTGI(info=echo), api_key="s3cr3t-k3y")
    info = report.checks[1]
    assert not info.ok and "<api key>" in info.detail and "s3cr3t" not in info.detail


def test_failed_answers_fail_their_checks() -> None:
    chat_without_choices = {**REAL_CHAT, "choices": []}
    assert prober(Script(httpx.Response(200, json=chat_without_choices))).chat() == Check(
        "chat", False, "no choices in the answer")
    unfinished = {**REAL_CHAT, "choices": [{**REAL_CHAT["choices"][0], "finish_reason": None}]}
    assert not prober(Script(httpx.Response(200, json=unfinished))).chat().ok
    empty = prober(Script(sse("[DONE]"))).stream()
    assert empty == Check("stream", False, "0 token events and no final text")
    no_finish = prober(Script(sse(_delta_chunk(), "[DONE]"))).chat_stream()
    assert not no_finish.ok and no_finish.detail == "1 chunks and none with a finish_reason"
    differ = prober(Script(httpx.Response(200, json={"generated_text": "a" * 70}),
                           httpx.Response(200, json={"generated_text": "b" * 70}))).determinism()
    assert differ.detail == f"greedy runs differ: {'a' * 60!r} vs {'b' * 60!r}"


def _delta_chunk() -> dict[str, Any]:
    return REAL_CHAT_STREAM[0]


def test_info_names_what_is_served_and_what_was_expected() -> None:
    wrong = Prober(Target("t", "http://tgi.test", "org/expected"),
                   TGIClient("http://tgi.test", transport=httpx.MockTransport(Script(httpx.Response(200, json=INFO))),
                             retries=0), 4, Console(quiet=True)).info()
    assert wrong == Check("info", False, "serves 'org/model', expected 'org/expected' (TGI 3.3.7)")
    unversioned = prober(Script(httpx.Response(200, json={**INFO, "version": None}))).info()
    assert unversioned.detail == "org/model (TGI, max_total_tokens 4096)"


def test_a_single_token_stream_has_a_rate() -> None:
    check = prober(Script(sse(token_event(1, "x", last=True)))).stream()
    assert check.ok and check.metrics["tokens"] == 1.0 and check.metrics["tokens_per_s"] > 0


def test_metrics_missing_before_or_after_fail_with_the_reason() -> None:
    failing = prober(Script(httpx.Response(500, json={"error": "boom", "error_type": "x"})))
    assert failing.baseline() is None
    grown = prober(Script(httpx.Response(200, text=METRICS)))
    assert grown.metrics(before=None) == Check("metrics", False, "tgi_request_count was missing before the probe's "
                                               "requests")
    absent = prober(Script(httpx.Response(200, text="# nothing\n")))
    assert absent.metrics(before=1.0) == Check("metrics", False, "/metrics has no tgi_request_count")
    exact = prober(Script(httpx.Response(200, text=METRICS)))
    exact.sent = 2
    assert exact.metrics(before=5.0).ok  # grew by exactly what the probe sent
    unreachable = prober(Script(httpx.ConnectError("Connection refused")))
    with pytest.raises(EndpointUnreachable):
        unreachable.baseline()


def test_targets_from_urls_and_their_errors(tmp_path: Path) -> None:
    assert targets_from("http://h:1/", "org/m") == [Target("http://h:1", "http://h:1", "org/m")]
    assert targets_from("https://h/prefix", None) == [Target("https://h/prefix", "https://h/prefix", None)]
    with pytest.raises(BadTarget) as err:
        targets_from("http://h:1/v1/chat/completions", None)
    assert str(err.value) == ("'http://h:1/v1/chat/completions' is a route of the server; give its base URL, "
                              "such as http://h:1")
    with pytest.raises(BadTarget) as err:
        targets_from("h:1", None)
    assert str(err.value) == "'h:1' is neither a URL (http://host:port) nor a spec file (.toml)"
    with pytest.raises(SpecError, match="no such file"):
        targets_from(str(tmp_path / "missing.toml"), None)
    (tmp_path / "spec").write_text('[instances.a]\nmodel = "org/m"\nport = 8080\napiKeyFile = "/run/k"\n')
    (target,) = targets_from(str(tmp_path / "spec"), "ignored/for-specs")
    assert target == Target("a", "http://127.0.0.1:8080", "org/m", "/run/k", "huggingface-tgi-a.service")


def test_render_titles_statuses_and_the_tally() -> None:
    ok = EndpointReport(Target("a", "http://h:1"), [Check("health", True, "fine"), Check("info", True, "org/m")])
    bad = EndpointReport(Target("http://h:2", "http://h:2"), [Check("info", False, "x" * 45)])
    console = Console(record=True, width=50, color_system="standard", force_terminal=True)
    render([ok, bad], console)
    styled = console.export_text(styles=True, clear=False)
    # The title is the URL alone when the target is one; a long detail folds instead of being cut.
    assert console.export_text() == (
        "a  http://h:1               \n"
        "┏━━━━━━━━┳━━━━━━━━┳━━━━━━━━┓\n"
        "┃ check  ┃ status ┃ detail ┃\n"
        "┡━━━━━━━━╇━━━━━━━━╇━━━━━━━━┩\n"
        "│ health │ ok     │ fine   │\n"
        "│ info   │ ok     │ org/m  │\n"
        "└────────┴────────┴────────┘\n"
        "http://h:2                                        \n"
        "┏━━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓\n"
        "┃ check ┃ status ┃ detail                        ┃\n"
        "┡━━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩\n"
        "│ info  │ FAIL   │ xxxxxxxxxxxxxxxxxxxxxxxxxxxxx │\n"
        "│       │        │ xxxxxxxxxxxxxxxx              │\n"
        "└───────┴────────┴───────────────────────────────┘\n"
        "1/2 endpoint(s) passed\n"
    )
    assert "\x1b[32mok\x1b[0m" in styled and "\x1b[1;31mFAIL\x1b[0m" in styled
    assert styled.endswith("\n1/2 endpoint(s) passed\n")  # plain: no number highlighting
    assert not EndpointReport(Target("x", "y"), [Check("health", True, "")], reachable=False).ok


def test_stream_rate_counts_the_tokens_after_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 1.5])  # request sent, first token, second token
    script = Script(sse(token_event(1, "a"), token_event(2, "b", last=True)))
    probe_ = prober(script)
    fake_time = SimpleNamespace(perf_counter=lambda: next(clock), monotonic=time.monotonic, sleep=time.sleep)
    monkeypatch.setattr("tgi_nix.ops.probe.time", fake_time)  # the probe's clock only, not httpx's
    check = probe_.stream()
    assert check.metrics == {"ttft_ms": 1000.0, "tokens_per_s": 2.0, "tokens": 2.0}
    assert check.detail == "2 tokens, first after 1000 ms, 2.0 tokens/s"


def test_chat_checks_refused_by_tgi_keep_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = httpx.Response(422, json={"error": "Template error", "error_type": "template_error"})
    report = run_probe(monkeypatch, FakeTGI(**{"/v1/chat/completions": refused}))
    assert [(c.name, c.ok) for c in report.checks if "Template error" in c.detail] == [
        ("chat", False), ("chat-stream", False)]
