"""The mock's download step, as TGI's: `text-generation-server download-weights` (the mock's server.py)
and the launcher mock's own download, into a real hub cache layout in a temporary folder, run as real
subprocesses; the "Hub" is HF_ENDPOINT pointing at a listening socket, or at a port nothing listens on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tgi_nix.mock.hub import HubCache, expected_bytes, weight_plan
from tgi_nix.ops.doctor import _tree_bytes

from .test_mock_server import Mock, free_port

MODEL = "acme/weights"
SERVER = (sys.executable, "-m", "tgi_nix.mock.server", "download-weights")


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TGI_MOCK_", "HF_", "HUGGING"))}
    env.update(HF_HOME=str(tmp / "hf"), TGI_MOCK_MODEL_BYTES="400000", TGI_MOCK_DOWNLOAD_RATE="0")
    env.update(extra)
    return env


def download(tmp: Path, *args: str, model: str = MODEL, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVER, model, *args], capture_output=True, text=True, timeout=30,
                          env=base_env(tmp, **env), check=False)


def cache(tmp: Path, model: str = MODEL) -> HubCache:
    return HubCache(tmp / "hf" / "hub", model, None)


def files_on_disk(tmp: Path) -> dict[str, int]:
    root = tmp / "hf" / "hub"
    return {p.relative_to(root).as_posix(): p.lstat().st_size for p in sorted(root.rglob("*")) if not p.is_dir()}


def bytes_arrived(tmp: Path, model: str = MODEL) -> int:
    """Weight bytes on disk, finished or not (what a progress report would count)."""
    model_cache = cache(tmp, model)
    blobs = model_cache.repo / "blobs"
    config = model_cache.blob("config.json").name
    return sum(p.stat().st_size for p in blobs.iterdir() if p.name != config) if blobs.is_dir() else 0


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


@contextmanager
def hub() -> Iterator[tuple[str, socket.socket]]:
    """A "Hub" that accepts TCP connections (the mock only checks that one opens)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5)
        yield f"http://127.0.0.1:{server.getsockname()[1]}", server


def assert_complete(tmp: Path, total: int, model: str = MODEL) -> None:
    model_cache = cache(tmp, model)
    assert model_cache.complete()
    assert (model_cache.repo / "refs" / "main").read_text() == model_cache.sha
    for name, size in weight_plan(total):
        link = model_cache.snapshot / name
        assert link.is_symlink() and str(link.readlink()).startswith("../../blobs/")
        assert link.read_bytes() == expected_bytes(name, 0, size)
    assert not list(model_cache.repo.rglob("*.incomplete"))


# ------------------------------------------------------------------------------------ download-weights
def test_writes_the_hub_layout_in_several_weight_files(tmp_path: Path) -> None:
    done = download(tmp_path, "--revision", "main", "--extension", ".safetensors", "--logger-level", "INFO",
                    "--trust-remote-code", "--merge-lora")
    assert done.returncode == 0, done.stderr
    assert_complete(tmp_path, 400000)
    assert [n for n, _ in weight_plan(400000)] == [f"model-0000{k}-of-00004.safetensors" for k in range(1, 5)]
    assert sum(size for _, size in weight_plan(400000)) == 400000
    lines = done.stdout.splitlines()
    assert "Download file: model-00001-of-00004.safetensors" in lines
    assert any(line.startswith("Downloaded ") and "model-00004-of-00004.safetensors in 0:00:0" in line
               for line in lines)
    assert "Download: [4/4] -- ETA: 0" in lines and "Fetched 400000 bytes from the Hub in this run." in lines
    assert done.stderr == ""
    # doctor measures the cache by its blobs, as it measures a real one.
    assert 400000 < _tree_bytes(cache(tmp_path).repo) < 400000 + 4096  # each file once, not again via snapshots/
    # The launcher mock reads the same cache: offline, it serves without downloading.
    mock = Mock(tmp_path, model=MODEL, env={"HF_HUB_OFFLINE": "1", "TGI_MOCK_MODEL_BYTES": "400000"})
    assert "found in cache" in mock.log and "Download file" not in mock.log
    assert mock.get_json("/mock/state")["downloads"] == 1
    assert mock.stop()[0] == 0


