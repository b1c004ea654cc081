#!/usr/bin/env python3
"""CLI start-up: median wall time of `tgi-nix --help`, `tgi-nix validate examples/quick-deploy.toml` and
`tgi-nix probe --help`, each run in a fresh process.

`--before REV` times the same commands with an older tree too (`git archive REV`: the package, the Nix
core and the examples), e.g. 04dd1bc, the commit before the lazy CLI. Goal: `--help` <= 0.2 s.
`python -X importtime -m tgi_nix.cli --help` shows what a command imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["validate", "examples/quick-deploy.toml"], ["probe", "--help"])
# The console script's own start-up: import the package from SRC and run the CLI.
LAUNCH = "import sys; sys.path.insert(0, sys.argv.pop(1)); from tgi_nix.cli import main; sys.exit(main())"


def median_seconds(root: Path, args: list[str], runs: int) -> float:
    """Median wall time of `tgi-nix ARGS` run from the checkout (or extracted tree) at `root`."""
    env = dict(os.environ)
    if root != ROOT:  # an old tree evaluates its own Nix core
        env["TGI_NIX_ROOT"] = str(root)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", LAUNCH, str(root / "python" / "src"), *args], cwd=root, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def old_tree(rev: str, workdir: Path) -> Path:
    """The package, the Nix core and the examples as of `rev`, extracted under `workdir`."""
    archive = workdir / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", rev, "python/src", "modules", "docs", "examples"], cwd=ROOT, check=True,
                       stdout=out)
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    return workdir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", metavar="REV", help="also time --help of this git revision's tree")
    args = parser.parse_args()
    print(f"median of {args.runs} fresh processes" + (f"; before = {args.before}" if args.before else ""))
    with tempfile.TemporaryDirectory(prefix="tgi-nix-before-") as tmp:
        old = old_tree(args.before, Path(tmp)) if args.before else None
        for command in COMMANDS:
            after = median_seconds(ROOT, command, args.runs)
            line = f"tgi-nix {' '.join(command):36s} {after:6.3f} s"
            if old is not None:
                before = median_seconds(old, command, args.runs)
                line += f"   before {before:6.3f} s ({before / after:.1f}x)"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
