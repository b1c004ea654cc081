"""`tgi-nix init`: the wizard driven end to end through a pseudo-terminal (pexpect)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest

from tgi_nix.ops.init_wizard import build_spec_text, default_instance_name, next_free_port
from tgi_nix.spec.loader import load_spec

TGI_NIX = Path(sys.executable).with_name("tgi-nix")
# Raise on slow machines: TGI_NIX_PEXPECT_TIMEOUT=30 pytest tests/test_init.py
TIMEOUT = float(os.environ.get("TGI_NIX_PEXPECT_TIMEOUT", "10"))
DEEPSEEK = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"

Spawn = Callable[..., "pexpect.spawn[str]"]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start `tgi-nix init ARGS` in tmp_path on a pty; every child is closed afterwards."""
    if not TGI_NIX.exists():
        pytest.skip(f"{TGI_NIX} is not installed (pip install -e python)")
    children: list[pexpect.spawn[str]] = []

    def _spawn(*args: str, timeout: float = TIMEOUT) -> pexpect.spawn[str]:
        env = {**os.environ, "TERM": "dumb", "COLUMNS": "200"}
        child = pexpect.spawn(str(TGI_NIX), ["init", *args], cwd=str(tmp_path), env=env,
                              timeout=timeout, encoding="utf-8", dimensions=(40, 200))
        children.append(child)
        return child

    yield _spawn
    for child in children:
        child.close(force=True)


def answer(child: pexpect.spawn[str], prompt: str, reply: str) -> None:
    child.expect_exact(prompt)
    child.expect_exact(": ")
    child.sendline(reply)


def finish(child: pexpect.spawn[str]) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    output = str(child.before)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1), output


def test_full_run_writes_a_spec_that_loads(spawn: Spawn, tmp_path: Path) -> None:
    out = tmp_path / "spec.toml"
    child = spawn("-o", str(out))
    answer(child, "Hugging Face model id", DEEPSEEK)
    child.expect_exact("Instance name [deepseek-r1-distill-qwen-7b]")
    child.sendline("")
    answer(child, "Host port", "8123")
    answer(child, "GPUs", "0, 1")
    child.expect_exact("[/var/lib/huggingface-tgi/secrets.env]")
    child.sendline("")
    status, output = finish(child)
    assert status == 0, output
    assert "wrote" in output and "tgi-nix validate" in output
    spec = load_spec(out)
    inst = spec.instances["deepseek-r1-distill-qwen-7b"]
    assert (inst.model, inst.port, inst.gpus) == (DEEPSEEK, 8123, [0, 1])
    assert inst.environment_file == "/var/lib/huggingface-tgi/secrets.env"
    assert "chmod 600" in out.read_text()


def test_invalid_answers_are_asked_again_with_the_schema_message(spawn: Spawn, tmp_path: Path) -> None:
    out = tmp_path / "s.toml"
    child = spawn("-o", str(out))
    answer(child, "model id", "not a model")
    child.expect_exact("is not a Hugging Face model id")
    answer(child, "model id", "org/tiny")
    answer(child, "Instance name", "Bad_Name")
    child.expect_exact("is not allowed")
    answer(child, "Instance name", "tiny")
    answer(child, "Host port", "99999")
    child.expect_exact("less than or equal to 65535")
    answer(child, "Host port", "eighty")
    child.expect_exact("is not a port number")
    answer(child, "Host port", "8124")
    answer(child, "GPUs", "0,0")
    child.expect_exact("lists an index twice")
    answer(child, "GPUs", "one")
    child.expect_exact("write all, none, or GPU indices")
    answer(child, "GPUs", "all")
    answer(child, "Token file", "relative/secrets.env")
    child.expect_exact("must be an absolute path")
    answer(child, "Token file", "/nix/store/abc-secrets.env")
    child.expect_exact("is in the Nix store")
    answer(child, "Token file", "/run/secrets/tgi.env")
    status, output = finish(child)
    assert status == 0, output
    inst = load_spec(out).instances["tiny"]
    assert (inst.model, inst.port, inst.gpus, inst.environment_file) == ("org/tiny", 8124, "all", "/run/secrets/tgi.env")


