"""Every promise, checked on every rendered unit: the units of every example, of a fixed matrix
(rootful and rootless, GPU and not, each listen address kind, ports below 1024) and of hypothesis
specs are held against core/promises.nix, the one table docs/hardening.md also shows. The snapshots
stay a readable diff; these tests are the guard."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tgi_nix.errors import SpecError
from tgi_nix.generate.promises import load_promises
from tgi_nix.nix.bridge import evaluate, module_dir
from tgi_nix.nix.facts import CoreResult, InstanceFacts
from tgi_nix.spec.loader import checked_spec, load_spec, parse_spec
from tgi_nix.spec.schema import Spec

from .conftest import EXAMPLES
from .strategies import specs
from .test_core import split_exec, unit_lines

TOKEN = "hf_SENTINELtokenThatMustNeverLeak0123456789"


@functools.cache
def promises() -> dict[str, Any]:
    return load_promises()


def expand(value: Any, facts: InstanceFacts, spec_gpus: bool) -> list[str] | None:
    """The lines a directive must have in this instance's unit (None: absent)."""
    if value is None:
        return None
    user = facts.podman_user
    lines: list[str] = []
    for line in value if isinstance(value, list) else [value]:
        if line == "@gpuDevices@":
            lines += promises()["gpuDevices"] if spec_gpus else []
        elif line == "@bindService@":
            lines += ["CAP_NET_BIND_SERVICE"] if facts.network.port < 1024 else []
        elif line == "@cacheDir@":
            lines.append(facts.paths.cache_dir)
        elif line in ("@user@", "@home@", "@runtimeDir@"):
            assert user is not None, f"{facts.name}: a rootless promise on a rootful instance"
            lines.append({"@user@": user.name, "@home@": user.home, "@runtimeDir@": user.runtime_dir}[line])
        else:
            lines.append(line)
    return lines or None


def service_lines(text: str, key: str) -> list[str] | None:
    found = unit_lines(text.split("\n[Install]")[0].split("\n[Service]\n", 1)[1], key)
    return found or None


def check_instance(result: CoreResult, facts: InstanceFacts, gpus: bool, usage_stats: str) -> None:
    mode = "Rootless" if facts.rootless else "Rootful"
    units = {f"main{mode}": facts.service_name, f"image{mode}": facts.image_service_name}
    for kind, service in units.items():
        text = result.unit_files[service]
        for directive, values in promises()["directives"].items():
            want = expand(values[kind], facts, gpus)
            got = service_lines(text, directive)
            # `CapabilityBoundingSet=` (empty) is a line of its own: no capabilities at all.
            assert got == want, f"{service}: {directive}= is {got}, promised {want}"

    # The container's flags, in the ExecStart= systemd runs (not only in the facts).
    (exec_start,) = unit_lines(result.unit_files[facts.service_name], "ExecStart")
    argv = split_exec(exec_start)
    for flag in promises()["container"]:
        assert flag in argv, f"{facts.service_name}: {flag} missing from podman run"
    assert "--privileged" not in argv and not any(a.startswith("--cap-add") for a in argv)
    assert any(a.startswith("--pids-limit=") for a in argv)

    # Telemetry: the launcher always hears the option's value, once, on the host and in a pod (TGI's
    # own default is on).
    for where, args in ((facts.service_name, argv), ("render-k8s", facts.kubernetes.launcher_args)):
        said = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--usage-stats"]
        assert said == [usage_stats], f"{where}: --usage-stats {said}, the option says {usage_stats}"
        assert not any(a.startswith("--usage-stats=") for a in args), where

    # Firewall: the instance's port iff openFirewall.
    assert facts.network.firewall_ports == ([facts.network.port] if facts.network.open_firewall else [])


def check_result(spec: Spec, result: CoreResult) -> None:
    enabled = spec.enabled()
    assert sorted(result.instances) == sorted(enabled)
    for name, inst in enabled.items():
        facts = result.instances[name]
        assert facts.rootless == (not inst.rootful)
        assert facts.network.open_firewall == inst.open_firewall
        check_instance(result, facts, gpus=inst.gpus not in (None, []), usage_stats=inst.usage_stats)
    # The host's firewall: exactly the ports of the enabled instances that ask.
    assert sorted(result.firewall_ports) == sorted(i.port for i in enabled.values() if i.open_firewall)
    # No secret in any rendered file: only the files' paths appear, never a token or key value.
    for rel, text in {**result.unit_files, **result.script_files}.items():
        assert TOKEN not in text, rel
        for line in text.split("\n"):
            assert not line.startswith(("Environment=\"HF_TOKEN", "Environment=HF_TOKEN", "Environment=\"API_KEY")), rel
            assert "--env=HF_TOKEN" not in line and "--env=API_KEY" not in line, rel


def render(data: dict[str, Any]) -> tuple[Spec, CoreResult]:
    spec = parse_spec(data)
    return spec, evaluate(spec, podman="/usr/bin/podman")


