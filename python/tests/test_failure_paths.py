"""Failure paths a user can hit, each with a test that fails when the product stops failing there:
systemd rejecting a unit in `validate` (real systemd-analyze), doctor's port check for instances on
wildcard and IPv6 addresses. (Ports below 1024 and the firewall: test_invariants.py; the firewall and
the Prometheus / Open WebUI integrations on real NixOS modules: test_nixos_eval.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tgi_nix.cli import main
from tgi_nix.errors import UnitVerifyError
from tgi_nix.generate import validate as validate_mod
from tgi_nix.generate.validate import validate
from tgi_nix.ops.doctor import CommandResult
from tgi_nix.spec.loader import load_spec

from .conftest import EXAMPLES
from .test_doctor import Check, FakeRunner, check, instance, listen, only, root

__all__ = ["check", "root"]  # fixtures used by the doctor tests below

CPU_ONLY = EXAMPLES / "cpu-only.toml"


def break_main_unit(render: Any, old: str, new: str) -> Any:
    """render_unit_tree, with one line of the main unit replaced (as a core bug would)."""

    def broken(result: Any) -> dict[str, str]:
        files: dict[str, str] = render(result)
        (name,) = [n for n in files if n.startswith("systemd/") and n.endswith(".service") and "-image" not in n and "-model" not in n]
        assert old in files[name], f"{old!r} not in {name}"
        files[name] = files[name].replace(old, new, 1)
        return files

    return broken


def test_validate_accepts_the_example_with_real_systemd() -> None:
    # The counterpart: the same path without the breakage passes, so the next tests fail for the breakage.
    report = validate(load_spec(CPU_ONLY), "cpu-only.toml", podman="/usr/bin/podman")
    assert report.core is not None and report.instances == ["smol"]


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        # fatal: systemd refuses to load the unit (non-zero exit)
        ("ExecStart=/usr/bin/podman run", "ExecStart=usr/bin/podman run", "Neither a valid executable name"),
        # not fatal for systemd (it ignores the line, exit 0), but the sandbox would silently be gone
        ("ProtectSystem=strict", "ProtectSystem=sideways", "Failed to parse protect system value"),
    ],
)
def test_validate_fails_when_systemd_rejects_a_unit(monkeypatch: pytest.MonkeyPatch, old: str, new: str,
                                                   words: str) -> None:
    monkeypatch.setattr(validate_mod, "render_unit_tree", break_main_unit(validate_mod.render_unit_tree, old, new))
    with pytest.raises(UnitVerifyError) as err:
        validate(load_spec(CPU_ONLY), "cpu-only.toml", podman="/usr/bin/podman")
    assert "systemd-analyze verify rejected" in str(err.value) and words in str(err.value)


def test_validate_cli_exits_3_with_systemds_words(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(validate_mod, "render_unit_tree", break_main_unit(
        validate_mod.render_unit_tree, "ExecStart=/usr/bin/podman run", "ExecStart=usr/bin/podman run"))
    assert main(["validate", str(CPU_ONLY)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: systemd-analyze verify rejected") and "Neither a valid executable" in err


def test_verify_units_raises_on_a_hand_broken_unit(tmp_path: Path) -> None:
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nType=notify\nExecStart=/bin/true\nRestart=sometimes\n")
    with pytest.raises(UnitVerifyError, match="Failed to parse service restart specifier"):
        validate_mod.verify_units(tmp_path, "/usr/bin/podman")


# Doctor's port check: an instance on a wildcard address clashes with a listener on any address of
# the port, an IPv6 instance with its own address and the wildcards only.
@pytest.mark.parametrize(
    ("address", "table", "local", "level"),
    [
        ("0.0.0.0", "tcp", "0100007F:1F90", "fail"),  # instance on 0.0.0.0, someone on 127.0.0.1:8080
        ("0.0.0.0", "tcp", "0700000A:1F90", "fail"),  # ... on 10.0.0.7:8080
        ("0.0.0.0", "tcp6", "00000000000000000000000001000000:1F90", "fail"),  # ... on [::1]:8080
        ("::", "tcp", "0100007F:1F90", "fail"),  # instance on ::, someone on 127.0.0.1:8080
        ("::", "tcp6", "00000000000000000000000001000000:1F90", "fail"),  # ... on [::1]:8080
        ("0.0.0.0", "tcp", "0100007F:1F91", "ok"),  # another port
        ("::1", "tcp6", "00000000000000000000000001000000:1F90", "fail"),  # same IPv6 address
        ("::1", "tcp6", "00000000000000000000000000000000:1F90", "fail"),  # [::]:8080 holds it too
        ("::1", "tcp", "0100007F:1F90", "ok"),  # 127.0.0.1 is another address
        ("::1", "tcp6", "00000000000000000000000002000000:1F90", "ok"),  # ::2
    ],
)
def test_port_check_on_wildcard_and_ipv6_addresses(check: Check, root: Path, address: str, table: str,
                                                   local: str, level: str) -> None:
    listen(root, table, local, 4242)
    finding = only(check({"ds": instance(listenAddress=address)}), "port")
    assert finding.level == level, finding
    if level == "fail":
        assert "port 8080" in finding.message and "instances.ds.port" in finding.fix


def test_port_check_on_a_wildcard_instance_accepts_its_own_container(check: Check, root: Path) -> None:
    listen(root, "tcp", "00000000:1F90", 4242)
    runner = FakeRunner({("podman", "port"): CommandResult(0, "80/tcp -> 0.0.0.0:8080\n")})
    finding = only(check({"ds": instance(listenAddress="0.0.0.0")}, runner=runner), "port")
    assert finding.level == "ok" and "our container" in finding.message
