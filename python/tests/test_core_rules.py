"""Each rule of core/rules.nix by name, evaluated by the core itself with the schema bypassed: the NixOS
module has only its Nix types in front of these rules, so each must fire on its own, on the right
option path (benchmarks/mutation_score.py disables them one by one)."""

from __future__ import annotations

from typing import Any

import pytest

from tgi_nix.errors import SpecError
from tgi_nix.nix.bridge import check
from tgi_nix.spec.schema import Instance, Spec

BASE = Instance(model="a/b", port=8080, image="ghcr.io/huggingface/text-generation-inference:3.3.7")


def unchecked(**instances: dict[str, Any]) -> Spec:
    """A spec the schema never saw (model_construct): what the core gets from a NixOS configuration."""
    return Spec.model_construct(
        instances={name: Instance.model_construct(**{**BASE.__dict__, **values}) for name, values in instances.items()}
    )


def errors_of(spec: Spec) -> str:
    with pytest.raises(SpecError) as err:
        check(spec)
    return str(err.value)


@pytest.mark.parametrize(
    ("values", "path", "words"),
    [
        ({"model": "not a model"}, "model", "not a Hugging Face model id"),
        ({"model": "a--b/c"}, "model", "not a Hugging Face model id"),
        ({"model": "/srv/m\nx"}, "model", "newlines"),
        ({"revision": "-bad rev"}, "revision", "not a branch, tag or commit name"),
        ({"image": "UPPER::bad"}, "image", "not a container image reference"),
        ({"image_file": "relative.tar"}, "imageFile", "absolute path"),
        ({"listen_address": "localhost"}, "listenAddress", "not an IP address"),
        ({"gpus": [0, 0]}, "gpus", "lists an index twice"),
        ({"cdi_devices": ["nvidia"]}, "cdiDevices", "not a CDI device name"),
        ({"shm_size": "lots"}, "shmSize", "not a size"),
        ({"start_timeout": "soon"}, "startTimeout", "not a systemd time span"),
        ({"environment_file": "/nix/store/x.env"}, "environmentFile", "Nix store"),
        ({"environment_file": "x.env"}, "environmentFile", "absolute path"),
        ({"api_key_file": "key"}, "apiKeyFile", "absolute path"),
        ({"api_key_file": "/nix/store/key"}, "apiKeyFile", "Nix store"),
        ({"cache_dir": "/nix/store/cache"}, "cacheDir", "Nix store"),
        ({"user": "root", "uid": 0}, "user", "not a usable system user name"),
        ({"user": "Bad User", "uid": 2001}, "user", "not a usable system user name"),
        ({"environment": {"1BAD": "x"}}, "environment", "not a valid environment variable name"),
        ({"environment": {"MODE": "a\nb"}}, "environment", "must not contain newlines"),
        ({"extra_args": ["a\nb"]}, "extraArgs", "must not contain newlines"),
        ({"extra_podman_args": ["--label=a\nb"]}, "extraPodmanArgs", "must not contain newlines"),
        ({"dtype": "float16", "quantize": "awq"}, "dtype", "cannot be combined"),
        ({"max_input_tokens": 10, "max_total_tokens": 10}, "maxTotalTokens", "must be greater than"),
        ({"num_shard": 3, "gpus": [0, 1]}, "numShard", "larger than the 2 GPU(s)"),
        ({"num_shard": 2, "gpus": None}, "numShard", "needs GPUs"),
        ({"user": "tgi-x", "rootful": True}, "user", "remove user or rootful"),
        ({"uid": 2001, "rootful": True}, "uid", "remove uid or rootful"),
        ({"user": "tgi-x", "uid": 2001, "port": 1023}, "port", "is privileged"),
        ({"port": 1023}, "port", "or set rootful = true"),
    ],
)
def test_each_rule_fires_on_its_option(values: dict[str, Any], path: str, words: str) -> None:
    message = errors_of(unchecked(x=values))
    assert f"instances.x.{path}: " in message and words in message, message


def test_instance_name_rule() -> None:
    assert 'instances."Bad.Name": instance name "Bad.Name" is not allowed' in errors_of(unchecked(**{"Bad.Name": {}}))


@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029"])
def test_a_unicode_line_break_in_a_name_stays_on_the_findings_line(brk: str) -> None:
    # Found by test_fuzz: JSON leaves NEL/LS/PS raw, and str.splitlines() splits on them.
    message = errors_of(unchecked(**{f"a{brk}b": {}}))
    escaped = f"\\u{ord(brk):04x}"
    assert f'instances."a{escaped}b": instance name "a{escaped}b" is not allowed' in message
    assert message.splitlines()[1:] == [next(x for x in message.splitlines() if x.startswith("instances."))]


@pytest.mark.parametrize(
    ("b", "path", "words"),
    [
        ({"port": 8080}, "port", "two enabled instances use the same port"),
        # one user, two uids: set on both, or set on one and derived on the other
        ({"port": 8081, "user": "tgi-a", "uid": 2002}, "uid", 'user "tgi-a" has uid 2002 here but uid 2001 in instance "a"'),
        ({"port": 8081, "user": "tgi-a"}, "uid", "(derived from the name \"tgi-a\") here but uid 2001"),
        # two users, one uid: set on both, or set here and derived for the other
        ({"port": 8081, "user": "tgi-b", "uid": 2001}, "uid", 'already the uid of user "tgi-a" (instance "a")'),
        ({"port": 8081, "uid": 2001}, "uid", 'user "huggingface-tgi" would get uid 2001, already the uid of user "tgi-a"'),
    ],
)
def test_instances_may_not_share_a_port_or_give_a_user_two_uids(b: dict[str, Any], path: str, words: str) -> None:
    message = errors_of(unchecked(a={"user": "tgi-a", "uid": 2001}, b=b))
    assert f"instances.b.{path}: " in message and words in message and "instances.a." not in message, message


def test_instances_share_the_default_user_and_a_user_of_their_own() -> None:
    # Instances that set no user share one (one uid, one image store); two may also name the same user.
    assert check(unchecked(a={}, b={"port": 8081}, c={"port": 8082, "user": "tgi-c"}, d={"port": 8083, "user": "tgi-c"})) == []
    # A derived uid that another user holds is found by the same rule (a derived one meets a set one).
    message = errors_of(unchecked(a={"user": "tgi-a", "uid": 47481}, b={"port": 8081}))
    assert 'instances.b.uid: user "huggingface-tgi" would get uid 47481 (derived from the name "huggingface-tgi")' in message


def test_a_disabled_instance_shares_nothing() -> None:
    assert check(unchecked(a={}, b={"enable": False})) == []


@pytest.mark.parametrize(
    ("values", "path", "words"),
    [
        ({"image": "ghcr.io/huggingface/text-generation-inference:latest"}, "image", "is not pinned"),
        ({"open_firewall": True, "listen_address": "127.0.0.1"}, "openFirewall", "serves nothing"),
        ({"trust_remote_code": True}, "trustRemoteCode", "runs the model repository's code"),
    ],
)
def test_each_warning_fires_on_its_option(values: dict[str, Any], path: str, words: str) -> None:
    warnings = [str(w) for w in check(unchecked(x=values))]
    assert any(w.startswith(f"instances.x.{path}: ") and words in w for w in warnings), warnings