def test_json_output_is_one_loguru_record_per_line(tmp_path: Path) -> None:
    done = download(tmp_path, "--json-output")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(r["record"]["level"]["name"] == "INFO" and r["text"] == r["record"]["message"] + "\n"
               for r in records)
    assert "Download file: model-00002-of-00004.safetensors" in [r["record"]["message"] for r in records]


def test_the_rate_holds(tmp_path: Path) -> None:
    started = time.monotonic()
    done = download(tmp_path, TGI_MOCK_DOWNLOAD_RATE="400000")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 0.9  # 400000 bytes at 400000 bytes/s


def test_a_killed_download_resumes_without_fetching_finished_files(tmp_path: Path) -> None:
    total = 400000
    proc = subprocess.Popen([*SERVER, MODEL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=base_env(tmp_path, TGI_MOCK_DOWNLOAD_RATE="200000"))
    deadline = time.monotonic() + 10
    first = weight_plan(total)[0][1]
    while bytes_arrived(tmp_path) < first + 20000:  # the first file done, the second under way
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == -signal.SIGTERM
    before = bytes_arrived(tmp_path)
    partial = list(cache(tmp_path).repo.rglob("*.incomplete"))
    second = weight_plan(total)[1][1]
    assert len(partial) == 1 and 0 < (resumed_at := partial[0].stat().st_size) < second
    assert not cache(tmp_path).complete()

    again = download(tmp_path)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert "File model-00001-of-00004.safetensors already present in cache." in lines
    assert any(line.startswith(f"Resuming download of model-00002-of-00004.safetensors from byte {resumed_at} "
                               f"of {second} (") for line in lines)
    assert f"Fetched {total - before} bytes from the Hub in this run." in lines
    assert_complete(tmp_path, total)


def test_offline_without_the_model_fails_and_writes_nothing(tmp_path: Path) -> None:
    done = download(tmp_path, HF_HUB_OFFLINE="1")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("huggingface_hub.errors.LocalEntryNotFoundError: Model acme/weights (revision main)")
    assert "is not in the cache" in line and "and outgoing traffic has been disabled (HF_HUB_OFFLINE=1)" in line
    assert not (tmp_path / "hf" / "hub" / "models--acme--weights").exists()


def test_offline_with_the_model_is_done_at_once_and_never_asks_the_hub(tmp_path: Path) -> None:
    assert download(tmp_path).returncode == 0
    before = files_on_disk(tmp_path)
    done = download(tmp_path, HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Files are already present on the host. Skipping download."]
    assert files_on_disk(tmp_path) == before


def test_an_unreachable_hub_fails_even_with_the_model_cached(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    done = download(tmp_path, HF_ENDPOINT=endpoint)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"requests.exceptions.ConnectionError: Cannot reach the Hub at {endpoint} (")
    assert not (tmp_path / "hf" / "hub" / "models--acme--weights").exists()
    # TGI lists the repository on the Hub even when the files are cached (TGI #1754).
    assert download(tmp_path).returncode == 0
    assert download(tmp_path, HF_ENDPOINT=endpoint).returncode == 1
    with hub() as (url, server):
        done = download(tmp_path, HF_ENDPOINT=url.removeprefix("http://"))  # host:port works too
        server.accept()[0].close()
    assert done.returncode == 0 and "Files are already present" in done.stdout


def test_a_gated_model_needs_a_token(tmp_path: Path) -> None:
    gated = "acme/other, acme/weights"
    for token in ({}, {"HF_TOKEN": ""}):
        done = download(tmp_path, TGI_MOCK_GATED=gated, **token)
        assert done.returncode == 1
        (line,) = done.stderr.splitlines()
        assert line.startswith("huggingface_hub.errors.GatedRepoError: 401 Client Error.")
        assert "Access to model acme/weights is restricted" in line
        assert "https://huggingface.co/acme/weights/resolve/main/config.json" in line
    assert download(tmp_path, TGI_MOCK_GATED=gated, HUGGING_FACE_HUB_TOKEN="hf_x").returncode == 0
    assert download(tmp_path, "--revision", "v2", model="acme/public", TGI_MOCK_GATED=gated).returncode == 0


def test_a_stalled_download_hangs_until_terminated(tmp_path: Path) -> None:
    proc = subprocess.Popen([*SERVER, MODEL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=base_env(tmp_path, TGI_MOCK_DOWNLOAD_STALL_AFTER="150000"))
    deadline = time.monotonic() + 10
    while bytes_arrived(tmp_path) < 150000:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    time.sleep(1.0)
    assert proc.poll() is None and bytes_arrived(tmp_path) == 150000
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(5) == -signal.SIGTERM
    assert not cache(tmp_path).complete()


def test_bad_arguments_exit_two(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    for args in ([], ["download-weights"], ["serve", MODEL], ["download-weights", MODEL, "--bogus"]):
        done = subprocess.run([sys.executable, "-m", "tgi_nix.mock.server", *args], capture_output=True,
                              text=True, env=env, timeout=30, check=False)
        assert done.returncode == 2, args
    bad = download(tmp_path, TGI_MOCK_MODEL_BYTES="lots")
    assert bad.returncode == 1 and "TGI_MOCK_MODEL_BYTES='lots' is not a whole number" in bad.stderr


# -------------------------------------------------------------------------------------- launcher mock
def test_the_launcher_downloads_with_the_same_code(tmp_path: Path) -> None:
    mock = Mock(tmp_path, model=MODEL, env={"TGI_MOCK_MODEL_BYTES": "400000"})
    assert "Download file: model-00004-of-00004.safetensors" in mock.log
    assert mock.stop()[0] == 0
    assert_complete(tmp_path, 400000)
    done = download(tmp_path, HF_HUB_OFFLINE="1")
    assert done.returncode == 0 and "Files are already present" in done.stdout


def test_the_launcher_offline_without_the_model_fails(tmp_path: Path) -> None:
    mock = Mock(tmp_path, model=MODEL, env={"HF_HUB_OFFLINE": "1"}, wait=False)
    assert mock.wait_exit() == 1
    assert "Error: DownloadError(" in mock.log and "outgoing traffic has been disabled" in mock.log


def test_the_launcher_asks_the_hub_at_every_start_unless_offline(tmp_path: Path) -> None:
    assert download(tmp_path, TGI_MOCK_MODEL_BYTES="65536").returncode == 0
    endpoint = f"http://127.0.0.1:{closed_port()}"
    down = Mock(tmp_path, model=MODEL, env={"HF_ENDPOINT": endpoint}, wait=False)
    assert down.wait_exit() == 1
    assert f"Cannot reach the Hub at {endpoint}" in down.log and "Error: DownloadError(" in down.log
    offline = Mock(tmp_path, model=MODEL, env={"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "1"})
    assert offline.get_json("/mock/state")["cached_at_start"] is True
    assert offline.stop()[0] == 0
    with hub() as (url, server):
        online = Mock(tmp_path, model=MODEL, env={"HF_ENDPOINT": url})
        server.accept()[0].close()
        assert online.stop()[0] == 0


def test_the_launcher_refuses_a_gated_model_without_a_token(tmp_path: Path) -> None:
    mock = Mock(tmp_path, model=MODEL, env={"TGI_MOCK_GATED": MODEL}, wait=False)
    assert mock.wait_exit() == 1
    assert "Access to model acme/weights is restricted" in mock.log


def test_sigterm_ends_a_stalled_launcher_download(tmp_path: Path) -> None:
    mock = Mock(tmp_path, model=MODEL, env={"TGI_MOCK_DOWNLOAD_STALL_AFTER": "1000"}, wait=False)
    deadline = time.monotonic() + 10
    while bytes_arrived(tmp_path) < 1000:
        assert time.monotonic() < deadline and mock.proc.poll() is None
        time.sleep(0.02)
    rc, elapsed = mock.stop()
    assert rc == 0 and elapsed < 2


@pytest.mark.parametrize(("value", "shown"), [(None, "On"), ("off", "Off"), ("no-stack", "NoStack")])
def test_the_args_line_shows_usage_stats_as_tgi_logs_it(tmp_path: Path, value: str | None, shown: str) -> None:
    mock = Mock(tmp_path, *([] if value is None else ["--usage-stats", value]))
    args_line = next(line for line in mock.log.splitlines() if "Args {" in line)
    assert f"usage_stats: {shown}," in args_line
    assert mock.stop()[0] == 0
