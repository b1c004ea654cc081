"""Boot-to-shell time of the VM harness (QEMU TCG), and the time to multi-user.target.

Usage: python benchmarks/vm_boot.py [--runs N] [--smp N] [--memory MiB]
Builds the cached image first if needed (not counted). Prints one line per run and the median.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tgi_nix.testing.vm import Machine, ensure_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smp", type=int, default=2)
    parser.add_argument("--memory", type=int, default=1536)
    args = parser.parse_args()
    image = ensure_image()
    shells, ready = [], []
    for run in range(args.runs):
        with Machine(image=image, smp=args.smp, memory_mib=args.memory) as m:
            t0 = time.monotonic()
            m.start()
            shell = time.monotonic() - t0
            m.wait_for_unit("multi-user.target", timeout=600)
            target = time.monotonic() - t0
            shells.append(shell)
            ready.append(target)
            print(
                f"run {run + 1}: shell after {shell:.1f} s, multi-user.target after {target:.1f} s",
                flush=True,
            )
    print(
        f"median: shell {statistics.median(shells):.1f} s, multi-user.target {statistics.median(ready):.1f} s"
    )


if __name__ == "__main__":
    main()
