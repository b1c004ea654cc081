"""A registry-free stand-in for the TGI container image: Debian python3 + curl + the mock package.

The real image is `ghcr.io/huggingface/text-generation-inference`; VM tests have no network, so they run this
one instead, tagged with the real name (`provision.tag_mock_image`). Like the real image it has curl (for
`--health-cmd`), `PORT=80`, `HF_HOME=/data`, `text-generation-launcher` as its entrypoint and
`text-generation-server` (its `download-weights`) on PATH.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

SUITE = "trixie"
PACKAGES = ("python3", "curl", "ca-certificates", "dash", "coreutils")
IMAGE_REF = "localhost/tgi-mock:latest"
# The same image as a `podman save` archive (docker-archive, named IMAGE_REF) in the VM image, for
# instances that load theirs with `imageFile`, as the NixOS tests load theirs (nixos-tests/default.nix).
ARCHIVE = "/opt/tgi-mock-image.tar"
# The mock package (tgi_nix/mock, standard library only), copied as a folder and run with `python3 -m`;
# its imports are relative, so the package name in the image does not matter.
MOCK_PACKAGE = Path(__file__).resolve().parents[2] / "mock"
MOCK_ROOT = "/opt/tgi-mock"
MOCK_MODULE = "tgi_nix_mock"

LAUNCHER = f"""#!/bin/sh
export PYTHONPATH={MOCK_ROOT}
exec python3 -m {MOCK_MODULE} "$@"
"""
# TGI's launcher runs `text-generation-server download-weights ...` from the same image; so may a unit.
SERVER = f"""#!/bin/sh
export PYTHONPATH={MOCK_ROOT}
exec python3 -m {MOCK_MODULE}.server "$@"
"""
# Byte-compile Python's standard library and the mock inside the image. --variant=extract runs no
# maintainer scripts, so Debian's py3compile never did: without .pyc files every container start
# (each a fresh layer) compiled every module it imports again, 0.75 s natively instead of 0.16 s and
# tens of seconds under TCG, on every start, restart and download-weights run. unchecked-hash: the
# files never change inside the image, and the result does not depend on file times.
COMPILE = ("python3", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash")
COMPILE_DIRS = ("/usr/lib/python3.13", MOCK_ROOT)
# name in /usr/local/bin -> script
COMMANDS = {"text-generation-launcher": LAUNCHER, "text-generation-server": SERVER}

# Never needed by a python3 + curl container.
_DROP = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/lib/x86_64-linux-gnu/gconv",
    "usr/lib/python3.13/test",
    "usr/lib/python3.13/pydoc_data",
    "usr/lib/python3.13/idlelib",
    "usr/lib/python3.13/ensurepip",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log",
)


def mock_sources() -> dict[str, bytes]:
    """The mock package's files (relative path -> content), in a stable order."""
    return {
        path.relative_to(MOCK_PACKAGE).as_posix(): path.read_bytes()
        for path in sorted(MOCK_PACKAGE.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def install_mock(root: Path) -> Path:
    """Write the mock package under `root` (a root file system) as MOCK_ROOT/MOCK_MODULE; returns that folder."""
    package = root / MOCK_ROOT.lstrip("/") / MOCK_MODULE
    for rel, data in mock_sources().items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_bytes(data)
    return package


def mock_key() -> str:
    """Changes whenever the mock image content would change."""
    h = hashlib.sha256()
    commands = (f"{name}\0{script}" for name, script in COMMANDS.items())
    for part in (SUITE, *PACKAGES, *commands, "|".join(_DROP), " ".join((*COMPILE, *COMPILE_DIRS))):
        h.update(part.encode() + b"\0")
    for rel, data in mock_sources().items():
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def build_mock_rootfs(rootfs: Path, mirror: str) -> None:
    """Unpack the packages (no maintainer scripts: nothing in them matters here) and add the server."""
    # --variant=extract runs no dpkg, so it needs no essential set: 6 s and ~60 MB instead of ~200 MB.
    subprocess.run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=extract",
            "--components=main",
            "--include=" + ",".join(PACKAGES),
            SUITE,
            str(rootfs),
            mirror,
        ],
        check=True,
    )
    for link, target in (
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ):
        if (rootfs / target).is_dir() and not (rootfs / link).exists():
            (rootfs / link).symlink_to(target)
    for rel in _DROP:
        shutil.rmtree(rootfs / rel, ignore_errors=True)
    (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    (rootfs / "data").mkdir(exist_ok=True)
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (rootfs / "root").mkdir(mode=0o700, exist_ok=True)
    # ca-certificates' postinst never ran: assemble the bundle curl looks for.
    certs = sorted((rootfs / "usr/share/ca-certificates").rglob("*.crt"))
    bundle = rootfs / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(b"".join(c.read_bytes() for c in certs))
    install_mock(rootfs)
    for name, script in COMMANDS.items():
        command = rootfs / "usr/local/bin" / name
        command.parent.mkdir(parents=True, exist_ok=True)
        command.write_text(script)
        command.chmod(0o755)
    # The image's own python3 (3.13; the host's may differ), run natively in the tree: 3 s.
    subprocess.run(["chroot", str(rootfs), *COMPILE, *COMPILE_DIRS], check=True, stdout=subprocess.DEVNULL)


def build_mock_tarball(workdir: Path, mirror: str, tarball: Path) -> None:
    """Build the container root file system under `workdir` and pack it as `tarball` (for `podman import`)."""
    rootfs = workdir / "mock-rootfs"
    build_mock_rootfs(rootfs, mirror)

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(tarball, "w") as tar:
        for child in sorted(rootfs.iterdir()):
            tar.add(child, arcname=child.name, filter=as_root)
    shutil.rmtree(rootfs)
