"""`tgi-nix probe` through the CLI entry point, against live mock servers."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from tgi_nix.cli import main
from tgi_nix.ops.client import TGIClient
from tgi_nix.ops.probe import Prober, Target, targets_from

from .test_client import INFO, METRICS, MockTGI, Script, free_port, run_mock

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
