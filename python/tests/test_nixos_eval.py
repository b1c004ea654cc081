"""The NixOS module against real NixOS modules (../shared/nixos-eval): every example (units compared
with `render-units`, script texts included), the harness's own scenarios, and our configurations in
nixos-tests/eval-configs/ (valid ones, and invalid ones whose `# expect-assertion:` must fire)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO
from .nixos_eval import cli, harness

CONFIGS = REPO / "nixos-tests" / "eval-configs"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("nixos-eval") / "out"
    proc = subprocess.run(
        ["bash", str(harness()), "--configs", str(CONFIGS), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TGI_NIX": cli(), "OUT": str(out)},
        timeout=900,
    )
    return proc, out


def evaluated(run: tuple[subprocess.CompletedProcess[str], Path], name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run[1] / name / "eval.json").read_text())
    return data


def test_every_check_passes(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, _ = run
    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert proc.returncode == 0 and not failures, proc.stdout[-4000:] + proc.stderr[-2000:]
    # The examples ran and their units matched render-units, scripts included.
    for example in sorted(p.stem for p in (REPO / "examples").glob("*.toml")):
        assert f"=== {example} (" in proc.stdout
    assert "same script text" in proc.stdout and "script texts differ" not in proc.stdout
    # Each invalid configuration fired its assertion (the harness fails it otherwise).
    for config in sorted(CONFIGS.glob("invalid-*.nix")):
        assert "expect-assertion:" in config.read_text()


def test_a_derived_uid_held_by_another_user_names_the_uid_option(
    run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    # NixOS's "UIDs and GIDs must be unique!" names no option; the module's own assertion does.
    section = run[0].stdout.split("=== invalid-uid-taken (", 1)[1].split("\n=== ", 1)[0]
    assert (
        "assertion: services.huggingface-tgi.instances.a.uid: user huggingface-tgi gets uid 47481, which is "
        "already the uid of users.users.alice; set uid to a free one" in section
    ), section


def test_firewall_opens_exactly_the_ports_that_ask(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    assert evaluated(run, "firewall")["firewallTCP"] == [8080]
    assert evaluated(run, "privileged-port")["firewallTCP"] == []


def test_boot_kernel_modules_are_what_render_units_writes(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    # The same core list reaches NixOS (boot.kernelModules) and render-units (modules-load.d).
    for example in sorted(p.stem for p in (REPO / "examples").glob("*.toml")):
        conf = run[1] / example / "render-units" / "modules-load.d" / "huggingface-tgi.conf"
        listed = [line for line in conf.read_text().splitlines() if not line.startswith("#")]
        modules = evaluated(run, example)["kernelModules"]
        assert listed and [m for m in modules if m in listed] == listed, (example, modules)
        # Everything else comes from NixOS's own modules (the firewall's conntrack helper).
        assert {m for m in modules if m not in listed} <= {"nf_conntrack"}, (example, modules)


def test_rootless_users_get_ids_subids_and_lingering(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    users = evaluated(run, "rootless-two")["users"]
    # a and b share the default user (uid derived from its name); c has its own, with a set uid
    assert {"huggingface-tgi", "tgi-c"} <= set(users) and "tgi-a" not in users
    for name, uid in (("huggingface-tgi", 47481), ("tgi-c", 2002)):
        user = users[name]
        assert (user["uid"], user["isSystemUser"], user["linger"], user["autoSubUidGidRange"]) == (uid, True, True, True)
        assert user["home"] == f"/var/lib/huggingface-tgi/.rootless/{name}"


def test_wildcard_ipv6_instance_is_reached_on_loopback(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result = evaluated(run, "ipv6-integrations")
    (job,) = result["scrapeConfigs"]
    assert job["static_configs"][0]["targets"] == ["[::1]:8082"]
    assert result["openWebuiEnv"]["OPENAI_API_BASE_URLS"] == "http://[::1]:8082/v1"


def test_port_below_1024_keeps_the_bind_capability(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    units = evaluated(run, "privileged-port")["units"]
    bounding = [line for line in units["huggingface-tgi-web.service"].splitlines() if line.startswith("CapabilityBoundingSet=")]
    assert any("CAP_NET_BIND_SERVICE" in line for line in bounding)
    other = evaluated(run, "firewall")["units"]["huggingface-tgi-public.service"]
    assert "CAP_NET_BIND_SERVICE" not in other


def test_cdi_spec_dirs_are_listed_once(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    seen = 0
    for eval_json in sorted(run[1].glob("*/eval.json")):
        dirs = json.loads(eval_json.read_text())["containersConf"].get("engine", {}).get("cdi_spec_dirs")
        if dirs is None:
            continue
        seen += 1
        # /var/run is a link to /run: the same directory twice under two names counts too.
        real = [d.removeprefix("/var") for d in dirs]
        assert len(real) == len(set(real)), f"{eval_json.parent.name}: {dirs}"
        assert {"/etc/cdi", "/run/cdi"} <= set(real), f"{eval_json.parent.name}: {dirs}"
    assert seen >= 3  # GPU examples (NVIDIA module's entries) and cdi-other-vendor (ours)
    assert evaluated(run, "cdi-other-vendor")["containersConf"]["engine"]["cdi_spec_dirs"] == ["/etc/cdi", "/run/cdi"]
    # The VM scenarios' fake GPUs: gpus with the toolkit forced off still finds /etc/cdi.
    fake = evaluated(run, "gpus-fake-cdi")
    assert fake["failedAssertions"] == [] and fake["nvidiaToolkit"] is False
    assert fake["containersConf"]["engine"]["cdi_spec_dirs"] == ["/etc/cdi", "/run/cdi"]


def test_gpu_units_wait_for_the_cdi_generator_only_where_nixos_has_one(
    run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    generator = "nvidia-container-toolkit-cdi-generator.service"
    with_toolkit = evaluated(run, "quick-deploy")
    assert with_toolkit["nvidiaToolkit"] is True
    assert generator in with_toolkit["units"]["huggingface-tgi-scout.service"]
    # The toolkit forced off: no After=/Wants= on a unit this system lacks.
    without = evaluated(run, "gpus-fake-cdi")
    assert all(generator not in text for text in without["units"].values())


def test_open_webui_default_port_moves_off_an_instance(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    # The harness's integrations scenario: an instance on 8080, Open WebUI left at its default 8080.
    result = evaluated(run, "integrations")
    assert result["failedAssertions"] == []
    assert "--port 3000" in result["otherUnits"]["open-webui"]
    # Set by hand, the port stays and the collision asserts (invalid-openwebui-port.nix); elsewhere untouched.
    assert "--port 8095" in evaluated(run, "ipv6-integrations")["otherUnits"]["open-webui"]


def test_tgi_release_and_gpu_warnings_reach_the_module(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    warnings = evaluated(run, "tgi-release-warnings")["warnings"]
    prefix = "services.huggingface-tgi.instances."
    assert sorted(w.partition(":")[0] for w in warnings) == [
        f"{prefix}scout.image",
        f"{prefix}scout.model",
        f"{prefix}small.gpus",
    ]
    assert any("never released 2.5.1" in w and "2.4.1 and 3.0.0" in w for w in warnings)
