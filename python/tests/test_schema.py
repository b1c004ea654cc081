"""Every schema rule, valid and invalid, with the message a user sees."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings

from tgi_nix.errors import SpecError
from tgi_nix.nix.bridge import check, evaluate
from tgi_nix.spec.loader import (
    INSTANCE_KEYS,
    SPEC_KEYS,
    checked_spec,
    load_spec,
    parse_spec,
    spec_toml,
    toml_value,
)
from tgi_nix.spec.models import estimated_model_size_gb, known_model_size_gb
from tgi_nix.spec.options import nix_type_of, option_docs
from tgi_nix.spec.schema import DEFAULT_IMAGE, Instance, option_name

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
        ({"user": "tgi", "rootful": True}, ["instances.main.user", "remove user or rootful"]),
        ({"uid": 2001, "rootful": True}, ["instances.main.uid", "remove uid or rootful"]),
        ({"user": "root", "uid": 2001}, ["instances.main.user", "not root"]),
        ({"user": "Bad User", "uid": 2001}, ["instances.main.user", "lowercase"]),
        ({"user": "tgi", "uid": 0}, ["instances.main.uid", "greater than or equal to 1"]),
        ({"user": "tgi", "uid": 2001, "port": 80}, ["port 80 is privileged", "1024 or more"]),
        ({"port": 80}, ["port 80 is privileged", 'as user "huggingface-tgi"', "or set rootful = true"]),
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
        ({"user": "tgi", "uid": 2002}, ["instances.two.uid:", '"one"', 'user "tgi"', "uid 2002 here but uid 2001"]),
        ({"user": "tgi-b", "uid": 2001}, ["instances.two.uid:", '"one"', "uid 2001", "set uid to a free one"]),
    ],
)
def test_a_rootless_user_has_one_uid_and_a_uid_one_user(two: dict[str, Any], words: list[str]) -> None:
    one_ = {**BASE, "user": "tgi", "uid": 2001}
    message = error_of({"instances": {"one": one_, "two": {**BASE, "port": 8081, **two}}})
    for word in words:
        assert word in message, message


def test_rootless_and_rootful_instances_mix() -> None:
    spec = parse_spec(
        {"instances": {"one": {**BASE, "user": "tgi", "uid": 2001}, "two": {**BASE, "port": 8081, "rootful": True},
                       "three": {**BASE, "port": 8082}}}
    )
    core = evaluate(spec)
    assert [core.instances[n].rootless for n in ("one", "two", "three")] == [True, False, True]
    assert sorted(core.users) == ["huggingface-tgi", "tgi"] and core.users["tgi"].uid == 2001


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


# ------------------------------------------------------- the loader's messages (spec/loader.py), exactly
def type_error(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data, "x.toml")
    first, *lines = str(info.value).split("\n")
    assert first == "x.toml is invalid:"
    return lines


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"port": "8080"}, "instances.main.port: Input should be a valid integer (got '8080')"),
        ({"model": {"a": 1}}, "instances.main.model: Input should be a valid string"),  # no table repeated back
        ({"extraArgs": ["a", 3]}, "instances.main.extraArgs[1]: Input should be a valid string (got 3)"),
        ({"environment": {"A": 1}}, "instances.main.environment.A: Input should be a valid string (got 1)"),
        ({"revision": 5}, "instances.main.revision: Input should be a valid string (got 5)"),  # one line, not one per branch
        ({"gpus": True}, 'instances.main.gpus: True is not a GPU selection; write "all", a list of GPU indices such '
                         "as [0, 1], or leave gpus out for CPU only"),
        ({"prot": 1}, "instances.main.prot: unknown key; did you mean 'port'?"),
        ({"zzzzzz": 1}, "instances.main.zzzzzz: unknown key; known keys: " + ", ".join(INSTANCE_KEYS)),
    ],
)
def test_type_errors_are_one_line_per_option(overrides: dict[str, Any], line: str) -> None:
    assert type_error(one(**overrides)) == [line]


def test_type_errors_quote_odd_names_and_know_the_top_level_keys() -> None:
    assert type_error({"instances": {"a b": {**BASE, "port": "1"}}}) == [
        """instances."a b".port: Input should be a valid integer (got '1')"""]
    assert type_error({"instancez": {}}) == ["instancez: unknown key; did you mean 'instances'?"]
    assert type_error({"zzz": {}}) == ["zzz: unknown key; known keys: instances"]
    assert type_error({"instances": {"main": {"port": 1}}}) == [
        "instances.main.model: required key is missing; add it to the instance"]
    assert set(INSTANCE_KEYS) >= {"apiKeyFile", "extraPodmanArgs", "port"} and SPEC_KEYS == ["instances"]


@pytest.mark.parametrize(("gpus", "ok"), [("all", True), (None, True), ([], True), ([0, 1023], True), ([1024], False),
                                          ([-1], False), ([True], False), ("some", False), (0, False)])
def test_gpu_selections(gpus: Any, ok: bool) -> None:
    if ok:
        assert parse_spec(one(gpus=gpus)).instances["main"].gpus == gpus
    else:
        (line,) = type_error(one(gpus=gpus))
        assert line == f"instances.main.gpus: {gpus!r} is not a GPU selection; write \"all\", a list of GPU indices " \
                       "such as [0, 1], or leave gpus out for CPU only"


def test_load_spec_messages_name_the_file(tmp_path: Any) -> None:
    missing = tmp_path / "missing.toml"
    for path, message in [(missing, f"{missing}: no such file"),
                          (tmp_path, f"{tmp_path}: is a directory, expected a TOML spec file")]:
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert str(info.value) == message
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"model = 1\n\xff")
    with pytest.raises(SpecError) as info:
        load_spec(binary)
    assert str(info.value) == f"{binary}: not UTF-8 text (byte 10); save the spec as UTF-8"
    bad = tmp_path / "bad.toml"
    bad.write_text("a = = 1\n")
    with pytest.raises(SpecError) as info:
        load_spec(str(bad))
    assert str(info.value).startswith(f"{bad}: invalid TOML: ")
    # Types here; the core's rules only with check (the default).
    privileged = tmp_path / "p.toml"
    privileged.write_text('[instances.a]\nmodel = "org/m"\nport = 80\nuser = "tgi"\nuid = 2001\n')
    assert load_spec(privileged, check=False).instances["a"].port == 80
    with pytest.raises(SpecError, match=rf"^{privileged} is invalid:\ninstances\.a\.port: "):
        load_spec(privileged)
    wrong_type = tmp_path / "t.toml"
    wrong_type.write_text('[instances.a]\nmodel = "org/m"\nport = "80"\n')
    with pytest.raises(SpecError, match=rf"^{wrong_type} is invalid:\ninstances\.a\.port: Input should be"):
        load_spec(wrong_type, check=False)


def test_spec_toml_values_and_layout() -> None:
    assert toml_value(True) == "true" and toml_value(False) == "false" and toml_value(7) == "7"
    assert toml_value(["a", 1, [False]]) == '["a", 1, [false]]'
    assert toml_value({"a b": "x", "c": 2}) == '{ "a b" = "x", c = 2 }'
    assert toml_value("é\x7f\"") == '"é\\u007f\\""'
    with pytest.raises(TypeError, match=r"^no TOML rendering for 1\.5$"):
        toml_value(1.5)
    assert spec_toml({"a b": {"port": 1}, "c": {"enable": True}}, ["one", "two"]) == (
        '# one\n# two\n\n[instances."a b"]\nport = 1\n\n[instances.c]\nenable = true\n')
    assert spec_toml({"c": {"port": 1}}) == "[instances.c]\nport = 1\n"


def test_the_cores_input_has_every_option_by_its_name() -> None:
    spec = parse_spec({"instances": {"on": {**BASE, "apiKeyFile": "/k"}, "off": {**BASE, "enable": False}}})
    core = spec.instances["on"].to_core()
    assert set(core) == set(INSTANCE_KEYS) and core["apiKeyFile"] == "/k" and core["shmSize"] == "1g"
    assert core["gpus"] is None and core["environment"] == {} and core["enable"] is True
    assert list(spec.enabled()) == ["on"]
    assert option_name("api_key_file") == "apiKeyFile"


def test_option_declarations_from_the_schema() -> None:
    docs = {doc.name: doc for doc in option_docs()}
    assert list(docs) == [option_name(f) for f in Instance.model_fields]
    assert (docs["port"].nix_type, docs["port"].default, docs["port"].required) == (
        "(types.ints.between 1 65535)", None, True)
    assert docs["model"].required and docs["model"].example == '"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"'
    assert (docs["enable"].nix_type, docs["enable"].default, docs["enable"].example) == ("types.bool", "true", "false")
    assert (docs["revision"].nix_type, docs["revision"].default) == ("types.nullOr types.str", "null")
    assert docs["gpus"].nix_type == (
        'types.nullOr (types.either (types.enum [ "all" ]) (types.listOf (types.ints.between 0 1023)))')
    assert (docs["extraArgs"].nix_type, docs["extraArgs"].default) == ("types.listOf types.str", "[ ]")
    assert (docs["environment"].nix_type, docs["environment"].default) == ("types.attrsOf types.str", "{ }")
    assert docs["uid"].nix_type == "types.nullOr (types.ints.between 1 2147483646)"
    assert not docs["uid"].required and docs["uid"].description.startswith("The numeric uid")
    assert docs["rootful"].nix_type == "types.bool" and docs["rootful"].default == "false"
    assert all(doc.description for doc in docs.values())
    assert [name for name, doc in docs.items() if doc.default_text is not None] == [
        name for name, field in ((option_name(n), f) for n, f in Instance.model_fields.items())
        if isinstance(field.json_schema_extra, dict) and "nixDefaultText" in field.json_schema_extra]


def test_nix_types_of_annotations() -> None:
    from typing import Annotated, Literal

    from pydantic import Field

    assert nix_type_of(Annotated[int, Field(ge=1)]) == "types.ints.positive"
    assert nix_type_of(Annotated[int, Field(ge=0)]) == "types.ints.unsigned"
    assert nix_type_of(Annotated[int, Field(ge=2, le=9)]) == "(types.ints.between 2 9)"
    assert nix_type_of(int) == "types.int" and nix_type_of(Annotated[int, Field(le=9)]) == "types.int"
    assert nix_type_of(int | str | None) == "types.nullOr types.anything"
    assert nix_type_of(Literal["a", "b"] | None) == 'types.nullOr (types.enum [ "a" "b" ])'
    assert nix_type_of(dict[str, list[bool]]) == "types.attrsOf (types.listOf types.bool)"
    with pytest.raises(TypeError, match="no Nix type for <class 'float'>"):
        nix_type_of(float)


def test_model_sizes_known_or_from_the_name() -> None:
    assert known_model_size_gb("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") == 15.2
    assert known_model_size_gb("org/unknown") is None
    assert estimated_model_size_gb("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") == (15.2, "known size")
    assert estimated_model_size_gb("org/SmolLM2-360M-Instruct") == (0.72, "360M parameters in its name")
    assert estimated_model_size_gb("mistralai/Mixtral-8x7B-v0.1") == (112.0, "8x7B parameters in its name")
    assert estimated_model_size_gb("Qwen/Qwen2.5-1.5b") == (3.0, "1.5B parameters in its name")
    assert estimated_model_size_gb("org7B/none") is None  # the owner's name says nothing
    assert estimated_model_size_gb("org/gpt2") is None


def test_error_paths_leave_out_pydantics_union_tags_and_name_the_root() -> None:
    from typing import Literal

    from pydantic import BaseModel, ValidationError

    from tgi_nix.spec.loader import format_validation_error

    class Union(BaseModel):
        choice: Literal["all"] | list[int]

    with pytest.raises(ValidationError) as err:
        Union.model_validate({"choice": "some"})
    assert any("[" in str(part) for e in err.value.errors() for part in e["loc"])  # pydantic's tags are there
    assert format_validation_error(err.value) == (
        "choice: Input should be 'all' (got 'some')\nchoice: Input should be a valid list (got 'some')")
    with pytest.raises(SpecError) as info:
        parse_spec(5)  # type: ignore[arg-type]
    first, second = str(info.value).split("\n")
    assert first == "spec is invalid:" and second.startswith("spec: Input should be a valid dictionary")


def test_a_local_path_is_sized_by_its_last_component() -> None:
    assert estimated_model_size_gb("/srv/Qwen-7B.v2/weights") is None
    assert estimated_model_size_gb("/srv/models/Qwen2.5-7B") == (14.0, "7B parameters in its name")


def test_checked_spec_names_its_source_and_unreadable_files_say_why(tmp_path: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    with pytest.raises(SpecError, match=r"^spec is invalid:\ninstances\.main\.port: Input should be"):
        checked_spec(one(port="1"))
    with pytest.raises(SpecError, match=r"^my\.toml is invalid:\ninstances\.main\.port: Input should be"):
        checked_spec(one(port="1"), "my.toml")
    spec = tmp_path / "spec.toml"
    spec.write_text("")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert str(info.value) == f"{spec}: cannot read: Permission denied"


def test_nix_types_keep_the_bounds_through_optional_and_annotated() -> None:
    from typing import Annotated

    import annotated_types

    assert nix_type_of(Annotated[int, annotated_types.Ge(1)]) == "types.ints.positive"
    assert nix_type_of(int | None, [annotated_types.Ge(0)]) == "types.nullOr types.ints.unsigned"
