"""Behaviour tests for the TGI mock (the tgi_nix.mock package), run as a subprocess on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

# The mock as a module, as `python -m` runs it in the mock image too.
MOCK = ("-m", "tgi_nix.mock")
MODEL = "acme/tiny-llm"
SECRET = "hf_test_SECRET_token_1234567890"
SECRET_PREFIX = hashlib.sha256(SECRET.encode()).hexdigest()[:12]
SCRUBBED = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "API_KEY",
    "PORT",
    "HOSTNAME",
    "MODEL_ID",
    "HF_HOME",
    "HF_HUB_OFFLINE",
)
UNHEALTHY = {"error": "unhealthy", "error_type": "healthcheck"}


RUNNING: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _reap_mocks() -> Iterator[None]:
    """Kill whatever a test left running, even when an assertion failed before `stop()`."""
    count = len(RUNNING)
    yield
    for proc in RUNNING[count:]:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    del RUNNING[count:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mock:
    """A mock server subprocess with its log file and a tiny HTTP client."""

    def __init__(
        self,
        tmp: Path,
        *args: str,
        env: dict[str, str] | None = None,
        model: str = MODEL,
        port_via_env: bool = False,
        wait: bool = True,
    ) -> None:
        self.port = free_port()
        self.log_path = tmp / f"mock-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith("TGI_MOCK")}
        full_env["HF_HOME"] = str(tmp / "hf")
        # A small model at full speed; the download's own tests (test_mock_download.py) set their sizes.
        full_env.update(TGI_MOCK_MODEL_BYTES="65536", TGI_MOCK_DOWNLOAD_RATE="0")
        full_env.update(env or {})
        cmd = [
            sys.executable,
            *MOCK,
            "--model-id",
            model,
            "--hostname",
            "127.0.0.1",
            "--prometheus-port",
            str(free_port()),
            "--load-delay",
            "0.3",
            "--download-delay",
            "0.1",
            *args,
        ]
        if port_via_env:
            full_env["PORT"] = str(self.port)
        else:
            cmd += ["--port", str(self.port)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        RUNNING.append(self.proc)
        if wait:
            self.wait_healthy()

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            hdrs.update(headers or {})
            payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            conn.request(method, path, body=payload, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        status, _, data = self.request("POST", path, body, **kw)
        return status, json.loads(data) if data else None

    def generate(self, inputs: str, **params: Any) -> dict[str, Any]:
        status, body = self.post("/generate", {"inputs": inputs, "parameters": params})
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def get_json(self, path: str) -> Any:
        status, _, data = self.request("GET", path)
        assert status == 200
        return json.loads(data)

    def wait_healthy(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.03)
        raise AssertionError(f"mock never became healthy:\n{self.log}")

    def wait_exit(self, timeout: float = 5) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=5)
        return rc, time.monotonic() - start

    def metrics(self) -> dict[str, Any]:
        status, headers, data = self.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        return {f.name: f for f in text_string_to_metric_families(data.decode())}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    """Value of one sample (the parser reports TGI's suffix-less counters as `<name>_total`)."""
    for family in families.values():
        for s in family.samples:
            if s.name in {name, f"{name}_total"} and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def sse_blocks(body: bytes) -> list[str]:
    """Raw SSE framing check: every event is `data: ...` terminated by a blank line."""
    text = body.decode()
    assert text.endswith("\n\n")
    blocks = text[:-2].split("\n\n")
    for block in blocks:
        assert block.startswith("data: ") and "\n" not in block, block
    return [b.removeprefix("data: ") for b in blocks]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mock]:
    mock = Mock(tmp_path_factory.mktemp("shared"), env={"HF_TOKEN": SECRET})
    RUNNING.remove(mock.proc)  # module-scoped: outlives the per-test reaper
    try:
        yield mock
    finally:
        if mock.proc.poll() is None:
            mock.stop()


