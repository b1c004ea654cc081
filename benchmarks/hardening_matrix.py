#!/usr/bin/env python3
"""Which stricter systemd directives does podman survive? Measured in the Debian VM.

For every directive the generated unit leaves loosened (see the comments in core.nix), this boots one VM,
installs the units of a one-instance spec, adds the directive as a drop-in and checks whether the
instance still becomes healthy (and stops cleanly). It prints, per directive, works/BREAKS with the
first error line from the journal, and the exposure score the unit would have with the directive added
(systemd-analyze security --offline=true on the host). This is the proof behind docs/hardening.md.

Run: .venv/bin/python benchmarks/hardening_matrix.py [--rootless]   (about 1 min per directive under TCG)
`--rootless` measures the rootless unit (the instance runs as a dedicated user) and its own candidates.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tgi_nix.generate.render import render_unit_tree
from tgi_nix.nix.bridge import evaluate, user_podman_argv
from tgi_nix.spec.loader import parse_spec
from tgi_nix.testing.vm import (
    Machine,
    ensure_image,
    install_units,
    tag_mock_image,
    tag_mock_image_as,
)

UNIT = "huggingface-tgi-probe"
PROBE = {"model": "acme/probe", "port": 8080, "environment": {"TGI_MOCK_LOAD_DELAY": "1"}}
ROOTLESS = {"user": "tgi-probe"}
ROOTFUL = {"rootful": True}

# Directive -> value that would tighten the unit further (each loosened in core.nix with a reason).
CANDIDATES: dict[str, str] = {
    "ProtectKernelTunables": "true",
    "ProtectControlGroups": "true",
    "ProtectHostname": "true",
    "PrivateDevices": "true",
    "PrivateUsers": "true",
    "PrivateNetwork": "true",
    "RestrictNamespaces": "true",
    "ProcSubset": "pid",
    "MemoryDenyWriteExecute": "true",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "~CAP_SYS_ADMIN",
}
# The rootless unit's own loosened directives (core.nix, rootlessHardening and the shared ones).
ROOTLESS_CANDIDATES: dict[str, str] = {
    "ProtectHostname": "true",
    "PrivateUsers": "true",
    "PrivateNetwork": "true",
    "RestrictNamespaces": "true",
    "MemoryDenyWriteExecute": "true",
    "IPAddressDeny": "any",
    "SystemCallFilter": "@system-service",
}
SCORE_RE = re.compile(r"Overall exposure level for \S+: ([0-9.]+)")


def exposure(unit_text: str, extra: str | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{UNIT}.service"
        path.write_text(unit_text + (f"\n[Service]\n{extra}\n" if extra else ""))
        out = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--no-pager", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        match = SCORE_RE.search(out.stdout + out.stderr)
        return float(match.group(1)) if match else float("nan")


def try_directive(machine: Machine, directive: str | None, podman: str) -> tuple[bool, str, float]:
    dropin = f"/run/systemd/system/{UNIT}.service.d"
    machine.succeed(f"rm -rf {dropin}; mkdir -p {dropin}")
    if directive:
        machine.succeed(f"printf '[Service]\\n{directive}\\n' > {dropin}/probe.conf")
    machine.succeed("systemctl daemon-reload", f"systemctl reset-failed {UNIT}.service || true")
    cursor = machine.succeed(
        "journalctl -n0 --show-cursor --no-pager | tail -n1 | sed 's/^-- cursor: //'"
    ).strip()
    t0 = time.monotonic()
    code, _ = machine.execute(f"timeout 240 systemctl start {UNIT}.service", timeout=300)
    healthy = code == 0 and machine.execute("curl -fsS --max-time 5 http://127.0.0.1:8080/health")[0] == 0
    seconds = time.monotonic() - t0
    stop_ok = machine.execute(f"timeout 120 systemctl stop {UNIT}.service", timeout=150)[0] == 0
    leftovers = machine.succeed(f"{podman} ps -aq").strip()
    if leftovers:
        machine.execute(f"{podman} rm -f -a")
    ok = healthy and stop_ok and not leftovers
    detail = f"healthy in {seconds:.0f} s" if ok else ""
    if not ok:
        log = machine.succeed(
            f"journalctl --after-cursor='{cursor}' --no-pager -o cat | "
            "grep -iE 'error|denied|not permitted|read-only|failed|EPERM|EROFS|SIGSYS' | head -n 3 || true"
        )
        detail = (
            " | ".join(line.strip() for line in log.splitlines()) or f"start rc={code}, stop ok={stop_ok}"
        )
        if leftovers:
            detail += " | container left behind"
    return ok, detail, seconds


def main() -> int:
    rootless = "--rootless" in sys.argv[1:]
    spec = parse_spec({"instances": {"probe": {**PROBE, **(ROOTLESS if rootless else ROOTFUL)}}})
    core = evaluate(spec, podman="/usr/bin/podman")
    files = render_unit_tree(core)
    podman = "podman"
    if rootless:
        podman = shlex.join(user_podman_argv(core.users[str(ROOTLESS["user"])]))
    unit_text = files[f"systemd/{UNIT}.service"]
    ensure_image()
    with tempfile.TemporaryDirectory() as tmp, Machine(name="hardening") as machine:
        render = Path(tmp) / "units"
        render.mkdir()
        for rel, text in files.items():
            (render / rel).parent.mkdir(parents=True, exist_ok=True)
            (render / rel).write_text(text)
        machine.start()
        install_units(machine, render)
        image = spec.instances["probe"].image
        if rootless:
            tag_mock_image_as(machine, core.users[str(ROOTLESS["user"])], [image])
        else:
            tag_mock_image(machine, image)
        machine.succeed(f"systemctl start {UNIT}-image.service")

        base_ok, base_detail, _ = try_directive(machine, None, podman)
        print(
            f"{'generated unit (baseline)':<38} {'works' if base_ok else 'BREAKS':<7} {exposure(unit_text, None):4.1f}  {base_detail}"
        )
        if not base_ok:
            return 1
        for name, value in (ROOTLESS_CANDIDATES if rootless else CANDIDATES).items():
            directive = f"{name}={value}"
            ok, detail, _ = try_directive(machine, directive, podman)
            score = exposure(unit_text, directive)
            print(
                f"{'+ ' + directive:<38} {'works' if ok else 'BREAKS':<7} {score:4.1f}  {detail}", flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
