#!/usr/bin/env python3
"""Exposure scores (`systemd-analyze security --offline=true`) of the units rendered from every example
spec, beside two anchors scored in the same run (0 = locked down, 10 = unprotected): a bare `podman run`
unit (no sandboxing at all) and a unit shaped like the one nixpkgs' `virtualisation.oci-containers`
writes (Type=notify, NotifyAccess=all, Delegate, cidfile pre/post commands; no sandboxing directives,
as in nixpkgs 25.05-26.05: the fair anchor for "what a NixOS user gets without this module").

Prints one line per unit, the worst score of rootful and of rootless (`user = ...`) units, and both
anchors. Goal from the hardening issue: worst <= 3.0 (neither mode gets there; see docs/hardening.md for
each floor and why).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tgi_nix.generate.render import render_unit_tree
from tgi_nix.nix.bridge import evaluate
from tgi_nix.spec.loader import load_spec

REPO = Path(__file__).resolve().parents[1]
SCORE_RE = re.compile(r"Overall exposure level for (?P<unit>\S+): (?P<score>[0-9.]+) (?P<verdict>\S+)")

BARE_UNIT = """[Unit]
Description=A bare podman unit, as typically written by hand

[Service]
ExecStart=/usr/bin/podman run --rm --name tgi -p 8080:80 ghcr.io/huggingface/text-generation-inference:3.3.7

[Install]
WantedBy=multi-user.target
"""


# The unit nixpkgs' oci-containers module renders for `virtualisation.oci-containers.containers.tgi`
# (shape from its source, see /work/shared/TGI-FACTS.md "NixOS"): Type=notify with
# --sdnotify=healthy, NotifyAccess=all, Delegate=true, pre-start rm, stop/rm by cidfile, Restart=always.
OCI_CONTAINERS_UNIT = """[Unit]
Description=Hugging Face TGI (virtualisation.oci-containers shape)
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=all
Delegate=true
Environment=PODMAN_SYSTEMD_UNIT=%n
ExecStartPre=-/usr/bin/podman rm -f tgi
ExecStart=/usr/bin/podman run --name=tgi --log-driver=journald --cidfile=/run/podman-tgi/ctr-id \
  --cgroups=enabled --sdnotify=healthy -d --replace --rm -p 8080:80 \
  --health-cmd=curl\x20-fsS\x20http://127.0.0.1:80/health \
  ghcr.io/huggingface/text-generation-inference:3.3.7
ExecStop=/usr/bin/podman stop --ignore --cidfile=/run/podman-tgi/ctr-id
ExecStopPost=-/usr/bin/podman rm -f --ignore --cidfile=/run/podman-tgi/ctr-id
Restart=always
TimeoutStartSec=0
TimeoutStopSec=120
RuntimeDirectory=podman-tgi

[Install]
WantedBy=multi-user.target
"""


def score(unit: Path) -> tuple[float, str]:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = SCORE_RE.search(out.stdout + out.stderr)
    if not match:
        raise SystemExit(f"no score for {unit}:\n{out.stdout}{out.stderr}")
    return float(match.group("score")), match.group("verdict")


def main() -> int:
    rows: list[tuple[str, str, float, str, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec_path in sorted((REPO / "examples").glob("*.toml")):
            core = evaluate(load_spec(spec_path), podman="/usr/bin/podman")
            rootless_units = {
                unit
                for facts in core.instances.values()
                if facts.rootless
                for unit in (facts.service_name, facts.image_service_name, facts.model_service_name)
                if unit is not None
            }
            for rel, text in sorted(render_unit_tree(core).items()):
                if not rel.endswith(".service"):
                    continue
                unit = Path(tmp) / spec_path.stem / Path(rel).name
                unit.parent.mkdir(parents=True, exist_ok=True)
                unit.write_text(text)
                value, verdict = score(unit)
                rows.append((spec_path.name, unit.name, value, verdict, unit.name in rootless_units))
        bare = Path(tmp) / "bare-podman.service"
        bare.write_text(BARE_UNIT)
        baseline, baseline_verdict = score(bare)
        oci = Path(tmp) / "podman-tgi.service"
        oci.write_text(OCI_CONTAINERS_UNIT)
        oci_score, oci_verdict = score(oci)

    width = max(len(r[1]) for r in rows)
    for spec_name, unit, value, verdict, rootless in rows:
        mode = "rootless" if rootless else "rootful"
        print(f"{spec_name:<20} {unit:<{width}}  {mode:<8} {value:4.1f} {verdict}")
    print()
    for mode, rootless in (("rootful", False), ("rootless", True)):
        of_mode = [r for r in rows if r[4] == rootless]
        if of_mode:
            worst = max(of_mode, key=lambda r: r[2])
            print(f"worst {mode + ' unit:':<15} {worst[2]:.1f} {worst[3]} ({worst[1]})")
    worst_all = max(rows, key=lambda r: r[2])
    print(f"{'bare podman unit:':<21} {baseline:.1f} {baseline_verdict}")
    print(f"{'oci-containers unit:':<21} {oci_score:.1f} {oci_verdict}   (nixpkgs virtualisation.oci-containers shape)")
    print(f"improvement (worst):  {baseline - worst_all[2]:.1f} points over the bare unit, "
          f"{oci_score - worst_all[2]:.1f} over the oci-containers unit (goal: worst <= 3.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