@pytest.mark.parametrize("spec_path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_keeps_every_promise(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    check_result(spec, evaluate(spec, podman="/usr/bin/podman"))


# One spec with every kind the promises distinguish: rootful and rootless, GPU and not, IPv4/IPv6
# loopback, wildcard and a plain address, ports below 1024, firewall open and closed, secrets set.
MATRIX = {
    "instances": {
        "web": {"model": "a/b", "port": 80, "listenAddress": "0.0.0.0", "openFirewall": True, "gpus": "all",
                "rootful": True},
        "low": {"model": "a/b", "port": 1023, "listenAddress": "::", "environmentFile": "/run/secrets/t.env",
                "usageStats": "on", "rootful": True},
        "edge": {"model": "a/b", "port": 1024, "listenAddress": "192.0.2.7", "gpus": [0, 1], "usageStats": "no-stack",
                 "rootful": True},
        "six": {"model": "a/b", "port": 8081, "listenAddress": "::1", "openFirewall": True,
                "apiKeyFile": "/run/secrets/key", "rootful": True},
        # rootless with a user (and uid) of its own, and the default: the shared user, derived uid
        "rl": {"model": "a/b", "port": 8082, "user": "tgi-rl", "uid": 2001, "gpus": "all",
               "environmentFile": "/run/secrets/t.env", "openFirewall": True},
        "rl6": {"model": "/srv/models/m", "port": 1025, "listenAddress": "::"},
        "off": {"model": "a/b", "port": 9000, "enable": False, "openFirewall": True},
    }
}


@pytest.fixture(scope="module")
def matrix() -> tuple[Spec, CoreResult]:
    return render(MATRIX)


def test_matrix_keeps_every_promise(matrix: tuple[Spec, CoreResult]) -> None:
    spec, result = matrix
    check_result(spec, result)
    kinds = {(f.rootless, f.network.wildcard, f.network.family) for f in result.instances.values()}
    assert {(False, True, "ipv4"), (False, True, "ipv6"), (False, False, "ipv6"), (True, False, "ipv4"),
            (True, True, "ipv6")} <= kinds


@pytest.mark.parametrize(("name", "bind"), [("web", True), ("low", True), ("edge", False), ("six", False)])
def test_rootful_port_below_1024_gets_cap_net_bind_service(
    matrix: tuple[Spec, CoreResult], name: str, bind: bool
) -> None:
    # conmon holds the published host port: below 1024 that needs the capability, above it must not have it.
    _, result = matrix
    facts = result.instances[name]
    for service in (facts.service_name, facts.image_service_name):
        bounding = " ".join(unit_lines(result.unit_files[service], "CapabilityBoundingSet"))
        assert ("CAP_NET_BIND_SERVICE" in bounding.split()) == bind, service


def test_rootless_units_have_no_capability_at_all(matrix: tuple[Spec, CoreResult]) -> None:
    _, result = matrix
    for name in ("rl", "rl6"):
        facts = result.instances[name]
        for service in (facts.service_name, facts.image_service_name):
            assert unit_lines(result.unit_files[service], "CapabilityBoundingSet") == [""]


def test_rootless_port_below_1024_is_refused() -> None:
    # A rootless podman publishes as its user, who cannot bind below 1024: refused, naming the option.
    with pytest.raises(SpecError) as err:
        checked_spec({"instances": {"x": {"model": "a/b", "port": 1023}}})
    assert "instances.x.port" in str(err.value) and "1024" in str(err.value) and "rootful = true" in str(err.value)
    checked_spec({"instances": {"x": {"model": "a/b", "port": 1024}}})
    checked_spec({"instances": {"x": {"model": "a/b", "port": 1023, "rootful": True}}})


def test_firewall_opens_exactly_the_ports_that_ask(matrix: tuple[Spec, CoreResult]) -> None:
    _, result = matrix
    # "off" asks too but is disabled; "low" and "edge" do not ask.
    assert sorted(result.firewall_ports) == [80, 8081, 8082]
    assert result.instances["edge"].network.firewall_ports == []


@pytest.mark.parametrize(
    "flag", ["--cap-drop=all", "--security-opt=no-new-privileges", "--health-on-failure=kill", "--pids-limit=8192"]
)
def test_every_container_gets_the_hardening_flag(matrix: tuple[Spec, CoreResult], flag: str) -> None:
    _, result = matrix
    assert flag in promises()["container"]
    for facts in result.instances.values():
        (exec_start,) = unit_lines(result.unit_files[facts.service_name], "ExecStart")
        assert flag in split_exec(exec_start), facts.service_name


def test_rootful_units_set_no_new_privileges(matrix: tuple[Spec, CoreResult]) -> None:
    _, result = matrix
    for name in ("web", "low", "edge", "six"):
        facts = result.instances[name]
        for service in (facts.service_name, facts.image_service_name):
            assert unit_lines(result.unit_files[service], "NoNewPrivileges") == ["true"], service


def test_telemetry_is_off_unless_asked(matrix: tuple[Spec, CoreResult]) -> None:
    spec, result = matrix
    assert Spec.model_validate({"instances": {"x": {"model": "a/b", "port": 1}}}).instances["x"].usage_stats == "off"
    said = {n: f.kubernetes.launcher_args[f.kubernetes.launcher_args.index("--usage-stats") + 1]
            for n, f in result.instances.items()}
    assert said == {"web": "off", "low": "on", "edge": "no-stack", "six": "off", "rl": "off", "rl6": "off"}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_generated_specs_keep_every_promise(data: dict[str, Any]) -> None:
    spec, result = render(data)
    check_result(spec, result)


def test_the_promises_name_each_directive_once_and_cover_the_sandbox() -> None:
    # Every directive of hardening.nix appears in the table (a new one must be promised too).
    table = promises()
    text = (module_dir() / "core" / "hardening.nix").read_text()
    implemented = set(re.findall(r"^\s{4,6}([A-Z][A-Za-z]+) =", text, re.M))
    assert implemented, "no directive found in hardening.nix"
    assert implemented <= set(table["directives"]), implemented - set(table["directives"])
    assert set(table["kinds"]) == {"mainRootful", "imageRootful", "mainRootless", "imageRootless"}