def test_cpu_only_public_model(spawn: Spawn, tmp_path: Path) -> None:
    out = tmp_path / "cpu.toml"
    child = spawn("-o", str(out))
    answer(child, "model id", "HuggingFaceTB/SmolLM2-135M-Instruct")
    answer(child, "Instance name", "smol")
    answer(child, "Host port", "8125")
    answer(child, "GPUs", "none")
    answer(child, "Token file", "none")
    status, output = finish(child)
    assert status == 0, output
    text = out.read_text()
    assert "gpus" not in text and "environmentFile" not in text
    inst = load_spec(out).instances["smol"]
    assert inst.gpus is None and inst.environment_file is None


def test_default_port_is_the_next_free_one(spawn: Spawn, tmp_path: Path) -> None:
    out = tmp_path / "p.toml"
    with socket.socket() as blocker:
        try:
            blocker.bind(("127.0.0.1", 8080))
            blocker.listen()
        except OSError:
            pass  # already taken by something else: just as good
        expected = next_free_port()
        assert expected > 8080
        child = spawn("-o", str(out))
        answer(child, "model id", "org/m")
        answer(child, "Instance name", "m")
        child.expect_exact(f"Host port [{expected}]")
        child.sendline("")
        answer(child, "GPUs", "none")
        answer(child, "Token file", "none")
        status, output = finish(child)
    assert status == 0, output
    assert load_spec(out).instances["m"].port == expected


def test_refuses_to_overwrite_without_force(spawn: Spawn, tmp_path: Path) -> None:
    out = tmp_path / "spec.toml"
    out.write_text("keep me\n")
    status, output = finish(spawn("-o", str(out)))
    assert status == 2 and "already exists" in output and "--force" in output
    assert out.read_text() == "keep me\n"

    child = spawn("-o", str(out), "--force")
    answer(child, "model id", "org/m")
    answer(child, "Instance name", "m")
    answer(child, "Host port", "8126")
    answer(child, "GPUs", "none")
    answer(child, "Token file", "none")
    status, output = finish(child)
    assert status == 0, output
    assert load_spec(out).instances["m"].port == 8126


def test_default_output_is_spec_toml_in_the_working_directory(spawn: Spawn, tmp_path: Path) -> None:
    child = spawn()
    answer(child, "model id", "org/m")
    answer(child, "Instance name", "m")
    answer(child, "Host port", "8127")
    answer(child, "GPUs", "none")
    answer(child, "Token file", "none")
    status, output = finish(child)
    assert status == 0, output
    assert load_spec(tmp_path / "spec.toml").instances["m"].model == "org/m"


def test_end_of_input_aborts_and_writes_nothing(spawn: Spawn, tmp_path: Path) -> None:
    out = tmp_path / "spec.toml"
    child = spawn("-o", str(out))
    answer(child, "model id", "org/m")
    child.expect_exact("Instance name")
    child.sendeof()
    status, output = finish(child)
    assert status == 130 and "aborted" in output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (DEEPSEEK, "deepseek-r1-distill-qwen-7b"),
        ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "llama-4-scout-17b-16e-instruct"),
        ("org/7B_model.v2", "tgi-7b-model-v2"),
        ("org/" + "x" * 60, "x" * 40),
        ("/srv/models/My Model", "my-model"),
    ],
)
def test_default_instance_name(model: str, name: str) -> None:
    assert default_instance_name(model) == name


def test_spec_text_round_trips_unusual_paths() -> None:
    instance = {"model": "org/m", "port": 8080, "environmentFile": '/srv/a "quoted" dir\\x/tok.env'}
    text, spec = build_spec_text("m", instance)
    assert spec.instances["m"].environment_file == instance["environmentFile"]
    assert text.count("[instances.m]") == 1
    # DEL must be escaped in TOML; spec_toml does, so even this path survives the write and read-back.
    _, odd = build_spec_text("m", {**instance, "environmentFile": "/srv/del\x7f.env"})
    assert odd.instances["m"].environment_file == "/srv/del\x7f.env"
