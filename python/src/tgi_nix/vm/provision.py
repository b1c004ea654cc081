"""Put rendered units (and the CLI) into a machine; make the mock image answer to the real TGI image name."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path

from .machine import Machine
from .mockimage import IMAGE_REF


def install_units(machine: Machine, render_dir: str | Path) -> list[str]:
    """Copy `tgi-nix render-units` output into the machine and reload systemd.

    `DIR/systemd/*` goes to /etc/systemd/system/, `DIR/tmpfiles.d/*.conf` to /etc/tmpfiles.d/.
    Returns the unit file names installed.
    """
    root = Path(render_dir)
    units = sorted(p for p in (root / "systemd").glob("*") if p.is_file())
    tmpfiles = sorted((root / "tmpfiles.d").glob("*.conf"))
    for unit in units:
        machine.copy_from_host(unit, f"/etc/systemd/system/{unit.name}")
    for conf in tmpfiles:
        machine.copy_from_host(conf, f"/etc/tmpfiles.d/{conf.name}")
    machine.succeed("systemctl daemon-reload")
    if tmpfiles:
        machine.succeed(
            "systemd-tmpfiles --create " + " ".join(f"/etc/tmpfiles.d/{c.name}" for c in tmpfiles)
        )
    return [u.name for u in units]


def tag_mock_image(machine: Machine, image_ref: str) -> None:
    """Tag the mock as `image_ref`, so units that run it with `--pull=never` find it without a registry."""
    machine.succeed(f"podman tag {IMAGE_REF} {shlex.quote(image_ref)}")


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


def install_cli(machine: Machine, project_root: Path) -> None:
    """Install this checkout's `tgi-nix` (package + Nix core) as /usr/local/bin/tgi-nix in the machine."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    with tempfile.TemporaryDirectory(prefix="tgi-nix-cli-") as tmp:
        tree = Path(tmp) / "tgi-nix"
        shutil.copytree(project_root / "python/src/tgi_nix", tree / "python/src/tgi_nix", ignore=ignore)
        shutil.copytree(project_root / "modules/huggingface-tgi", tree / "modules/huggingface-tgi", ignore=ignore)
        wrapper = tree / "tgi-nix.sh"
        wrapper.write_text(CLI_WRAPPER)
        wrapper.chmod(0o755)
        machine.copy_from_host(tree, CLI_ROOT)
    machine.succeed(f"install -m 0755 {CLI_ROOT}/tgi-nix.sh /usr/local/bin/tgi-nix", "tgi-nix --version")
