"""A registry-free stand-in for the TGI container image: Debian python3 + curl + the mock server.

The real image is `ghcr.io/huggingface/text-generation-inference`; VM tests have no network, so they run this
one instead, tagged with the real name (`provision.tag_mock_image`). Like the real image it has curl (for
`--health-cmd`), `PORT=80`, `HF_HOME=/data` and `text-generation-launcher` as its entrypoint.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

from .errors import log

SUITE = "trixie"
PACKAGES = ("python3", "curl", "ca-certificates", "dash", "coreutils")
MOCK_SERVER = Path(__file__).resolve().parents[2] / "mock_server.py"
IMAGE_REF = "localhost/tgi-mock:latest"

LAUNCHER = '#!/bin/sh\nexec python3 /opt/tgi-mock/mock_server.py "$@"\n'

# Used only while the real mock server does not exist yet: enough for /health and the unit tests.
PLACEHOLDER_SERVER = '''"""Placeholder TGI mock: /health answers 503 for LOAD_SECONDS, then 200."""
import http.server, os, sys, time
port = int(os.environ.get("PORT", "80"))
args = sys.argv[1:]
if "--port" in args:
    port = int(args[args.index("--port") + 1])
t0 = time.monotonic()
load = float(os.environ.get("MOCK_LOAD_SECONDS", "2"))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = time.monotonic() - t0 >= load
        code = 200 if ok or self.path != "/health" else 503
        self.send_response(code); self.end_headers()
        self.wfile.write(b"" if code == 200 else b\'{"error":"unhealthy","error_type":"healthcheck"}\')
print("Starting Webserver", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
'''

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


def mock_server_source() -> bytes:
    """The mock server to bake in: the project's real one, or the placeholder until it exists."""
    if MOCK_SERVER.is_file():
        return MOCK_SERVER.read_bytes()
    _warn_placeholder()
    return PLACEHOLDER_SERVER.encode()


@functools.cache
def _warn_placeholder() -> None:
    log(f"warning: {MOCK_SERVER} does not exist yet, using a placeholder mock server")


def mock_key() -> str:
    """Changes whenever the mock image content would change."""
    h = hashlib.sha256()
    for part in (SUITE, *PACKAGES, LAUNCHER, "|".join(_DROP)):
        h.update(part.encode() + b"\0")
    h.update(mock_server_source())
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
    opt = rootfs / "opt/tgi-mock"
    opt.mkdir(parents=True, exist_ok=True)
    (opt / "mock_server.py").write_bytes(mock_server_source())
    launcher = rootfs / "usr/local/bin/text-generation-launcher"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(LAUNCHER)
    launcher.chmod(0o755)


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
