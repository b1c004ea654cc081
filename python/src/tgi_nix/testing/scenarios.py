"""Run the shared VM scenarios (`nixos-tests/scenarios/<name>.{toml,py}`) in the Debian QEMU VM.

A scenario is a spec (TOML, plus an optional `[scenario]` table for the drivers) and a NixOS-style test
script. `nixos-tests/default.nix` runs the same pair under NixOS's test driver; here the units come
from `render-units` (the same Nix core), the mock TGI image answers to each instance's image name,
and the script sees the same globals: `machine`, `subtest`, `spec` (instance name -> options as
deployed), `TOKEN` (the test token written to every `environmentFile`), `API_KEY` (written to every
`apiKeyFile`) and `podman_of(name)` (the shell words of that instance's podman: root's, or its
rootless user's; nixos-tests/default.nix defines the same from the module's facts). The machine also has the `tgi-nix` CLI and the deployed spec at `/etc/tgi-nix/spec.toml`.
"""

from __future__ import annotations

import json
import shlex
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..fsutil import write_tree_atomic
from ..generate.render import render_unit_tree
from ..nix.bridge import checkout_root, evaluate, user_podman_argv
from ..nix.facts import CoreResult
from ..spec.loader import parse_spec, spec_toml
from ..spec.schema import DEFAULT_IMAGE, Spec
from .vm.errors import log

VM_PODMAN = "/usr/bin/podman"
# Where both drivers put the deployed spec on the machine (for `tgi-nix doctor` and friends).
SPEC_PATH = "/etc/tgi-nix/spec.toml"
# The tmpfiles rule that makes the fake CDI devices' nodes (fixtures.json "fakeCdi") at every boot.
FAKE_GPU_TMPFILES = "/etc/tmpfiles.d/tgi-nix-fake-gpu.conf"


def tests_dir() -> Path:
    return checkout_root() / "nixos-tests"


def fixtures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tests_dir() / "fixtures.json").read_text())
    return data