# ------------------------------------------------------------------------------------------ lifecycle
def test_port_is_closed_while_loading_like_tgi(tmp_path: Path) -> None:
    """TGI starts its router after the shards: nothing listens while the model downloads and loads."""
    mock = Mock(tmp_path, "--load-delay", "1.5", wait=False)
    refused = 0
    deadline = time.monotonic() + 10
    while True:
        assert mock.proc.poll() is None, mock.log
        try:
            status, _, _ = mock.request("GET", "/health")
            break
        except ConnectionRefusedError:
            refused += 1
            assert time.monotonic() < deadline, mock.log
            time.sleep(0.02)
    # The first answer is already 200: never a 503, never a window where the port answers unready.
    assert status == 200 and refused > 10
    log = mock.log
    assert log.index("Shard ready") < log.index("Listening on") < log.index("Connected")
    assert mock.stop()[0] == 0


def test_never_ready_keeps_the_port_closed(tmp_path: Path) -> None:
    mock = Mock(tmp_path, env={"TGI_MOCK_NEVER_READY": "1"}, wait=False)
    # Past the load (its log line says so; a fixed sleep failed on a loaded machine), still closed.
    deadline = time.monotonic() + 30
    while "the port stays closed" not in mock.log:
        assert mock.proc.poll() is None and time.monotonic() < deadline, mock.log
        time.sleep(0.05)
    time.sleep(0.3)
    assert mock.proc.poll() is None
    with pytest.raises(ConnectionRefusedError):
        mock.request("GET", "/health")
    assert mock.stop()[0] == 0


def test_health_is_503_while_loading_then_200(tmp_path: Path) -> None:
    mock = Mock(tmp_path, "--load-delay", "0.8", "--health-before-ready", wait=False)
    deadline = time.monotonic() + 5
    while True:
        try:
            status, headers, body = mock.request("GET", "/health")
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert status == 503 and json.loads(body) == UNHEALTHY
    assert headers["content-type"] == "application/json"
    assert mock.post("/generate", {"inputs": "hi"}) == (503, UNHEALTHY)
    assert mock.get_json("/mock/state")["ready"] is False
    mock.wait_healthy()
    status, headers, body = mock.request("GET", "/health")
    assert (status, body, headers["content-length"]) == (200, b"", "0")
    assert mock.request("GET", "/ping")[0] == 200 and mock.request("GET", "/")[0] == 200
    assert mock.get_json("/mock/state")["ready"] is True
    log = mock.log
    assert (
        log.index("Downloading model acme/tiny-llm")
        < log.index("Shard ready")
        < log.index("Starting Webserver")
    )
    assert mock.stop()[0] == 0


def test_mock_unhealthy_fault_turns_health_503_and_keeps_serving_the_port(tmp_path: Path) -> None:
    mock = Mock(tmp_path)
    assert mock.request("GET", "/health")[0] == 200
    assert mock.request("GET", "/mock/unhealthy")[0] == 405
    status, _, body = mock.request("POST", "/mock/unhealthy")
    assert (status, body) == (204, b"")
    status, headers, body = mock.request("GET", "/health")
    assert status == 503 and json.loads(body) == UNHEALTHY and headers["content-type"] == "application/json"
    assert mock.post("/generate", {"inputs": "hi"}) == (503, UNHEALTHY)
    assert mock.get_json("/mock/state")["ready"] is False
    assert mock.get_json("/info")["model_id"] == "acme/tiny-llm"  # the process and port are up
    assert "health check failed" in mock.log
    assert mock.stop()[0] == 0


def test_download_happens_once_per_cache(tmp_path: Path) -> None:
    first = Mock(tmp_path)
    assert "Downloading model acme/tiny-llm" in first.log
    assert "HF_TOKEN not set" in first.log
    state = first.get_json("/mock/state")
    assert state["downloads"] == 1 and state["hf_token_sha256_prefix"] is None
    model_dir = tmp_path / "hf" / "hub" / "models--acme--tiny-llm"
    assert (model_dir / ".tgi-mock-complete").is_file()
    assert any(model_dir.glob("snapshots/*/config.json"))
    sha = first.get_json("/info")["model_sha"]
    assert first.stop()[0] == 0

    second = Mock(tmp_path)
    assert "Model acme/tiny-llm found in cache" in second.log
    assert "Downloading model" not in second.log
    assert second.get_json("/mock/state")["downloads"] == 1
    assert second.get_json("/info")["model_sha"] == sha
    assert second.stop()[0] == 0


