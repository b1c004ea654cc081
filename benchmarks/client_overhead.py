#!/usr/bin/env python3
"""Overhead of `tgi_nix.ops.client.TGIClient` over raw httpx, against the mock TGI on loopback.

Both sides use the same `httpx.Client` settings and send the same `/generate` payload; the raw side
decodes the JSON (`response.json()`), the client also validates it into pydantic models and runs its
retry/error logic. Requests are interleaved one by one (alternating which side goes first) so that
drift in the machine's load hits both sides alike. Prints requests/s, p50/p99 latency and the overhead
(goal: <= 5 %), the client's own per-call cost without network, then SSE token throughput through
`generate_stream` vs raw httpx-sse. Prints figures only; no assertions.

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

import httpx
from httpx_sse import EventSource

from tgi_nix.ops.client import DEFAULT_TIMEOUT, TGIClient

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
        f"{name:<10} {rate:>9.0f} req/s   p50 {percentile(latencies, 0.5) * 1000:7.3f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:7.3f} ms   (n={len(latencies)})"
    )


def bench_generate(url: str, n: int, warmup: int) -> None:
    payload = {"inputs": PROMPT, "parameters": PARAMS}
    raw_http = httpx.Client(base_url=url, timeout=DEFAULT_TIMEOUT)
    tgi = TGIClient(url, retries=2)

    def raw() -> object:
        response = raw_http.post("/generate", json=payload)
        response.raise_for_status()
        return response.json()

    def client() -> object:
        return tgi.generate(PROMPT, max_new_tokens=16, do_sample=False, details=True)

    if tgi.generate(PROMPT, **PARAMS).model_dump(exclude_unset=True) != raw():  # type: ignore[arg-type]
        raise SystemExit("the client and raw httpx got different answers")
    for _ in range(warmup):
        raw()
        client()
    raw_lat: list[float] = []
    client_lat: list[float] = []
    # Interleave request by request, alternating which side goes first: blocks of requests per side let
    # load from other processes on the machine land on one side only.
    for i in range(n):
        sides = [(raw, raw_lat), (client, client_lat)]
        for call, into in sides if i % 2 == 0 else sides[::-1]:
            timed(call, 1, into)
    raw_http.close()
    tgi.close()
    print(f"/generate, max_new_tokens=16, details=true; {n} interleaved pairs after {warmup} warm-up pairs")
    print(summary("raw httpx", raw_lat))
    print(summary("TGIClient", client_lat))
    mean_overhead = (statistics.fmean(client_lat) / statistics.fmean(raw_lat) - 1) * 100
    p50_overhead = (percentile(client_lat, 0.5) / percentile(raw_lat, 0.5) - 1) * 100
    added_us = (statistics.fmean(client_lat) - statistics.fmean(raw_lat)) * 1e6
    print(
        f"overhead   mean {mean_overhead:+.1f} %   p50 {p50_overhead:+.1f} %   ({added_us:+.0f} us per request; "
        "goal <= 5 %)"
    )


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
    client_us = per_call(lambda: tgi.generate(PROMPT, max_new_tokens=16, do_sample=False, details=True))
    print(
        f"in-process, MockTransport (no network): raw httpx {raw_us:.0f} us/call, TGIClient {client_us:.0f} "
        f"us/call ({client_us - raw_us:+.0f} us: request building, retry loop, pydantic validation)"
    )


def bench_stream(url: str, streams: int, max_new_tokens: int) -> None:
    tgi = TGIClient(url)
    raw_http = httpx.Client(base_url=url, timeout=DEFAULT_TIMEOUT)
    prompts = [f"{PROMPT} #{i}" for i in range(streams)]

    def via_client() -> int:
        return sum(
            1 for prompt in prompts for _ in tgi.generate_stream(prompt, max_new_tokens=max_new_tokens)
        )

    def via_raw() -> int:
        tokens = 0
        for prompt in prompts:
            body = {"inputs": prompt, "parameters": {"max_new_tokens": max_new_tokens, "details": True}}
            with raw_http.stream("POST", "/generate_stream", json=body) as response:
                for sse in EventSource(response).iter_sse():
                    json.loads(sse.data)
                    tokens += 1
        return tokens

    print(f"/generate_stream, {streams} streams, max_new_tokens={max_new_tokens} (the mock stops at its EOS)")
    for name, run in (("raw sse", via_raw), ("TGIClient", via_client)):
        run()  # warm-up; the mock is deterministic, so each run streams the same tokens
        started = time.perf_counter()
        tokens = run()
        elapsed = time.perf_counter() - started
        print(f"{name:<10} {tokens / elapsed:>9.0f} tokens/s   ({tokens} tokens in {elapsed:.2f} s)")
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
