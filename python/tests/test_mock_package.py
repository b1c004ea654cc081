"""The mock is copied into container images as a folder: it may import only the standard library and
itself (relatively), and it must run from the image's layout under another package name."""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tgi_nix.testing.vm import mockimage

from .conftest import REPO

MOCK_DIR = mockimage.MOCK_PACKAGE
SOURCES = sorted(MOCK_DIR.rglob("*.py"))


def foreign_imports(path: Path) -> list[str]:
    """Imports in `path` that are neither standard library nor relative within the mock package."""
    depth = len(path.relative_to(MOCK_DIR).parts) - 1  # 0 for files directly in mock/
    bad: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > depth + 1:  # climbs out of the mock package
                    bad.append(f"line {node.lineno}: from {'.' * node.level}{node.module or ''}")
                continue
            names = [node.module or ""]
        else:
            continue
        bad += [f"line {node.lineno}: {name}" for name in names
                if name.partition(".")[0] not in sys.stdlib_module_names | {"__future__"}]
    return bad


def test_sources_found() -> None:
    assert MOCK_DIR.name == "mock" and len(SOURCES) > 5
    assert {p.relative_to(MOCK_DIR).as_posix() for p in SOURCES} == set(mockimage.mock_sources())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(MOCK_DIR).as_posix())
def test_standard_library_only(path: Path) -> None:
    assert foreign_imports(path) == [], f"{path} imports outside the standard library and tgi_nix.mock"


def test_the_check_catches_foreign_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "MOCK_DIR", tmp_path)
    sample = tmp_path / "bad.py"
    sample.write_text("import json\nimport httpx\nfrom ..errors import X\nfrom .metrics import Metrics\n"
                      "from tgi_nix.mock import main\n")
    assert foreign_imports(sample) == ["line 2: httpx", "line 3: from ..errors", "line 5: tgi_nix.mock"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_runs_from_the_image_layout(tmp_path: Path) -> None:
    """As in both mock images: the folder under another name, `python3 -m` with only the stdlib (-S)."""
    package = mockimage.install_mock(tmp_path)
    assert package == tmp_path / mockimage.MOCK_ROOT.lstrip("/") / mockimage.MOCK_MODULE
    assert f"-m {mockimage.MOCK_MODULE} " in mockimage.LAUNCHER
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TGI_MOCK_", "HF_"))}
    env.update(PYTHONPATH=str(package.parent), HF_HOME=str(tmp_path / "hf"))
    cmd = [sys.executable, "-S", "-m", mockimage.MOCK_MODULE, "--model-id", "org/model", "--hostname", "127.0.0.1",
           "--port", str(port), "--prometheus-port", "0", "--download-delay", "0", "--load-delay", "0"]
    log = tmp_path / "mock.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=2) as response:
                    info = json.load(response)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        assert info["model_id"] == "org/model"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0, log.read_text()


def test_both_images_have_text_generation_server(tmp_path: Path) -> None:
    """`text-generation-server download-weights` runs from the Debian image's layout, and the Nix image
    installs the same command."""
    assert set(mockimage.COMMANDS) == {"text-generation-launcher", "text-generation-server"}
    nix_image = (REPO / "pkgs" / "mock-tgi-image" / "default.nix").read_text()
    assert 'writeShellScriptBin "text-generation-server"' in nix_image
    assert f"-m {mockimage.MOCK_MODULE}.server " in nix_image and f"-m {mockimage.MOCK_MODULE}.server " in mockimage.SERVER
    package = mockimage.install_mock(tmp_path)
    script = tmp_path / "text-generation-server"
    script.write_text(mockimage.SERVER.replace(mockimage.MOCK_ROOT, str(package.parent)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TGI_MOCK_", "HF_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), TGI_MOCK_MODEL_BYTES="4096", TGI_MOCK_DOWNLOAD_RATE="0")
    done = subprocess.run(["sh", str(script), "download-weights", "org/model", "--json-output"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hf" / "hub" / "models--org--model" / ".tgi-mock-complete").is_file()