def test_never_ready_unknown_flags_json_logs_and_fast_sigterm(tmp_path: Path) -> None:
    mock = Mock(
        tmp_path,
        "--revision",
        "v2",
        "--json-output",
        "--future-flag",
        "hush-value",
        "--other",
        env={"TGI_MOCK_NEVER_READY": "1", "TGI_MOCK_HEALTH_BEFORE_READY": "1"},
        wait=False,
    )
    # Wait on the condition, not a fixed time: the download delay and the fake download come first,
    # and a loaded CI machine makes any fixed sleep too short.
    deadline = time.monotonic() + 30
    while "never become ready" not in mock.log_path.read_text() and time.monotonic() < deadline:
        assert mock.proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)  # past --load-delay 0.3: still not ready
    assert mock.proc.poll() is None
    assert mock.request("GET", "/health")[0] == 503
    info = mock.get_json("/info")  # served while loading; model_sha depends on the revision
    assert len(info["model_sha"]) == 40 and int(info["model_sha"], 16) >= 0
    assert info["model_sha"] != hashlib.sha1(b"unrelated").hexdigest()
    rc, elapsed = mock.stop()
    assert rc == 0 and elapsed < 2
    lines = [json.loads(line) for line in mock.log.splitlines()]
    messages = [line["fields"]["message"] for line in lines]
    assert all(line["level"] in {"INFO", "WARN", "ERROR"} for line in lines)
    assert any("--future-flag" in m and "--other" in m for m in messages)
    assert not any("hush-value" in m for m in messages)
    assert any("never become ready" in m for m in messages)
    assert not any("Shard ready" in m for m in messages)


def test_model_sha_is_deterministic_per_model_and_revision(tmp_path: Path) -> None:
    shas = []
    for revision in ("main", "main", "v2"):
        mock = Mock(tmp_path, "--revision", revision, "--health-before-ready", env={"TGI_MOCK_NEVER_READY": "1"},
                    wait=False)
        deadline = time.monotonic() + 5
        while True:
            try:
                shas.append(mock.get_json("/info")["model_sha"])
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        mock.stop()
    assert shas[0] == shas[1] != shas[2]


def test_startup_errors_exit_nonzero(tmp_path: Path) -> None:
    missing = Mock(tmp_path, model="/nonexistent/weights", wait=False)
    assert missing.wait_exit() == 1
    assert "/nonexistent/weights does not exist" in missing.log

    (tmp_path / "a-file").write_text("")
    unwritable = Mock(tmp_path, "--huggingface-hub-cache", str(tmp_path / "a-file" / "hub"), wait=False)
    assert unwritable.wait_exit() != 0
    assert "not writable" in unwritable.log

    bad_limits = Mock(tmp_path, "--max-input-tokens", "10", "--max-total-tokens", "5", wait=False)
    assert bad_limits.wait_exit() == 1
    assert "`max_input_tokens`(10) must be < `max_total_tokens`(5)" in bad_limits.log

    bad_choice = Mock(tmp_path, "--quantize", "bogus", wait=False)
    assert bad_choice.wait_exit() == 2

    env = {k: v for k, v in os.environ.items() if k != "MODEL_ID"}
    no_model = subprocess.run(
        [sys.executable, *MOCK], capture_output=True, text=True, env=env, timeout=10
    )
    assert no_model.returncode == 2 and "--model-id" in no_model.stderr


