#!/usr/bin/env python3
"""Reliability of the rootless default: COLD_STARTS consecutive cold starts of one rootless instance
(the shared user, nothing set but model and port) in the Debian VM (QEMU TCG), against the mock image.

A cold start: the unit stopped, then the user's systemd manager stopped too (user@<uid>.service: its
pause process, which holds the user's namespaces, and every process of the user go with it), then
`systemctl start` of the main unit, which pulls the manager in again and makes new namespaces. Each start
is given START_LIMIT seconds to become active and answer /health with 200. Prints how many became healthy,
the spread of start-to-healthy times (min, median, max) and, for a start that did not, the unit's state and
the last lines of its journal.

Run: .venv/bin/python benchmarks/rootless_starts.py   (about 15 min)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tgi_nix.generate.render import render_unit_tree
from tgi_nix.nix.bridge import evaluate
from tgi_nix.spec.loader import parse_spec
from tgi_nix.testing.vm import Machine, ensure_image, install_units, tag_mock_image_as

COLD_STARTS = 20
START_LIMIT = 180
UNIT = "huggingface-tgi-cold.service"
SPEC = {"instances": {"cold": {"model": "acme/cold", "port": 8080, "environment": {"TGI_MOCK_LOAD_DELAY": "3"}}}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=COLD_STARTS, help=f"cold starts (default {COLD_STARTS})")
    starts = parser.parse_args().starts
    spec = parse_spec(SPEC)
    core = evaluate(spec, podman="/usr/bin/podman")
    facts = core.instances["cold"]
    user = facts.podman_user
    if user is None:
        raise SystemExit("the default instance is not rootless")
    ensure_image()
    times: list[float] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, Machine(name="cold") as machine:
        render = Path(tmp) / "units"
        for rel, text in render_unit_tree(core).items():
            (render / rel).parent.mkdir(parents=True, exist_ok=True)
            (render / rel).write_text(text)
        machine.start()
        install_units(machine, render)
        tag_mock_image_as(machine, user, [facts.image.reference])
        # First start downloads into the cache; the cold starts then measure starting, not downloading.
        machine.succeed(f"systemctl start {UNIT}", timeout=600)
        for i in range(starts):
            machine.succeed(f"systemctl stop {UNIT}", f"systemctl stop user@{user.uid}.service", timeout=300)
            machine.succeed(f"! pgrep -u {user.name} >/dev/null")
            t0 = time.monotonic()
            status, _ = machine.execute(
                f"timeout {START_LIMIT} systemctl start {UNIT} && curl -fsS --max-time 5 http://127.0.0.1:8080/health",
                timeout=START_LIMIT + 30,
            )
            elapsed = time.monotonic() - t0
            if status == 0:
                times.append(elapsed)
                print(f"start {i + 1:2}: healthy after {elapsed:.1f} s", flush=True)
            else:
                _, state = machine.execute(f"systemctl show -P ActiveState,Result {UNIT} | paste -sd' '")
                _, journal = machine.execute(f"journalctl -b -u {UNIT} -n 8 --no-pager -o cat")
                failures.append(f"start {i + 1}: {state.strip()} after {elapsed:.1f} s\n{journal}")
                print(f"start {i + 1:2}: NOT healthy within {START_LIMIT} s ({state.strip()})", flush=True)
                machine.execute(f"systemctl stop {UNIT}; systemctl reset-failed {UNIT}")

    print()
    print(f"healthy: {len(times)} of {starts} cold starts (limit {START_LIMIT} s each)")
    if times:
        print(f"start-to-healthy: min {min(times):.1f} s, median {statistics.median(times):.1f} s, "
              f"max {max(times):.1f} s")
    for failure in failures:
        print(failure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
