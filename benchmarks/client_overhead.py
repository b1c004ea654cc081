#!/usr/bin/env python3
"""Overhead of `tgi_nix.ops.client.TGIClient` over raw httpx, against the mock TGI on loopback.

Like for like: every side uses the same `httpx.Client` settings and sends the same payload (`details`
true on every side, for `/generate` and `/generate_stream`). Three sides: raw httpx decoding the JSON
(`.json()`), raw httpx parsing into the client's own pydantic models (the same parse the client does),
and `TGIClient` (request building, retry/error logic, the same models). The client's own cost is
"TGIClient vs raw + model"; "vs raw .json()" adds the price of typed answers. Rounds are interleaved
request by request (streams stream by stream), rotating which side goes first, so that load from other
processes hits every side alike. Prints requests/s, p50/p99 latency, tokens/s and the overheads (goal:
<= 5 %), plus the client's per-call cost without network. Prints figures only; no assertions.

Usage: python benchmarks/client_overhead.py [-n 2000] [--warmup 200] [--streams 200]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import EventSource

from tgi_nix.ops.client import DEFAULT_TIMEOUT, TGIClient
from tgi_nix.ops.client_models import GenerateResponse, StreamResponse

PROMPT = "What is deep learning?"
PARAMS = {"max_new_tokens": 16, "do_sample": False, "details": True}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mock_server() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGI_MOCK_")}
    env["TGI_MOCK_DOWNLOAD_RATE"] = "0"  # the first start downloads the mock's weights at disk speed
    with tempfile.TemporaryDirectory() as cache:
        cmd = [
            sys.executable,
            "-m",
            "tgi_nix.mock",
            "--model-id",
            "bench/model",
            "--hostname",
            "127.0.0.1",
            "--port",
            str(port),
            "--prometheus-port",
            "0",
            "--huggingface-hub-cache",
            cache,
            "--download-delay",
            "0",
            "--load-delay",
            "0",
            "--max-concurrent-requests",
            "1024",
        ]
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the mock server did not become ready")
                time.sleep(0.05)
            yield url
        finally:
            process.terminate()
            process.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: Callable[[], object], count: int, into: list[float]) -> None:
    for _ in range(count):
        started = time.perf_counter()
        call()
        into.append(time.perf_counter() - started)


def summary(name: str, latencies: list[float]) -> str:
    rate = len(latencies) / sum(latencies)
    return (
        f"{name:<12} {rate:>9.0f} req/s   p50 {percentile(latencies, 0.5) * 1000:7.3f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:7.3f} ms   (n={len(latencies)})"
    )


def rotated(sides: list[tuple[str, Callable[[], object]]], i: int) -> list[tuple[str, Callable[[], object]]]:
    """Round i's order: every side goes first, second, ... equally often."""
    k = i % len(sides)
    return sides[k:] + sides[:k]


def overheads(name: str, base: str, lat: dict[str, list[float]]) -> str:
    mean = (statistics.fmean(lat[name]) / statistics.fmean(lat[base]) - 1) * 100
    p50 = (percentile(lat[name], 0.5) / percentile(lat[base], 0.5) - 1) * 100
    added_us = (statistics.fmean(lat[name]) - statistics.fmean(lat[base])) * 1e6
    return f"{name} vs {base}: mean {mean:+.1f} %   p50 {p50:+.1f} %   ({added_us:+.0f} us per request)"


def bench_generate(url: str, n: int, warmup: int) -> None:
    payload = {"inputs": PROMPT, "parameters": PARAMS}
    raw_http = httpx.Client(base_url=url, timeout=DEFAULT_TIMEOUT)
    tgi = TGIClient(url, retries=2)

    def raw_json() -> object:
        response = raw_http.post("/generate", json=payload)
        response.raise_for_status()
        return response.json()

    def raw_model() -> object:
        response = raw_http.post("/generate", json=payload)
        response.raise_for_status()
        return GenerateResponse.model_validate_json(response.content)

    def client() -> object:
        return tgi.generate(PROMPT, **PARAMS)  # type: ignore[arg-type]

    answer = client()
    if answer != raw_model() or answer.model_dump(exclude_unset=True) != raw_json():  # type: ignore[attr-defined]
        raise SystemExit("the client and raw httpx got different answers")
    sides = [("raw .json()", raw_json), ("raw + model", raw_model), ("TGIClient", client)]
    for i in range(warmup):
        for _, call in rotated(sides, i):
            call()
    lat: dict[str, list[float]] = {name: [] for name, _ in sides}
    for i in range(n):
        for name, call in rotated(sides, i):
            timed(call, 1, lat[name])
    raw_http.close()
    tgi.close()
    print(f"/generate, max_new_tokens=16, details=true on every side; {n} interleaved rounds after {warmup} warm-up")
    for name, _ in sides:
        print(summary(name, lat[name]))
    print("overhead   " + overheads("TGIClient", "raw + model", lat) + "   (like for like; goal <= 5 %)")
    print("overhead   " + overheads("TGIClient", "raw .json()", lat) + "   (typed answers included)")


