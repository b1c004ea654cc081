"""The VM scenarios' specs, checked without a VM: they validate, render and pass systemd-analyze verify."""

from __future__ import annotations

from pathlib import Path

import pytest

from tgi_nix.generate.validate import validate
from tgi_nix.testing.scenarios import fixtures, load_scenario, scenario_names


def test_scenarios_are_discovered() -> None:
    assert {"two-instances", "readiness", "doctor", "cache", "faults", "rootless"} <= set(scenario_names())


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_spec_validates(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.script.is_file()
    report = validate(scenario.spec, name, podman="/usr/bin/podman")
    assert report.core is not None and set(report.core.instances) == set(scenario.spec.enabled())
    for inst in scenario.deployed_instances().values():
        assert inst["image"]


def test_fixture_token_is_not_in_any_scenario_spec() -> None:
    token = fixtures()["token"]
    for name in scenario_names():
        scenario = load_scenario(name)
        assert token not in scenario.spec.model_dump_json()


class _Recorder:
    """Stands in for a Machine: records the commands the harness would run in it."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def succeed(self, *commands: str, timeout: int | None = None) -> str:
        self.commands.extend(commands)
        return ""


def test_firewall_scenario_opens_the_ports_the_core_lists() -> None:
    from tgi_nix.nix.bridge import evaluate
    from tgi_nix.testing.vm.provision import apply_firewall

    scenario = load_scenario("firewall")
    assert scenario.options.get("firewall") is True
    core = evaluate(scenario.spec, podman="/usr/bin/podman")
    assert core.firewall_ports == [8080]  # public opens its port, private does not
    machine = _Recorder()
    apply_firewall(machine, core.firewall_ports)  # type: ignore[arg-type]
    (ruleset,) = machine.commands
    assert "hook input priority filter; policy drop;" in ruleset
    assert "tcp dport { 8080 } accept" in ruleset and "8081" not in ruleset
    closed = _Recorder()
    apply_firewall(closed, [])  # type: ignore[arg-type]
    assert "dport" not in closed.commands[0] and "policy drop" in closed.commands[0]


def test_a_scenario_image_file_other_than_the_mock_archive_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tgi_nix.errors import SpecError
    from tgi_nix.testing import scenarios
    from tgi_nix.testing.vm.mockimage import ARCHIVE, IMAGE_REF

    root = tmp_path / "nixos-tests"
    (root / "scenarios").mkdir(parents=True)
    monkeypatch.setattr(scenarios, "tests_dir", lambda: root)
    base = '[instances.x]\nmodel = "acme/x"\nport = 8080\n'
    (root / "scenarios" / "ok.toml").write_text(base + f'image = "{IMAGE_REF}"\nimageFile = "{ARCHIVE}"\n')
    assert load_scenario("ok").spec.instances["x"].image_file == ARCHIVE
    (root / "scenarios" / "bad.toml").write_text(base + 'imageFile = "/srv/tgi.tar"\n')
    with pytest.raises(SpecError, match=r"instances\.x\.imageFile: .*write imageFile = \"/opt/tgi-mock-image.tar\""):
        load_scenario("bad")


def test_fake_cdi_nodes_become_one_tmpfiles_rule_each() -> None:
    from tgi_nix.testing.scenarios import fake_node_rules

    nodes = fixtures()["fakeCdi"]["nodes"]
    rules = fake_node_rules(nodes).splitlines()
    assert len(rules) == len(nodes) and "c /dev/fakenvidia1 0666 root root - 1:5" in rules
    # Every node a fake CDI spec names is made on the host.
    named = {
        node["path"]
        for spec in fixtures()["fakeCdi"]["specs"].values()
        for edits in [spec.get("containerEdits", {})] + [d["containerEdits"] for d in spec["devices"]]
        for node in edits.get("deviceNodes", [])
    }
    assert named == set(nodes)
