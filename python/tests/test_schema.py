"""Every schema rule, valid and invalid, with the message a user sees."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings

from tgi_nix.errors import SpecError
from tgi_nix.nix.bridge import check
from tgi_nix.spec.loader import checked_spec, load_spec, parse_spec, spec_toml
from tgi_nix.spec.schema import DEFAULT_IMAGE

from .conftest import EXAMPLES
from .strategies import specs

BASE: dict[str, Any] = {"model": "org/model", "port": 8080}


def one(**overrides: Any) -> dict[str, Any]:
    return {"instances": {"main": {**BASE, **overrides}}}


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        checked_spec(data)
    return info.value.message


def test_examples_are_valid() -> None:
    quick = load_spec(EXAMPLES / "quick-deploy.toml")
    assert sorted(quick.instances) == ["deepseek", "scout"]
    assert quick.instances["deepseek"].max_concurrent_requests == 128
    assert quick.instances["scout"].image.endswith(":3.2.3")
    assert quick.instances["deepseek"].image == DEFAULT_IMAGE
    cpu = load_spec(EXAMPLES / "cpu-only.toml")
    assert all(inst.gpus is None for inst in cpu.instances.values())


def test_defaults() -> None:
    inst = parse_spec(one()).instances["main"]
    assert inst.listen_address == "127.0.0.1"
    assert inst.open_firewall is False
    assert inst.shm_size == "1g"
    assert inst.image == "ghcr.io/huggingface/text-generation-inference:3.3.7"
    assert inst.gpus is None and inst.cache_dir is None and inst.environment_file is None
    core = inst.to_core()
    assert core["listenAddress"] == "127.0.0.1" and core["cacheDir"] is None and "listen_address" not in core


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"}, None),
        ({"model": "/srv/models/llama"}, None),
        ({"revision": "refs/pr/1"}, None),
        ({"image": "ghcr.io/huggingface/text-generation-inference@sha256:" + "a" * 64}, None),
        ({"image": "registry.local:5000/tgi:3.3.7-rocm"}, None),
        ({"gpus": "all"}, None),
        ({"gpus": [0, 1], "numShard": 2}, None),
        ({"gpus": []}, None),
        ({"listenAddress": "::1"}, None),
        ({"quantize": "awq"}, None),
        ({"dtype": "bfloat16"}, None),
        ({"maxInputTokens": 1000, "maxTotalTokens": 1001}, None),
        ({"environment": {"HF_HUB_OFFLINE": "1"}, "downloadModel": False}, None),
        ({"cdiDevices": ["example.com/gpu=fake0"]}, None),
        ({"startTimeout": "1h 30min"}, None),
    ],
)
def test_valid_instances(overrides: dict[str, Any], expected: None) -> None:
    checked_spec(one(**overrides))


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"prot": 1}, ["instances.main.prot", "unknown key", "did you mean 'port'"]),
        ({"port": 0}, ["instances.main.port", "greater than or equal to 1"]),
        ({"port": 65536}, ["instances.main.port", "less than or equal to 65535"]),
        ({"port": "8080"}, ["instances.main.port"]),
        ({"model": "llama"}, ["instances.main.model", "owner/name"]),
        ({"model": "a/b/c"}, ["instances.main.model"]),
        ({"model": "org--x/y"}, ["instances.main.model"]),
        ({"model": "relative/../path"}, ["instances.main.model"]),
        ({"image": "Not A Ref"}, ["instances.main.image", "registry/path:tag"]),
        ({"image": "tgi@sha256:1234"}, ["instances.main.image"]),
        ({"dtype": "float16", "quantize": "gptq"}, ["instances.main", "dtype and quantize", "remove"]),
        ({"quantize": "int4"}, ["instances.main.quantize"]),
        ({"dtype": "float32"}, ["instances.main.dtype"]),
        ({"maxInputTokens": 4096, "maxTotalTokens": 4096}, ["maxTotalTokens (4096) must be greater"]),
        ({"gpus": [0], "numShard": 2}, ["numShard (2) is larger than the 1 GPU(s)"]),
        ({"numShard": 2}, ["numShard (2) needs GPUs"]),
        ({"gpus": "some"}, ["instances.main.gpus", '"all"']),
        ({"gpus": [0, 0]}, ["lists an index twice"]),
        ({"gpus": [-1]}, ["instances.main.gpus"]),
        ({"environmentFile": "secrets.env"}, ["instances.main.environmentFile", "absolute path"]),
        ({"environmentFile": "/nix/store/abc-secrets.env"}, ["environmentFile", "Nix store"]),
        ({"cacheDir": "/nix/store/x"}, ["instances.main.cacheDir", "Nix store"]),
        ({"apiKeyFile": "/nix/store/abc-key"}, ["instances.main.apiKeyFile", "Nix store"]),
        ({"apiKeyFile": "key.txt"}, ["instances.main.apiKeyFile", "absolute path"]),
        ({"cacheDir": "data"}, ["instances.main.cacheDir", "absolute path"]),
        ({"environment": {"HF_TOKEN": "hf_x"}}, ["HF_TOKEN looks like a secret", "environmentFile"]),
        ({"environment": {"OPENAI_API_KEY": "x"}}, ["looks like a secret"]),
        ({"environment": {"1BAD": "x"}}, ["not a valid environment variable name"]),
        ({"listenAddress": "localhost"}, ["instances.main.listenAddress", "not an IP address"]),
        ({"shmSize": "lots"}, ["instances.main.shmSize"]),
        ({"startTimeout": "soon"}, ["instances.main.startTimeout", "time span"]),
        ({"cdiDevices": ["gpu0"]}, ["instances.main.cdiDevices", "vendor.com/class=name"]),
        ({"extraArgs": ["a\nb"]}, ["instances.main.extraArgs", "newlines"]),
        ({"pull": "sometimes"}, ["instances.main.pull"]),
        ({"maxConcurrentRequests": 0}, ["instances.main.maxConcurrentRequests"]),
        ({"user": "tgi"}, ["instances.main", "user and uid go together"]),
        ({"uid": 2001}, ["instances.main", "user and uid go together"]),
        ({"user": "root", "uid": 2001}, ["instances.main.user", "not root"]),
        ({"user": "Bad User", "uid": 2001}, ["instances.main.user", "lowercase"]),
        ({"user": "tgi", "uid": 0}, ["instances.main.uid", "greater than or equal to 1"]),
        ({"user": "tgi", "uid": 2001, "port": 80}, ["port 80 is privileged", "1024 or more"]),
    ],
)
def test_invalid_instances(overrides: dict[str, Any], fragments: list[str]) -> None:
    message = error_of(one(**overrides))
    for fragment in fragments:
        assert fragment in message, message


def test_missing_required_keys() -> None:
    message = error_of({"instances": {"main": {"port": 1}}})
    assert "instances.main.model: required key is missing" in message
    message = error_of({"instances": {"main": {"model": "a/b"}}})
    assert "instances.main.port: required key is missing" in message


@pytest.mark.parametrize("name", ["Bad", "9lives", "a_b", "-x", "x-", "a" * 41, "dots.no", ""])
def test_bad_instance_names(name: str) -> None:
    message = error_of({"instances": {name: dict(BASE)}})
    assert json.dumps(name) in message and "huggingface-tgi-<name>" in message


@pytest.mark.parametrize("name", ["a", "scout", "deepseek-r1", "x" * 40, "m7"])
def test_good_instance_names(name: str) -> None:
    checked_spec({"instances": {name: dict(BASE)}})


def test_shared_port_names_both_instances() -> None:
    message = error_of({"instances": {"one": dict(BASE), "two": dict(BASE)}})
    assert 'instances.two.port: two enabled instances use the same port (8080, also used by instance "one")' in message


@pytest.mark.parametrize(
    ("two", "words"),
    [
        ({"user": "tgi", "uid": 2002}, ["instances.two.user:", '"one"', 'user "tgi"', "its own user"]),
        ({"user": "tgi-b", "uid": 2001}, ["instances.two.uid:", '"one"', "uid 2001", "its own uid"]),
    ],
)
def test_rootless_instances_need_their_own_user_and_uid(two: dict[str, Any], words: list[str]) -> None:
    one_ = {**BASE, "user": "tgi", "uid": 2001}
    message = error_of({"instances": {"one": one_, "two": {**BASE, "port": 8081, **two}}})
    for word in words:
        assert word in message, message


def test_rootless_and_rootful_instances_mix() -> None:
    spec = parse_spec(
        {"instances": {"one": {**BASE, "user": "tgi", "uid": 2001}, "two": {**BASE, "port": 8081}}}
    )
    assert spec.instances["one"].user == "tgi" and spec.instances["two"].user is None


def test_disabled_instance_may_share_a_port() -> None:
    checked_spec({"instances": {"one": dict(BASE), "two": {**BASE, "enable": False}}})


def test_unknown_top_level_key() -> None:
    message = error_of({"instance": {}})
    assert "instance: unknown key" in message and "instances" in message


def warnings_of(**overrides: Any) -> list[str]:
    return [str(w) for w in check(parse_spec(one(**overrides)))]


def test_warnings_for_unpinned_image_and_pointless_firewall() -> None:
    latest = warnings_of(image="ghcr.io/huggingface/text-generation-inference:latest")
    assert any(w.startswith("instances.main.image: ") and "not pinned" in w for w in latest)
    assert any("not pinned" in w for w in warnings_of(image="ghcr.io/huggingface/text-generation-inference"))
    assert any("loopback" in w for w in warnings_of(openFirewall=True))
    assert warnings_of() == []


def test_invalid_toml_reports_line_and_column(write_spec) -> None:  # type: ignore[no-untyped-def]
    path = write_spec('[instances.a]\nmodel = "a/b"\nport = = 1\n')
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "invalid TOML" in info.value.message and "line 3" in info.value.message
    assert "column" in info.value.message


def test_unreadable_specs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(binary)


@settings(max_examples=150, deadline=None)
@given(spec=specs())
def test_spec_toml_round_trips(spec: dict[str, Any]) -> None:
    # The VM harness writes deployed specs with spec_toml; what it writes must read back unchanged.
    text = spec_toml(spec["instances"], ["a comment"])
    assert tomllib.loads(text) == spec


def test_spec_toml_quotes_odd_keys_and_nests_tables() -> None:
    text = spec_toml({"a": {"environment": {"X.Y": "1", "Z": "two words"}, "port": 8080, "enable": False}})
    assert '[instances.a]\nenvironment = { "X.Y" = "1", Z = "two words" }\nport = 8080\nenable = false\n' in text


def test_spec_toml_escapes_control_characters_toml_forbids() -> None:
    # DEL and C0 controls are illegal raw in TOML basic strings (found by the round-trip property).
    value = "a\x7fb\x01c\td"
    text = spec_toml({"a": {"environment": {"X": value}}})
    assert tomllib.loads(text)["instances"]["a"]["environment"]["X"] == value
