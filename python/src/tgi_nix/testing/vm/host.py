"""Host side of the VM harness: required programs, the Debian mirror, the cache folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .errors import HostToolsMissing, VmError, log

# host program -> Debian package that ships it
HOST_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "zstd": "zstd",
}


def cache_dir() -> Path:
    return Path(os.environ.get("TGI_NIX_CACHE") or Path.home() / ".cache" / "tgi-nix")


def missing_host_packages() -> list[str]:
    """Debian packages to install so that the harness can build and boot images."""
    return sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})


def ensure_host_tools() -> None:
    missing = missing_host_packages()
    if missing:
        raise HostToolsMissing(
            "the VM harness needs these Debian packages on the host: "
            + " ".join(missing)
            + "\n  install them: apt-get install -y --no-install-recommends "
            + " ".join(missing)
            + "\n  or: python -m tgi_nix.testing.vm --install-host-deps"
        )
    if os.geteuid() != 0:
        raise VmError("building the VM image needs root (mmdebstrap into a directory, chroot for depmod)")


def install_host_deps() -> None:
    """For CI: apt-get install what `missing_host_packages` names (needs root)."""
    missing = missing_host_packages()
    if not missing:
        log("host tools: all present")
        return
    log("installing host packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True, env=env
    )


def debian_mirror() -> str:
    """The Debian mirror the host's apt uses (`TGI_NIX_DEBIAN_MIRROR` overrides), e.g. http://deb.debian.org/debian."""
    override = os.environ.get("TGI_NIX_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    apt = Path("/etc/apt")
    texts = [
        p.read_text(errors="replace")
        for p in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*"))]
        if p.is_file()
    ]
    for text in texts:
        for url in re.findall(r"(?:URIs:|^deb)\s+(?:\[[^]]*\]\s+)?(https?://\S+)", text, flags=re.M):
            if re.search(r"/debian/?$", url) and "security" not in url:
                return str(url).rstrip("/")
    return "http://deb.debian.org/debian"


def apt_sources(mirror: str, suite: str) -> list[str]:
    security = re.sub(r"/debian$", "/debian-security", mirror)
    return [
        f"deb {mirror} {suite} main",
        f"deb {mirror} {suite}-updates main",
        f"deb {security} {suite}-security main",
    ]
