"""The VM root file system: mmdebstrap of Debian trixie, then the image tweaks (see guest.py)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from . import guest, mockimage
from .errors import VmError
from .host import apt_sources

SUITE = "trixie"

PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "udev",
    "podman",
    "crun",
    "conmon",
    "netavark",
    "aardvark-dns",
    "iptables",
    "nftables",
    "slirp4netns",
    "passt",
    "uidmap",
    "catatonit",
    "curl",
    "ca-certificates",
    "python3",
    "iproute2",
    "kmod",
    "procps",
    "linux-image-amd64",
    "initramfs-tools",
    "zstd",
    "e2fsprogs",
    "netcat-openbsd",
    "util-linux",
    "less",
    # rootless podman under a system user: its user manager (linger) and session bus, as on NixOS.
    "libpam-systemd",
    "dbus-user-session",
    # `tgi-nix` itself in the guest (the doctor scenario): nix-instantiate and the CLI's Python deps.
    "nix-bin",
    "python3-pydantic",
    "python3-click",
    "python3-rich",
    "python3-yaml",
    "python3-jinja2",
    "python3-httpx",
    "python3-httpx-sse",
    "python3-prometheus-client",
)


def mmdebstrap_cache_args(debs: Path) -> list[str]:
    """Keep downloaded .debs between builds (the mmdebstrap manual's recipe): saves ~20 s per rebuild."""
    debs.mkdir(parents=True, exist_ok=True)
    return [
        "--skip=download/empty",
        "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
    ]


def mmdebstrap_rootfs(rootfs: Path, mirror: str, work: Path, debs: Path) -> None:
    # initramfs-tools reads these before the kernel's postinst builds the initrd: a small initrd boots faster.
    pre = work / "pre"
    (pre / "etc/initramfs-tools/conf.d").mkdir(parents=True)
    (pre / "etc/initramfs-tools/conf.d/tgi-nix.conf").write_text(guest.INITRAMFS_CONF)
    (pre / "usr/share/initramfs-tools/modules.d").mkdir(parents=True)
    (pre / "usr/share/initramfs-tools/modules.d/tgi-nix").write_text(
        "\n".join(guest.INITRAMFS_MODULES) + "\n"
    )
    excludes = [
        "/usr/share/doc/*",
        "/usr/share/man/*",
        "/usr/share/info/*",
        "/usr/share/locale/*",
        "/usr/share/lintian/*",
    ]
    cmd = [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        "--components=main",
        '--aptopt=APT::Install-Recommends "false"',
        *[f"--dpkgopt=path-exclude={p}" for p in excludes],
        "--include=" + ",".join(PACKAGES),
        f"--essential-hook=sync-in {pre} /",
        *mmdebstrap_cache_args(debs),
        SUITE,
        str(rootfs),
        *apt_sources(mirror, SUITE),
    ]
    subprocess.run(cmd, check=True)
    shutil.rmtree(pre)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def customize(rootfs: Path, work: Path) -> str:
    """Apply the image tweaks; move the kernel and initrd out. Returns the kernel version."""
    etc = rootfs / "etc"
    _write(etc / "fstab", "# root is mounted by the kernel command line; nothing else\n")
    _write(etc / "hostname", "machine\n")
    _write(etc / "hosts", guest.HOSTS)
    _write(etc / "modprobe.d/tgi-nix.conf", guest.MODPROBE_CONF)
    _write(etc / "machine-id", hashlib.md5(work.name.encode()).hexdigest() + "\n", 0o444)  # noqa: S324
    for unit in guest.MASKED_UNITS:
        link = etc / "systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (etc / "containers/networks").mkdir(parents=True, exist_ok=True)
    _write(rootfs / "usr/local/lib/tgi-nix/backdoor", guest.BACKDOOR_SCRIPT, 0o755)
    _write(etc / "systemd/system/tgi-nix-backdoor.service", guest.BACKDOOR_UNIT)
    wants = etc / "systemd/system/sysinit.target.wants/tgi-nix-backdoor.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.symlink_to("/etc/systemd/system/tgi-nix-backdoor.service")
    _write(rootfs / "usr/local/sbin/tgi-mock-import", guest.MOCK_IMPORT_SCRIPT, 0o755)
    shutil.copy2(work / "tgi-mock.tar", rootfs / "opt/tgi-mock.tar")
    (work / "tgi-mock.tar").unlink()
    mockimage.install_mock(rootfs)

    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise VmError("no kernel in the root file system (linux-image-amd64 missing?)")
    kver = kernels[-1].name.removeprefix("vmlinuz-")
    shutil.copy2(kernels[-1], work / "vmlinuz")
    shutil.copy2(rootfs / "boot" / f"initrd.img-{kver}", work / "initrd.img")
    for item in (rootfs / "boot").iterdir():
        if item.is_file() or item.is_symlink():
            item.unlink()

    moddir = rootfs / "lib/modules" / kver
    for rel in guest.UNUSED_MODULE_DIRS:
        shutil.rmtree(moddir / rel, ignore_errors=True)
    subprocess.run(["chroot", str(rootfs), "depmod", "-a", kver], check=True)
    # No modules-load.d file of the harness: the units' modules come from render-units' output,
    # installed as a user would (provision.install_units).

    for rel in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        target = rootfs / rel
        if target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    return kver