def test_local_model_path_skips_download(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    mock = Mock(tmp_path, model=str(weights))
    assert "Downloading model" not in mock.log and "Shard ready" in mock.log
    assert mock.get_json("/info")["model_id"] == str(weights)
    mock.stop()


# ------------------------------------------------------------------------------------- info & tokens
def test_info_fields_and_defaults(server: Mock) -> None:
    info = server.get_json("/info")
    assert set(info) == {
        "model_id",
        "model_sha",
        "model_pipeline_tag",
        "max_concurrent_requests",
        "max_best_of",
        "max_stop_sequences",
        "max_input_tokens",
        "max_total_tokens",
        "validation_workers",
        "max_client_batch_size",
        "router",
        "version",
        "sha",
        "docker_label",
    }
    assert info["model_id"] == MODEL and info["model_pipeline_tag"] == "text-generation"
    assert (info["max_input_tokens"], info["max_total_tokens"]) == (4095, 4096)
    assert (info["max_concurrent_requests"], info["max_best_of"], info["max_stop_sequences"]) == (128, 2, 4)
    assert (info["validation_workers"], info["max_client_batch_size"]) == (2, 4)
    assert (info["router"], info["version"]) == ("text-generation-router", "3.3.7")
    assert len(info["model_sha"]) == 40 and info["docker_label"].startswith("sha-")
    models = server.get_json("/v1/models")
    assert models == {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": MODEL}],
    }


def test_token_fingerprint_logged_and_raw_token_never_exposed(server: Mock) -> None:
    server.generate("a prompt", max_new_tokens=2)
    assert f"HF_TOKEN received (sha256 prefix {SECRET_PREFIX})" in server.log
    state = server.get_json("/mock/state")
    assert state["hf_token_sha256_prefix"] == SECRET_PREFIX
    assert state["downloads"] == 1 and state["requests_in_flight"] == 0
    exposed = server.log + json.dumps(state) + json.dumps(server.get_json("/info"))
    exposed += server.request("GET", "/metrics")[2].decode()
    assert SECRET not in exposed


def test_env_vars_are_read_like_the_launcher(tmp_path: Path) -> None:
    mock = Mock(
        tmp_path,
        port_via_env=True,
        env={
            "MAX_INPUT_TOKENS": "100",
            "MAX_TOTAL_TOKENS": "200",
            "MAX_CONCURRENT_REQUESTS": "7",
            "HUGGING_FACE_HUB_TOKEN": SECRET,
        },
    )
    info = mock.get_json("/info")
    assert (info["max_input_tokens"], info["max_total_tokens"], info["max_concurrent_requests"]) == (
        100,
        200,
        7,
    )
    assert mock.get_json("/mock/state")["hf_token_sha256_prefix"] == SECRET_PREFIX
    long_input = " ".join(["word"] * 150)
    status, body = mock.post("/generate", {"inputs": long_input, "parameters": {"max_new_tokens": 60}})
    assert (status, body["error_type"]) == (422, "validation")
    assert body["error"] == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 200. "
        "Given: 150 `inputs` tokens and 60 `max_new_tokens`"
    )
    status, body = mock.post("/generate", {"inputs": long_input, "parameters": {"max_new_tokens": 10}})
    assert body["error"] == "Input validation error: `inputs` must have less than 100 tokens. Given: 150"
    mock.stop()


def test_tokenize_and_routing(server: Mock) -> None:
    status, tokens = server.post("/tokenize", {"inputs": "Hello, world"})
    assert status == 200
    assert [(t["text"], t["start"], t["stop"]) for t in tokens] == [
        ("Hello", 0, 5),
        (",", 5, 6),
        ("world", 7, 12),
    ]
    assert server.request("GET", "/nope")[0] == 404
    status, headers, _ = server.request("GET", "/generate")
    assert status == 405 and "POST" in headers["allow"]


# --------------------------------------------------------------------------------------------- generate
def test_greedy_generation_is_deterministic(server: Mock) -> None:
    first = server.generate("What is deep learning?", max_new_tokens=12)
    second = server.generate("What is deep learning?", max_new_tokens=12)
    other = server.generate("Tell me a story", max_new_tokens=12)
    assert first == second and first["generated_text"].strip()
    assert other["generated_text"] != first["generated_text"]
    assert "details" not in first
    shorter = server.generate("What is deep learning?", max_new_tokens=4, details=True)
    assert first["generated_text"].startswith(shorter["generated_text"])
    assert shorter["details"]["seed"] is None and shorter["details"]["finish_reason"] == "length"