def bench_client_cpu(repeat: int = 5, number: int = 2000) -> None:
    """The client's own cost, without network or server: both sides on one canned MockTransport answer."""
    body = json.dumps(
        {
            "generated_text": " w" * 16,
            "details": {
                "finish_reason": "length",
                "generated_tokens": 16,
                "seed": None,
                "prefill": [],
                "tokens": [{"id": i, "text": " w", "logprob": -0.5, "special": False} for i in range(16)],
            },
        }
    ).encode()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"content-type": "application/json"})
    )
    raw_http = httpx.Client(base_url="http://tgi.bench", transport=transport, timeout=DEFAULT_TIMEOUT)
    tgi = TGIClient("http://tgi.bench", transport=transport)
    payload = {"inputs": PROMPT, "parameters": PARAMS}

    def per_call(call: Callable[[], object]) -> float:
        return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6

    raw_us = per_call(lambda: raw_http.post("/generate", json=payload).json())
    model_us = per_call(lambda: GenerateResponse.model_validate_json(raw_http.post("/generate", json=payload).content))
    client_us = per_call(lambda: tgi.generate(PROMPT, max_new_tokens=16, do_sample=False, details=True))
    print(
        f"in-process, MockTransport (no network), best of {repeat}: raw .json() {raw_us:.0f} us/call, "
        f"raw + model {model_us:.0f} us/call, TGIClient {client_us:.0f} us/call "
        f"({client_us - model_us:+.0f} us vs raw + model: request building and the retry loop)"
    )


def bench_stream(url: str, streams: int, max_new_tokens: int) -> None:
    tgi = TGIClient(url)
    raw_http = httpx.Client(base_url=url, timeout=DEFAULT_TIMEOUT)
    params = {"max_new_tokens": max_new_tokens, "details": True}

    def raw(prompt: str, parse: Callable[[Any], object]) -> int:
        tokens = 0
        with raw_http.stream("POST", "/generate_stream", json={"inputs": prompt, "parameters": params}) as response:
            for sse in EventSource(response).iter_sse():
                parse(json.loads(sse.data))
                tokens += 1
        return tokens

    def via_client(prompt: str) -> int:
        return sum(1 for _ in tgi.generate_stream(prompt, max_new_tokens=max_new_tokens, details=True))

    sides: list[tuple[str, Callable[[str], int]]] = [
        ("raw .json()", lambda p: raw(p, lambda data: data)),
        ("raw + model", lambda p: raw(p, StreamResponse.model_validate)),
        ("TGIClient", via_client),
    ]
    elapsed = {name: 0.0 for name, _ in sides}
    tokens = {name: 0 for name, _ in sides}
    for _, run in sides:
        run(f"{PROMPT} warm-up")
    for i in range(streams):
        k = i % len(sides)
        for name, run in sides[k:] + sides[:k]:
            started = time.perf_counter()
            tokens[name] += run(f"{PROMPT} #{i}")
            elapsed[name] += time.perf_counter() - started
    print(f"/generate_stream, {streams} interleaved rounds, max_new_tokens={max_new_tokens}, details=true on every side"
          " (the mock stops at its EOS)")
    for name, _ in sides:
        print(f"{name:<12} {tokens[name] / elapsed[name]:>9.0f} tokens/s   ({tokens[name]} tokens in {elapsed[name]:.2f} s)")
    for base in ("raw + model", "raw .json()"):
        rate = tokens["TGIClient"] / elapsed["TGIClient"] / (tokens[base] / elapsed[base])
        print(f"throughput TGIClient vs {base}: {(rate - 1) * 100:+.1f} %")
    tgi.close()
    raw_http.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000, help="requests per side (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per side (default 200)")
    parser.add_argument("--streams", type=int, default=200, help="streams per side (default 200)")
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="per stream (default 2048)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, httpx {httpx.__version__}, {Path(__file__).name}")
    with mock_server() as url:
        bench_generate(url, args.n, args.warmup)
        print()
        bench_client_cpu()
        print()
        bench_stream(url, args.streams, args.max_new_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
