"""Build (once) and cache a Debian trixie VM image with systemd + podman 5 and the mock TGI image imported.

Layout of one cache entry, `$TGI_NIX_CACHE/vm/<key>/` (default cache `~/.cache/tgi-nix`):
`root.raw` (sparse ext4, read-only; machines boot copy-on-write overlays of it), `vmlinuz`, `initrd.img`,
`image.json` (versions and build timings). The key hashes everything that goes into the image, so a second
call returns at once; a build happens in a temporary folder that is renamed into place when complete.

Run `python -m tgi_nix.testing.vm --help` for the command line (build, print the path, install host tools).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import guest, mockimage, rootfs
from .errors import VmError, log, stage
from .host import cache_dir, debian_mirror, ensure_host_tools
from .rootfs import PACKAGES, SUITE, customize, mmdebstrap_rootfs

if TYPE_CHECKING:
    from ...nix.facts import PodmanUser

# Bump when the build steps change in a way the hashed inputs do not show.
BUILD_VERSION = "2"
ROOT_SIZE = "6G"
KEEP_IMAGES = 3


@dataclass(frozen=True)
class VmImage:
    """A built image: boot `kernel` + `initrd` with an overlay on top of `root` (never write to it)."""

    directory: Path
    key: str

    @property
    def root(self) -> Path:
        return self.directory / "root.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    def info(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.directory / "image.json").read_text())
        return data


def shared_user_setup() -> tuple[str, PodmanUser]:
    """render-units' setup-users.sh for an instance that sets no user, and that user (the shared
    `huggingface-tgi`): the image build runs the script and imports the mock into the user's storage,
    so scenarios of the rootless default find it there instead of importing it again (~2 min under TCG)."""
    from ...nix.bridge import evaluate  # the Nix core; only needed to build or key the image
    from ...spec.loader import parse_spec

    core = evaluate(parse_spec({"instances": {"probe": {"model": "acme/probe", "port": 8080}}}))
    user = core.instances["probe"].podman_user
    if core.setup_users_script is None or user is None:
        raise VmError("the default instance is not rootless: no shared user to provision")
    return core.setup_users_script, user


def image_key() -> str:
    """Hash of every input of the image: packages, guest files (guest.py), mock image, build version,
    the shared rootless user's setup."""
    h = hashlib.sha256()
    parts = [
        BUILD_VERSION,
        SUITE,
        ROOT_SIZE,
        *PACKAGES,
        Path(guest.__file__).read_text(),
        Path(rootfs.__file__).read_text(),
        mockimage.mock_key(),
        shared_user_setup()[0],
    ]
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def ensure_image(rebuild: bool = False) -> VmImage:
    """Return the cached image for the current inputs, building it first when needed."""
    key = image_key()
    vm_dir = cache_dir() / "vm"
    final = vm_dir / key
    if not rebuild and (final / "image.json").is_file():
        os.utime(final)  # marks it used, for _prune
        return VmImage(final, key)
    ensure_host_tools()
    vm_dir.mkdir(parents=True, exist_ok=True)
    with _locked(vm_dir / ".lock"):
        if not rebuild and (final / "image.json").is_file():
            return VmImage(final, key)  # another process built it while we waited
        work = vm_dir / f".build-{key}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            _build(work, key)
            if final.exists():
                shutil.rmtree(final)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _prune(vm_dir, keep=KEEP_IMAGES)
    return VmImage(final, key)


