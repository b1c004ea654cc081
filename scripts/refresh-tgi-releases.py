#!/usr/bin/env python3
"""Refresh modules/huggingface-tgi/core/tgi-releases.json from a TGI checkout (offline).

    python3 scripts/refresh-tgi-releases.py PATH/TO/text-generation-inference [--output FILE]

releases:   every `vX.Y.Z` tag of the checkout (fetch the tags first: `git fetch --tags`), without the v.
modelTypes: for each model type named in server/text_generation_server/models/__init__.py
            (`"type": "llama4"` in ModelType, `model_type == "llama4"` in older releases), the first
            release whose file names it.
families:   kept as they are (which Hub ids belong to a model type is written by hand); a family
            whose model type no release names is reported.
Standard library only; prints what changed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "modules" / "huggingface-tgi" / "core" / "tgi-releases.json"
MODELS = "server/text_generation_server/models/__init__.py"
TAG_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
TYPE_RES = (
    re.compile(r'"type":\s*"([A-Za-z0-9_-]+)"'),
    re.compile(r'model_type\s*==\s*"([A-Za-z0-9_-]+)"'),
    re.compile(r'model_type\s+in\s+\{?\[?\(?\s*"([A-Za-z0-9_-]+)"'),
)


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
    ).stdout


def releases(checkout: Path) -> list[str]:
    tags = [m.groups() for m in map(TAG_RE.match, git(checkout, "tag", "--list", "v*").split()) if m]
    return [".".join(t) for t in sorted(tags, key=lambda t: tuple(int(x) for x in t))]


def model_types(checkout: Path, release: str) -> set[str]:
    proc = subprocess.run(
        ["git", "-C", str(checkout), "show", f"v{release}:{MODELS}"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:  # releases before the file existed
        return set()
    return {m for regex in TYPE_RES for m in regex.findall(proc.stdout)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a git checkout of huggingface/text-generation-inference")
    parser.add_argument("--output", type=Path, default=TABLE)
    args = parser.parse_args()
    table = json.loads(args.output.read_text())
    found = releases(args.checkout)
    if not found:
        print(f"{args.checkout}: no vX.Y.Z tags; run `git fetch --tags` there", file=sys.stderr)
        return 2
    first_seen: dict[str, str] = {}
    for release in found:
        for model_type in sorted(model_types(args.checkout, release)):
            first_seen.setdefault(model_type, release)
    for family in table["families"]:
        if family not in first_seen:
            print(f"warning: family {family}: no release names model type {family!r}", file=sys.stderr)
    # the date of the newest commit the checkout has: what the table knows up to
    date = git(args.checkout, "log", "-1", "--format=%cs", "--all").strip()
    new = {
        **table,
        "source": f"huggingface/text-generation-inference git tags and {MODELS} of each release tag",
        "refreshed": date,
        "releases": found,
        "modelTypes": dict(sorted(first_seen.items())),
    }
    added = sorted(set(found) - set(table["releases"]))
    args.output.write_text(json.dumps(new, indent=2) + "\n")
    print(
        f"{args.output}: {len(found)} releases up to {found[-1]} (new: {', '.join(added) or 'none'}), "
        f"{len(first_seen)} model types"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
