#!/usr/bin/env python3
"""Exposure scores (`systemd-analyze security --offline=true`) of the units rendered from every example
spec, beside two anchors scored in the same run (0 = locked down, 10 = unprotected): a bare `podman run`
unit (no sandboxing at all) and a unit shaped like the one nixpkgs' `virtualisation.oci-containers`
writes (Type=notify, NotifyAccess=all, Delegate, cidfile pre/post commands; no sandboxing directives,
as in nixpkgs 25.05-26.05: the fair anchor for "what a NixOS user gets without this module").

Prints one line per unit of every example and of an instance that sets nothing but its model (each
option's default): its score as written (rootless unless the spec says `rootful = true`) beside the
same unit with `rootful = true`, then the worst of each column and both anchors. Goal (issue 13): every
unit as written <= 3.0.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from tgi_nix.generate.render import render_unit_tree
from tgi_nix.nix.bridge import evaluate
from tgi_nix.spec.loader import parse_spec

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


def _rootful(data: dict[str, Any]) -> dict[str, Any]:
    """The same spec with every instance rootful (user and uid do not apply there)."""
    return {
        "instances": {
            name: {**{k: v for k, v in inst.items() if k not in ("user", "uid")}, "rootful": True}
            for name, inst in data["instances"].items()
        }
    }


def _kind(facts: Any, unit: str) -> str:
    return {facts.service_name: "main", facts.image_service_name: "image", facts.model_service_name: "model"}[unit]


def _scores(data: dict[str, Any], source: str, tmp: Path) -> dict[tuple[str, str], tuple[float, str, bool]]:
    """(instance, unit kind) -> (score, verdict, rootless) for every unit the spec renders."""
    core = evaluate(parse_spec(data, source), podman="/usr/bin/podman")
    out: dict[tuple[str, str], tuple[float, str, bool]] = {}
    files = render_unit_tree(core)
    for name, facts in sorted(core.instances.items()):
        for unit in (facts.service_name, facts.image_service_name, facts.model_service_name):
            if unit is None:
                continue
            path = tmp / f"{source}-{'rootless' if facts.rootless else 'rootful'}" / unit
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[f"systemd/{unit}"])
            value, verdict = score(path)
            out[(name, _kind(facts, unit))] = (value, verdict, facts.rootless)
    return out


def main() -> int:
    # Every example as written, and an instance with nothing but its model and port (the required
    # options; every other one at its default).
    specs = {p.name: tomllib.loads(p.read_text()) for p in sorted((REPO / "examples").glob("*.toml"))}
    specs["(defaults)"] = {"instances": {"default": {"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "port": 8080}}}
    rows: list[tuple[str, str, str, tuple[float, str, bool], tuple[float, str, bool]]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for source, data in specs.items():
            as_written = _scores(data, source.removesuffix(".toml"), tmp)
            forced = _scores(_rootful(data), source.removesuffix(".toml") + "-forced", tmp)
            for (name, kind), value in as_written.items():
                rows.append((source, name, kind, value, forced[(name, kind)]))
        bare = tmp / "bare-podman.service"
        bare.write_text(BARE_UNIT)
        baseline, baseline_verdict = score(bare)
        oci = tmp / "podman-tgi.service"
        oci.write_text(OCI_CONTAINERS_UNIT)
        oci_score, oci_verdict = score(oci)

    print(f"{'spec':<20} {'instance':<10} {'unit':<6} {'as written':<22} {'rootful = true':<16}")
    for source, name, kind, (value, verdict, rootless), (r_value, r_verdict, _) in rows:
        written = f"{value:4.1f} {verdict} ({'rootless' if rootless else 'rootful'})"
        print(f"{source:<20} {name:<10} {kind:<6} {written:<22} {r_value:4.1f} {r_verdict}")
    print()
    worst = max(rows, key=lambda r: r[3][0])
    worst_rootful = max(rows, key=lambda r: r[4][0])
    print(f"{'worst unit as written:':<28} {worst[3][0]:.1f} {worst[3][1]} ({worst[0]}, {worst[1]}, {worst[2]})"
          f"   goal <= 3.0: {'met' if worst[3][0] <= 3.0 else 'NOT met'}")
    print(f"{'worst unit, rootful = true:':<28} {worst_rootful[4][0]:.1f} {worst_rootful[4][1]}")
    print(f"{'bare podman unit:':<28} {baseline:.1f} {baseline_verdict}")
    print(f"{'oci-containers unit:':<28} {oci_score:.1f} {oci_verdict}   (nixpkgs virtualisation.oci-containers shape)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
