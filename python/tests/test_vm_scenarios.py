"""The shared VM scenarios (nixos-tests/scenarios) in a booted Debian trixie VM with systemd + podman.

One fresh VM (copy-on-write over the cached image) per scenario; the units come from the Nix core
through `render-units`. Slow: each scenario boots QEMU under TCG. Run: `pytest -m vm`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tgi_nix.testing.scenarios import run_scenario, scenario_names
from tgi_nix.testing.vm import Machine, ensure_image
from tgi_nix.testing.vm.host import missing_host_packages

pytestmark = [
    pytest.mark.vm,
    pytest.mark.slow,
    # Skipped on a developer machine without QEMU; under CI=true conftest turns the skip into a failure.
    pytest.mark.skipif(
        bool(missing_host_packages()) or os.geteuid() != 0,
        reason="needs root and the VM host tools (scripts/setup.sh installs them)",
    ),
]


@pytest.fixture
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    ensure_image()
    vm = Machine(out_dir=tmp_path_factory.mktemp("vm-out"))
    try:
        yield vm
    finally:
        vm.cleanup()


# Minutes each scenario took in the last full VM run here (TCG, two VMs at a time). The test command runs
# the VM tests on two workers; the longest start first, so both finish at about the same time.
MINUTES = {
    "faults": 15, "rootless": 14, "cache": 12, "readiness": 9, "firewall": 7, "doctor": 7, "two-instances": 6,
}  # fmt: skip


def longest_first(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: -MINUTES.get(n, 0))


@pytest.mark.parametrize("name", longest_first(scenario_names()))
def test_scenario(machine: Machine, name: str) -> None:
    run_scenario(machine, name)