def test_sampling_depends_on_the_seed(server: Mock) -> None:
    def sampled(seed: int | None) -> dict[str, Any]:
        return server.generate("Once upon a time", max_new_tokens=10, do_sample=True, seed=seed, details=True)

    a, b = sampled(42), sampled(42)
    assert a["generated_text"] == b["generated_text"] and a["details"]["seed"] == 42
    assert len({sampled(seed)["generated_text"] for seed in range(1, 6)}) > 1
    random_run = sampled(None)
    chosen = random_run["details"]["seed"]
    assert isinstance(chosen, int)
    assert sampled(chosen)["generated_text"] == random_run["generated_text"]


def test_details_shape_and_headers(server: Mock) -> None:
    status, headers, data = server.request(
        "POST",
        "/generate",
        {
            "inputs": "Explain attention layers",
            "parameters": {
                "max_new_tokens": 5,
                "details": True,
                "decoder_input_details": True,
                "top_n_tokens": 3,
            },
        },
    )
    assert status == 200
    body = json.loads(data)
    details = body["details"]
    assert set(details) == {"finish_reason", "generated_tokens", "seed", "prefill", "tokens", "top_tokens"}
    assert details["generated_tokens"] == len(details["tokens"]) == 5
    assert [p["text"].strip() for p in details["prefill"]] == ["Explain", "attention", "layers"]
    assert details["prefill"][0]["logprob"] is None and details["prefill"][1]["logprob"] < 0
    for token in details["tokens"]:
        assert set(token) == {"id", "text", "logprob", "special"} and token["logprob"] <= 0
    assert "".join(t["text"] for t in details["tokens"]) == body["generated_text"]
    assert all(
        len(tops) == 3 and tops[0] == tok
        for tops, tok in zip(details["top_tokens"], details["tokens"], strict=True)
    )
    for name in (
        "x-compute-type",
        "x-compute-time",
        "x-compute-characters",
        "x-total-time",
        "x-validation-time",
        "x-queue-time",
        "x-inference-time",
        "x-time-per-token",
    ):
        assert name in headers
    assert (headers["x-prompt-tokens"], headers["x-generated-tokens"]) == ("3", "5")
    assert headers["x-compute-characters"] == str(len("Explain attention layers"))
    plain = server.generate("Explain attention layers", max_new_tokens=5, details=True)["details"]
    assert plain["prefill"] == [] and "top_tokens" not in plain and "best_of_sequences" not in plain


def test_best_of_returns_other_sequences(server: Mock) -> None:
    body = server.generate("pick the best", max_new_tokens=4, best_of=2, do_sample=True, details=True)
    assert len(body["details"]["best_of_sequences"]) == 1
    assert set(body["details"]["best_of_sequences"][0]) >= {
        "generated_text",
        "finish_reason",
        "seed",
        "tokens",
    }


def test_stop_sequences_end_generation(server: Mock) -> None:
    full = server.generate("Stop me early please", max_new_tokens=30, details=True)
    words = [t["text"] for t in full["details"]["tokens"]]
    stop = next(w for w in words[2:] if w.startswith(" ")).strip()
    first_hit = next(i for i in range(len(words)) if "".join(words[: i + 1]).endswith(stop))
    stopped = server.generate("Stop me early please", max_new_tokens=30, stop=[stop], details=True)
    assert stopped["details"]["finish_reason"] == "stop_sequence"
    assert stopped["generated_text"].endswith(stop)
    assert stopped["details"]["generated_tokens"] == first_hit + 1


def test_generation_can_end_with_eos(server: Mock) -> None:
    body = server.generate("A short one", max_new_tokens=500, details=True)
    assert body["details"]["finish_reason"] == "eos_token"
    last = body["details"]["tokens"][-1]
    assert last["special"] is True and last["text"] == "</s>" and "</s>" not in body["generated_text"]