def scenario_names() -> list[str]:
    return sorted(
        p.stem for p in (tests_dir() / "scenarios").glob("*.toml") if p.with_suffix(".py").is_file()
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Spec
    script: Path
    options: dict[str, Any] = field(default_factory=dict)

    def deployed_instances(self) -> dict[str, dict[str, Any]]:
        """What the script sees as `spec`: the written options plus the image actually run."""
        out: dict[str, dict[str, Any]] = {}
        for name, inst in self.spec.enabled().items():
            written = inst.model_dump(mode="json", by_alias=True, exclude_unset=True)
            written["image"] = inst.image
            out[name] = written
        return out


def load_scenario(name: str) -> Scenario:
    from .vm.mockimage import ARCHIVE, IMAGE_REF

    toml_path = tests_dir() / "scenarios" / f"{name}.toml"
    data = tomllib.loads(toml_path.read_text())
    options = data.pop("scenario", {})
    if not isinstance(options, dict):
        raise SpecError(f"{toml_path}: [scenario] must be a table")
    spec = parse_spec(data, str(toml_path))
    # The only image archive in the VM is the mock's (nixos-tests/default.nix gives every instance
    # the same pair on NixOS).
    for inst_name, inst in spec.instances.items():
        if inst.image_file is not None and (inst.image_file, inst.image) != (ARCHIVE, IMAGE_REF):
            raise SpecError(
                f"{toml_path}: instances.{inst_name}.imageFile: a scenario loads the mock's archive only;"
                f' write imageFile = "{ARCHIVE}" and image = "{IMAGE_REF}"'
            )
    return Scenario(name, spec, toml_path.with_suffix(".py"), options)


def fake_node_rules(nodes: dict[str, str]) -> str:
    """tmpfiles.d lines for the fake device nodes (path -> "major:minor"), one per node."""
    return "".join(f"c {path} 0666 root root - {devnum}\n" for path, devnum in sorted(nodes.items()))


def deploy(machine: Any, scenario: Scenario, workdir: Path) -> CoreResult:
    """Install the scenario's units into a booted machine and start them as boot would; return
    the core's evaluation of the scenario."""
    from .vm import (
        apply_firewall,
        install_cli,
        install_units,
        lock_module_loading_at_boot,
        tag_mock_image_as,
        tag_mock_image_command,
    )

    fx = fixtures()
    core = evaluate(scenario.spec, podman=VM_PODMAN, shell="/bin/bash")
    render_dir = workdir / "units"
    write_tree_atomic(render_dir, render_unit_tree(core))
    # As the README: setup-users.sh (the rootless users), then units, tmpfiles, modules.
    install_units(machine, render_dir)
    log("deploy: users and units installed")
    # Like the NixOS tests: the CLI on the machine, the deployed spec at SPEC_PATH.
    install_cli(machine, checkout_root())
    log("deploy: CLI installed")

    # One transfer: the spec, the test token in every environmentFile and the API key in every
    # apiKeyFile (root-only, in root-only folders), the fake CDI spec.
    files: dict[str, tuple[bytes, int]] = {}
    dirs: dict[str, int] = {}
    spec_text = spec_toml(scenario.deployed_instances(), ["deployed by the VM harness"])
    files[SPEC_PATH] = (spec_text.encode(), 0o644)
    enabled = scenario.spec.enabled().values()
    secrets = {i.environment_file: f"HF_TOKEN={fx['token']}\n" for i in enabled if i.environment_file}
    secrets |= {i.api_key_file: f"{fx['apiKey']}\n" for i in enabled if i.api_key_file}
    for path, content in secrets.items():
        files[path] = (content.encode(), 0o600)
        dirs[str(Path(path).parent)] = 0o700
    # Like `install -d -m 0700`: an existing folder gets the mode too.
    commands = [f"chmod 0700 {shlex.quote(d)}" for d in sorted(dirs)]
    if scenario.options.get("fakeCdi"):
        fake = fx["fakeCdi"]
        dirs["/etc/cdi"] = 0o755
        for spec_name, cdi_spec in fake["specs"].items():
            files[f"/etc/cdi/{spec_name}"] = (json.dumps(cdi_spec, indent=2).encode(), 0o644)
        # The fake devices' nodes exist on the host, as /dev/nvidia* do (rootless crun bind-mounts
        # them), at every boot: a tmpfiles rule, the same as nixos-tests/default.nix declares (a node
        # made once with mknod was gone after the rootless scenario's reboot and the units failed).
        files[FAKE_GPU_TMPFILES] = (fake_node_rules(fake["nodes"]).encode(), 0o644)
        commands.append(f"systemd-tmpfiles --create {FAKE_GPU_TMPFILES}")
    machine.put_files(files, dirs)
    images = sorted({inst.image for inst in enabled} | {DEFAULT_IMAGE})
    commands.append(tag_mock_image_command(images))
    machine.succeed(" && ".join(commands))
    # Once per rootless user (instances without a user of their own share one storage), unless all
    # of the user's instances load the image themselves (imageFile: their image unit's podman load).
    for user_name, user in sorted(core.users.items()):
        refs = sorted({
            f.image.reference
            for name, f in core.instances.items()
            if f.podman_user is not None and f.podman_user.name == user_name
            and scenario.spec.instances[name].image_file is None
        })  # fmt: skip
        if refs:
            tag_mock_image_as(machine, user, refs)
            log(f"deploy: mock image in {user_name}'s storage")

    if scenario.options.get("firewall"):
        # NixOS's firewall is on by default and opens the module's firewallPorts; here the same ports.
        apply_firewall(machine, core.firewall_ports)

    if scenario.options.get("lockKernelModules"):
        lock_module_loading_at_boot(machine, sorted(
            unit
            for f in core.instances.values()
            for unit in (f.image_service_name, f.model_service_name, f.service_name)
            if unit is not None
        ))  # fmt: skip

    units = [core.instances[name].service_name for name in sorted(core.instances)]
    if units:
        machine.succeed("systemctl enable " + " ".join(units))
        machine.succeed("systemctl start --no-block " + " ".join(units))
    log("deploy: units started")
    return core


def podman_of(core: CoreResult) -> Callable[[str], str]:
    """`podman_of(instance)`: the shell words that run that instance's podman (root's, or its
    rootless user's), for scenario scripts."""

    def command(name: str) -> str:
        user = core.instances[name].podman_user
        return "podman" if user is None else shlex.join(user_podman_argv(user))

    return command


def run_scenario(machine: Any, name: str) -> None:
    """Boot (if needed), deploy and run one scenario script against `machine`."""
    from .vm import script_globals

    scenario = load_scenario(name)
    if not machine.is_up():
        machine.start()
    with tempfile.TemporaryDirectory(prefix=f"tgi-scenario-{name}-") as tmp:
        core = deploy(machine, scenario, Path(tmp))
    env = script_globals([machine])
    env.update(
        spec=scenario.deployed_instances(),
        TOKEN=fixtures()["token"],
        API_KEY=fixtures()["apiKey"],
        podman_of=podman_of(core),
    )
    source = scenario.script.read_text()
    exec(compile(source, str(scenario.script), "exec"), env)
