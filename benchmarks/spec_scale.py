#!/usr/bin/env python3
"""Time `tgi-nix validate` and `generate` for specs of 1, 10 and 100 instances.

Prints wall-clock figures (median of several runs of the real CLI, each a fresh process, so
interpreter start-up, nix-instantiate and systemd-analyze are all included). Goal from the
foundation issue: 100 instances validated in < 2 s on a 2-core machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5


def spec_text(count: int) -> str:
    parts = []
    for i in range(count):
        parts.append(
            f'[instances.i{i}]\nmodel = "org/model-{i}"\nport = {8000 + i}\n'
            f'gpus = [{i % 8}]\nenvironmentFile = "/run/secrets/tgi.env"\nmaxConcurrentRequests = 64\n'
        )
    return "\n".join(parts)


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    exe = str(Path(sys.executable).with_name("tgi-nix"))
    print(f"{'instances':>9}  {'validate (s)':>12}  {'generate (s)':>12}  (median of {RUNS})")
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, 10, 100):
            spec = Path(tmp) / f"spec-{count}.toml"
            spec.write_text(spec_text(count))
            out = Path(tmp) / f"out-{count}.nix"
            validate = statistics.median(timed([exe, "validate", "-q", str(spec)]) for _ in range(RUNS))
            generate = statistics.median(
                timed([exe, "generate", str(spec), "-o", str(out)]) for _ in range(RUNS)
            )
            print(f"{count:>9}  {validate:>12.3f}  {generate:>12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