def test_return_full_text_and_compat_route(server: Mock) -> None:
    prompt = "Complete this"
    plain = server.generate(prompt, max_new_tokens=3)["generated_text"]
    full = server.generate(prompt, max_new_tokens=3, return_full_text=True)["generated_text"]
    assert full == prompt + plain
    status, compat = server.post("/", {"inputs": prompt, "parameters": {"max_new_tokens": 3}})
    assert status == 200 and compat == [{"generated_text": prompt + plain}]
    status, headers, raw = server.request(
        "POST", "/", {"inputs": prompt, "stream": True, "parameters": {"max_new_tokens": 3}}
    )
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert json.loads(sse_blocks(raw)[-1])["generated_text"] == prompt + plain


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("inputs", "params", "message"),
    [
        ("", {}, "`inputs` cannot be empty"),
        ("hi", {"temperature": 0}, "`temperature` must be strictly positive"),
        ("hi", {"max_new_tokens": 0}, "`max_new_tokens` must be strictly positive"),
        ("hi", {"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ("hi", {"best_of": 3, "do_sample": True}, "`best_of` must be > 0 and <= 2. Given: 3"),
        ("hi", {"best_of": 2}, "you must use sampling when `best_of` is > 1"),
        ("hi", {"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
        ("hi", {"top_n_tokens": 6}, "`top_n_tokens` must be >= 0 and <= 5. Given: 6"),
        (
            "hi",
            {"max_new_tokens": 4096},
            "`inputs` tokens + `max_new_tokens` must be <= 4096. Given: 1 `inputs` "
            "tokens and 4096 `max_new_tokens`",
        ),
    ],
)
def test_validation_errors_match_tgi(server: Mock, inputs: str, params: dict[str, Any], message: str) -> None:
    status, body = server.post("/generate", {"inputs": inputs, "parameters": params})
    assert status == 422
    assert body == {"error": f"Input validation error: {message}", "error_type": "validation"}


def test_body_rejections_like_axum(server: Mock) -> None:
    status, headers, body = server.request(
        "POST", "/generate", raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert body.startswith(b"Failed to parse the request body as JSON: ")
    status, _, body = server.request("POST", "/generate", {"parameters": {}})
    assert status == 422 and b"missing field `inputs`" in body
    status, _, body = server.request(
        "POST", "/generate", {"inputs": "x", "parameters": {"temperature": "hot"}}
    )
    assert status == 422 and b'parameters.temperature: invalid type: string "hot", expected f32' in body
    status, _, body = server.request("POST", "/generate", raw=b'{"inputs":"x"}', headers={})
    assert status == 415 and body == b"Expected request with `Content-Type: application/json`"


def test_magic_string_fails_with_424(server: Mock) -> None:
    status, body = server.post("/generate", {"inputs": "please __tgi_mock_fail__ now"})
    assert status == 424 and body["error_type"] == "generation"
    assert body["error"].startswith("Request failed during generation: ")
    status, _, raw = server.request("POST", "/generate_stream", {"inputs": "__tgi_mock_fail__"})
    assert status == 200
    assert [json.loads(e)["error_type"] for e in sse_blocks(raw)] == ["generation"]


def test_keep_alive_survives_errors(server: Mock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for body, expected in (({"inputs": ""}, 422), ({"inputs": "again"}, 200), ({"inputs": "x"}, 200)):
            conn.request("POST", "/generate", json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == expected
            assert len(response.read()) == int(response.getheader("content-length") or -1)
    finally:
        conn.close()


def test_overload_429_and_sigterm_during_stream(tmp_path: Path) -> None:
    mock = Mock(tmp_path, "--max-concurrent-requests", "1", env={"TGI_MOCK_TOKEN_DELAY": "0.1"})
    first_event, events = threading.Event(), []

    def hold() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=10)
        conn.request(
            "POST",
            "/generate_stream",
            json.dumps({"inputs": "hold", "parameters": {"max_new_tokens": 6}}),
            {"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        while line := response.readline():
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
                first_event.set()
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert first_event.wait(5)
    assert mock.post("/generate", {"inputs": "hi"}) == (
        429,
        {"error": "Model is overloaded", "error_type": "overloaded"},
    )
    status, _, raw = mock.request("POST", "/generate_stream", {"inputs": "hi"})
    assert status == 200 and [json.loads(e) for e in sse_blocks(raw)] == [
        {"error": "Model is overloaded", "error_type": "overloaded"}
    ]
    holder.join(5)
    assert len(events) == 6 and events[-1]["generated_text"]
    assert mock.post("/generate", {"inputs": "hi", "parameters": {"max_new_tokens": 1}})[0] == 200
    assert sample(mock.metrics(), "tgi_request_failure", err="overloaded") == 2

    threading.Thread(target=hold, daemon=True).start()  # 6 x 0.1 s; SIGTERM must not wait for it
    time.sleep(0.25)
    rc, elapsed = mock.stop()
    assert rc == 0 and elapsed < 2


def test_api_key_protects_generation_routes(tmp_path: Path) -> None:
    key = "sk-mock-KEY-4242"
    mock = Mock(tmp_path, env={"API_KEY": key})
    for path, body in (
        ("/generate", {"inputs": "x"}),
        ("/", {"inputs": "x"}),
        ("/generate_stream", {"inputs": "x"}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
        ("/v1/completions", {"prompt": "x"}),
    ):
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            status, resp_headers, data = mock.request("POST", path, body, headers=headers)
            assert (status, data) == (401, b"") and resp_headers["content-length"] == "0"
        assert mock.request("POST", path, body, headers={"Authorization": f"bearer {key}"})[0] == 200
    for path in ("/health", "/info", "/metrics", "/v1/models", "/", "/ping"):
        assert mock.request("GET", path)[0] == 200
    state = mock.get_json("/mock/state")
    assert state["args"]["api_key_set"] is True
    assert key not in json.dumps(state) and key not in mock.log
    mock.stop()


# ------------------------------------------------------------------------------------------ streaming
def test_generate_stream_sse_framing(server: Mock) -> None:
    payload = {"inputs": "Stream this please", "parameters": {"max_new_tokens": 6, "details": True}}
    status, headers, raw = server.request("POST", "/generate_stream", payload)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert headers["x-accel-buffering"] == "no" and "x-compute-type" in headers
    assert b"[DONE]" not in raw
    events = [json.loads(e) for e in sse_blocks(raw)]
    assert [e["index"] for e in events] == [1, 2, 3, 4, 5, 6]
    for event in events[:-1]:
        assert event["generated_text"] is None and event["details"] is None and "top_tokens" not in event
        assert set(event["token"]) == {"id", "text", "logprob", "special"}
    last = events[-1]
    assert last["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert last["details"] == {
        "finish_reason": "length",
        "generated_tokens": 6,
        "seed": None,
        "input_length": 3,
    }
    assert last["generated_text"] == server.generate("Stream this please", max_new_tokens=6)["generated_text"]


def test_generate_stream_validation_errors_are_in_band(server: Mock) -> None:
    status, _, raw = server.request(
        "POST", "/generate_stream", {"inputs": "x", "parameters": {"best_of": 2, "do_sample": True}}
    )
    assert status == 200
    assert [json.loads(e) for e in sse_blocks(raw)] == [
        {
            "error": "Input validation error: `best_of` != 1 is not supported when streaming tokens",
            "error_type": "validation",
        }
    ]


# --------------------------------------------------------------------------------------- OpenAI routes
CHAT = {
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is TGI?"}],
    "max_tokens": 5,
    "temperature": 0,
}


def test_chat_completion(server: Mock) -> None:
    status, body = server.post("/v1/chat/completions", CHAT)
    assert status == 200
    assert set(body) == {"object", "id", "created", "model", "system_fingerprint", "choices", "usage"}
    assert body["object"] == "chat.completion" and body["model"] == MODEL
    assert body["system_fingerprint"].startswith("3.3.7-")
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["logprobs"] is None and choice["finish_reason"] == "length"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    usage = body["usage"]
    assert usage["completion_tokens"] == 5 and usage["prompt_tokens"] > 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5
    assert server.post("/v1/chat/completions", CHAT)[1]["choices"] == body["choices"]
    status, err = server.post("/v1/chat/completions", {**CHAT, "top_p": 1.0})
    assert (status, err["error"]) == (422, "Input validation error: `top_p` must be > 0.0 and < 1.0")


def test_chat_completion_stream(server: Mock) -> None:
    content = server.post("/v1/chat/completions", CHAT)[1]["choices"][0]["message"]["content"]
    status, headers, raw = server.request(
        "POST", "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert status == 200 and headers["content-type"] == "text/event-stream"
    blocks = sse_blocks(raw)
    assert blocks[-1] == "[DONE]" and "[DONE]" not in blocks[:-1]
    chunks = [json.loads(b) for b in blocks[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    usage_chunk, token_chunks = chunks[-1], chunks[:-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 5
    assert [c["choices"][0]["finish_reason"] for c in token_chunks] == [None] * 4 + ["length"]
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in token_chunks)
    assert "".join(c["choices"][0]["delta"]["content"] for c in token_chunks) == content


def test_completions(server: Mock) -> None:
    status, body = server.post(
        "/v1/completions", {"prompt": ["one", "two"], "max_tokens": 3, "temperature": 0}
    )
    assert status == 200 and body["object"] == "text_completion"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert all(c["finish_reason"] == "length" and c["text"] for c in body["choices"])
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}
    status, err = server.post("/v1/completions", {"prompt": ["p"] * 5})
    assert status == 422 and err["error_type"] == "batch size exceeded"
    status, _, raw = server.request(
        "POST", "/v1/completions", {"prompt": "one", "max_tokens": 3, "temperature": 0, "stream": True}
    )
    blocks = sse_blocks(raw)
    assert blocks[-1] == "[DONE]"
    chunks = [json.loads(b) for b in blocks[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == body["choices"][0]["text"]
    assert chunks[-1]["usage"]["completion_tokens"] == 3 and "usage" not in chunks[0]


# --------------------------------------------------------------------------------------------- metrics
def test_metrics_parse_and_count(server: Mock) -> None:
    before = server.metrics()
    assert before["tgi_request_count"].type == "counter"
    assert before["tgi_request_duration"].type == "histogram"
    assert before["tgi_queue_size"].type == "gauge"
    for name in (
        "tgi_request_validation_duration",
        "tgi_request_queue_duration",
        "tgi_request_inference_duration",
        "tgi_request_mean_time_per_token_duration",
        "tgi_request_input_length",
        "tgi_request_generated_tokens",
        "tgi_request_max_new_tokens",
        "tgi_batch_current_size",
        "tgi_batch_current_max_tokens",
        "tgi_batch_max_total_tokens",
    ):
        assert name in before, name
    server.generate("count me", max_new_tokens=4)
    server.post("/generate", {"inputs": ""})
    after = server.metrics()
    assert sample(after, "tgi_request_count") == sample(before, "tgi_request_count") + 2
    assert sample(after, "tgi_request_success") == sample(before, "tgi_request_success") + 1
    assert (
        sample(after, "tgi_request_failure", err="validation")
        == sample(before, "tgi_request_failure", err="validation") + 1
    )
    assert after["tgi_request_failure"].type == "counter"
    assert sample(after, "tgi_request_duration_count") == sample(before, "tgi_request_duration_count") + 1
    generated = after["tgi_request_generated_tokens"].samples
    assert any(s.name.endswith("_bucket") and s.labels["le"] == "+Inf" for s in generated)
    assert (
        sample(after, "tgi_request_generated_tokens_sum")
        >= sample(before, "tgi_request_generated_tokens_sum") + 4
    )
    assert sample(after, "tgi_batch_inference_count", method="decode") > 0