def _prune(vm_dir: Path, keep: int) -> None:
    """Delete all but the `keep` most recently used images (each holds ~0.7 GB)."""
    images = sorted(
        (d for d in vm_dir.iterdir() if (d / "image.json").is_file()), key=lambda d: d.stat().st_mtime
    )
    for old in images[:-keep]:
        log(f"removing old VM image {old}")
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(work: Path, key: str) -> None:
    t0 = time.monotonic()
    mirror = debian_mirror()
    timings: dict[str, float] = {}
    log(f"building VM image {key} (Debian {SUITE} from {mirror}) in {work}")
    debs = cache_dir() / "debs" / SUITE

    def timed(name: str) -> float:
        timings[name] = round(time.monotonic() - t_stage, 1)
        return timings[name]

    t_stage = time.monotonic()
    with stage("mock TGI container image (mmdebstrap --variant=extract)"):
        mockimage.build_mock_tarball(work, mirror, work / "tgi-mock.tar")
    timed("mock_image")

    root_dir = work / "rootfs"
    t_stage = time.monotonic()
    with stage("root file system (mmdebstrap)"):
        mmdebstrap_rootfs(root_dir, mirror, work, debs)
    timed("mmdebstrap")

    t_stage = time.monotonic()
    with stage("image tweaks, kernel, shrinking"):
        kver = customize(root_dir, work)
    timed("customize")

    t_stage = time.monotonic()
    with stage(f"mkfs.ext4 -d ({ROOT_SIZE}, sparse)"):
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root_dir), str(work / "root.raw"), ROOT_SIZE],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(root_dir)
    timed("mkfs")

    t_stage = time.monotonic()
    with stage("provisioning boot (podman import of the mock image)"):
        versions = _provision(work)
    timed("provision")

    (work / "root.raw").chmod(0o444)
    info = {
        "key": key,
        "suite": SUITE,
        "mirror": mirror,
        "kernel": kver,
        "packages": list(PACKAGES),
        "versions": versions,
        "timings_s": timings,
        "build_seconds": round(time.monotonic() - t0, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (work / "image.json").write_text(json.dumps(info, indent=2) + "\n")
    log(f"VM image {key} built in {info['build_seconds']} s")


def _provision(work: Path) -> dict[str, str]:
    """Boot the fresh image once, writable: import the mock image, record versions, power off cleanly."""
    from ...nix.bridge import user_podman_argv
    from .machine import Machine  # machine imports this module

    image = VmImage(work, "provisioning")
    versions: dict[str, str] = {}
    with Machine(image=image, name="provision", writable_root=True) as m:
        m.start()
        state = m.execute("systemctl is-system-running --wait", timeout=300)[1].strip()
        if state != "running":
            failed = m.execute("systemctl --failed --no-legend --plain")[1]
            raise VmError(f"the fresh image booted into state {state!r}; failed units:\n{failed}")
        for name, command in {
            "podman": "podman --version",
            "systemd": "systemctl --version | head -n1",
            "kernel": "uname -r",
            "crun": "crun --version | head -n1",
            "conmon": "conmon --version | head -n1",
            "netavark": "/usr/lib/podman/netavark --version",
            "python3": "python3 --version",
        }.items():
            versions[name] = m.succeed(command).strip()
        t0 = time.monotonic()
        m.succeed("tgi-mock-import >/dev/null", timeout=600)
        versions["podman_import_seconds"] = f"{time.monotonic() - t0:.1f}"
        log(f"podman import of the mock image: {versions['podman_import_seconds']} s")
        m.succeed("podman image exists " + mockimage.IMAGE_REF, "podman info >/dev/null")
        t0 = time.monotonic()
        m.succeed(
            f"podman save --format docker-archive -o {mockimage.ARCHIVE} {mockimage.IMAGE_REF}",
            f"chmod 0644 {mockimage.ARCHIVE}",
            timeout=600,
        )
        versions["podman_save_seconds"] = f"{time.monotonic() - t0:.1f}"
        log(f"podman save of the mock image (for imageFile): {versions['podman_save_seconds']} s")
        # The shared rootless user, made by render-units' own script (deploy runs it again and finds
        # nothing to change), with the mock in its storage.
        script, user = shared_user_setup()
        setup = work / "setup-users.sh"
        setup.write_text(script)
        m.copy_from_host(setup, "/root/setup-users.sh")
        t0 = time.monotonic()
        as_user = [*user_podman_argv(user)[:-1]]
        m.succeed(
            "bash /root/setup-users.sh && rm /root/setup-users.sh",
            f"install -d -m 0700 -o {user.name} -g {user.name} {shlex.quote(user.home)}",
            f"systemctl start user@{user.uid}.service",
            shlex.join([*as_user, "/usr/local/sbin/tgi-mock-import", mockimage.IMAGE_REF]) + " >/dev/null",
            shlex.join([*as_user, "podman", "image", "exists", mockimage.IMAGE_REF]),
            f"pid=$(cat {user.runtime_dir}/libpod/tmp/pause.pid 2>/dev/null) && kill $pid || true",
            timeout=900,
        )
        versions["rootless_import_seconds"] = f"{time.monotonic() - t0:.1f}"
        log(f"the shared user {user.name} and its copy of the mock: {versions['rootless_import_seconds']} s")
        m.succeed("journalctl --rotate --vacuum-files=1 >/dev/null 2>&1 || true", "sync", "fstrim -a || true")
        m.shutdown()
    return versions
