"""The VM scenarios' specs, checked without a VM: they validate, render and pass systemd-analyze verify."""

from __future__ import annotations

import pytest

from tgi_nix.generate.validate import validate
from tgi_nix.testing.scenarios import fixtures, load_scenario, scenario_names


def test_scenarios_are_discovered() -> None:
    assert {"two-instances", "readiness", "secrets", "cache", "faults", "cdi"} <= set(scenario_names())


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
