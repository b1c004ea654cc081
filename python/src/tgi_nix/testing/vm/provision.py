"""Put rendered units (and the CLI) into a machine; make the mock image answer to the real TGI image name."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from ...generate.render import SCRIPTS_SUBDIR, SETUP_USERS_NAME
from ...nix.bridge import DEFAULT_SCRIPTS_DIR, user_podman_argv
from ...nix.facts import PodmanUser
from .machine import Machine
from .mockimage import IMAGE_REF


def unit_tree_files(render_dir: str | Path, scripts_dir: str = DEFAULT_SCRIPTS_DIR) -> dict[str, tuple[bytes, int]]:
    """Where `tgi-nix render-units` output goes on a host, as the README tells a user: guest path ->
    (content, mode). `DIR/systemd/*` to /etc/systemd/system/, `DIR/tmpfiles.d/*.conf` to
    /etc/tmpfiles.d/, `DIR/modules-load.d/*.conf` to /etc/modules-load.d/, `DIR/scripts/*` to
    `scripts_dir` (0755, where render-units' --scripts-dir said), `DIR/setup-users.sh` to /root/."""
    root = Path(render_dir)
    files: dict[str, tuple[bytes, int]] = {}

    def put(source: Path, target: str, mode: int) -> None:
        files[target] = (source.read_bytes(), mode)

    for unit in sorted(p for p in (root / "systemd").glob("*") if p.is_file()):
        put(unit, f"/etc/systemd/system/{unit.name}", 0o644)
    for conf in sorted((root / "tmpfiles.d").glob("*.conf")):
        put(conf, f"/etc/tmpfiles.d/{conf.name}", 0o644)
    for conf in sorted((root / "modules-load.d").glob("*.conf")):
        put(conf, f"/etc/modules-load.d/{conf.name}", 0o644)
    for script in sorted((root / SCRIPTS_SUBDIR).glob("*")):
        put(script, f"{scripts_dir}/{script.name}", 0o755)
    if (root / SETUP_USERS_NAME).is_file():
        put(root / SETUP_USERS_NAME, f"/root/{SETUP_USERS_NAME}", 0o755)
    return files


def install_units(machine: Machine, render_dir: str | Path, scripts_dir: str = DEFAULT_SCRIPTS_DIR) -> list[str]:
    """Install `tgi-nix render-units` output into the machine as the README tells a user to
    (`unit_tree_files`, one transfer), then: `setup-users.sh` (the rootless users, their subordinate
    ids and lingering; the tmpfiles rules chown to those users), the modules-load.d list loaded now
    (and at every boot: the image preloads no module of its own), daemon-reload, the tmpfiles rules
    applied. Returns the unit file names installed.
    """
    files = unit_tree_files(render_dir, scripts_dir)
    machine.put_files(files, {scripts_dir: 0o755})
    commands = []
    if f"/root/{SETUP_USERS_NAME}" in files:
        commands.append(f"/root/{SETUP_USERS_NAME}")
    if any(path.startswith("/etc/modules-load.d/") for path in files):
        commands.append("systemctl restart systemd-modules-load.service")
    commands.append("systemctl daemon-reload")
    tmpfiles = [path for path in files if path.startswith("/etc/tmpfiles.d/")]
    if tmpfiles:
        commands.append("systemd-tmpfiles --create " + " ".join(tmpfiles))
    machine.succeed(" && ".join(commands))
    return sorted(Path(path).name for path in files if path.startswith("/etc/systemd/system/"))


LOCK_MODULES_UNIT = "lock-kernel-modules.service"


def lock_module_loading_at_boot(machine: Machine, before: Sequence[str]) -> None:
    """From the next boot on, forbid loading kernel modules once systemd-modules-load has run and
    before the units `before` start (`kernel.modules_disabled=1`, like NixOS's
    `security.lockKernelModules`, which locks a little later). A unit then starts only if the
    modules-load.d files loaded every module it needs: the kernel's on-demand loading, which
    ProtectKernelModules leaves working, is off. nixos-tests/default.nix declares the same unit."""
    unit = (
        "[Unit]\n"
        "Description=Lock kernel module loading before the TGI units start\n"
        "DefaultDependencies=no\n"
        "After=systemd-modules-load.service\n"
        f"Before={' '.join(before)}\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c 'echo 1 > /proc/sys/kernel/modules_disabled'\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    machine.succeed(
        f"cat > /etc/systemd/system/{LOCK_MODULES_UNIT} <<'EOF'\n{unit}EOF",
        f"systemctl daemon-reload && systemctl enable {LOCK_MODULES_UNIT}",
    )


# The table apply_firewall loads; named so a scenario can list or delete it.
FIREWALL_TABLE = "tgi-nix-firewall"


def apply_firewall(machine: Machine, tcp_ports: Sequence[int]) -> None:
    """Filter incoming traffic as NixOS's `networking.firewall` does, opening `tcp_ports`.

    On NixOS the firewall is on by default and the module puts the core's `firewallPorts` (the ports
    of instances with `openFirewall`) into `networking.firewall.allowedTCPPorts`; the Debian image has
    no firewall, so scenarios that test reachability load this one with the same ports. Like NixOS's
    (nftables flavour): loopback, replies and ICMP pass, new connections only to the open ports, the
    rest is dropped (no reject). Only the input hook, as there: forwarded traffic is not filtered.
    """
    allow = f"    tcp dport {{ {', '.join(str(p) for p in sorted(set(tcp_ports)))} }} accept\n" if tcp_ports else ""
    ruleset = (
        f"table inet {FIREWALL_TABLE} {{\n"
        "  chain input {\n"
        "    type filter hook input priority filter; policy drop;\n"
        '    iifname "lo" accept\n'
        "    ct state vmap { invalid : drop, established : accept, related : accept, new : jump input-allow,"
        " untracked : jump input-allow }\n"
        "  }\n"
        "  chain input-allow {\n"
        f"{allow}"
        "    icmp type echo-request accept\n"
        "    icmpv6 type != { nd-redirect, 139 } accept\n"
        "  }\n"
        "}\n"
    )
    machine.succeed(f"nft -f - <<'EOF'\n{ruleset}EOF")


def tag_mock_image_command(image_refs: Sequence[str]) -> str:
    """The command that tags root's mock as each of `image_refs` (one podman run)."""
    return f"podman tag {IMAGE_REF} " + " ".join(shlex.quote(ref) for ref in image_refs)


def tag_mock_image(machine: Machine, image_ref: str) -> None:
    """Tag the mock as `image_ref`, so units that run it with `--pull=never` find it without a registry."""
    machine.succeed(tag_mock_image_command([image_ref]))


def tag_mock_image_as(machine: Machine, user: PodmanUser, refs: list[str]) -> None:
    """Import the mock image into a rootless user's storage from the image's tarball (as root's copy
    was made; one `podman import`, about half of a `podman save` | `podman load` under TCG) and tag it."""
    uid = user.uid
    argv = user_podman_argv(user)
    as_user = shlex.join(argv)
    # tgi-mock-import runs /usr/bin/podman: as the user, with the user's HOME and runtime directory.
    import_as_user = shlex.join([*argv[:-1], "/usr/local/sbin/tgi-mock-import", IMAGE_REF])
    # setup-users.sh enabled lingering; the user's manager makes /run/user/<uid>.
    machine.wait_for_unit(f"user@{uid}.service", timeout=300)
    # The image build gave the shared user its copy already (image.shared_user_setup).
    machine.succeed(
        f"{as_user} image exists {IMAGE_REF} || {import_as_user} >/dev/null",
        *(f"{as_user} tag {IMAGE_REF} {shlex.quote(ref)}" for ref in refs),
        timeout=600,
    )
    # That podman left its pause process (holder of the user's namespaces) in this root shell's
    # unrestricted mount namespace; end it so the units start theirs, as after a boot.
    machine.succeed(f"pid=$(cat /run/user/{uid}/libpod/tmp/pause.pid 2>/dev/null) && kill $pid || true")


def reimport_mock_image(machine: Machine, image_ref: str = IMAGE_REF) -> None:
    """Import the mock again from /opt/tgi-mock.tar (~30 s under TCG), e.g. for imageFile tests."""
    machine.succeed(f"tgi-mock-import {shlex.quote(image_ref)} >/dev/null", timeout=600)


CLI_ROOT = "/opt/tgi-nix"
CLI_WRAPPER = f"""#!/bin/sh
# tgi-nix from the host's checkout (installed by the VM harness); Python deps are Debian packages.
export TGI_NIX_ROOT={CLI_ROOT}
export PYTHONPATH={CLI_ROOT}/python/src
exec python3 -m tgi_nix.cli "$@"
"""


def cli_files(project_root: Path) -> dict[str, tuple[bytes, int]]:
    """This checkout's `tgi-nix` (package + Nix core) under CLI_ROOT and its wrapper, as guest files."""
    files: dict[str, tuple[bytes, int]] = {}
    for sub in ("python/src/tgi_nix", "modules/huggingface-tgi"):
        for path in sorted((project_root / sub).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
                files[f"{CLI_ROOT}/{path.relative_to(project_root).as_posix()}"] = (path.read_bytes(), mode)
    files["/usr/local/bin/tgi-nix"] = (CLI_WRAPPER.encode(), 0o755)
    return files


def install_cli(machine: Machine, project_root: Path) -> None:
    """Install this checkout's `tgi-nix` (package + Nix core) as /usr/local/bin/tgi-nix in the machine."""
    machine.put_files(cli_files(project_root))
    machine.succeed("tgi-nix --version")
