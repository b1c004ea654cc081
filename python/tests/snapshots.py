"""The snapshots: every file rendered from every example, kept under tests/snapshots/ as a readable diff.

The tests compare (tests/test_render.py: a changed, missing or extra file fails). Rewriting them is a
separate command, never a test run; review the diff before committing:

    cd python && ../.venv/bin/python -m tests.snapshots --update
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from tgi_nix.generate.render import render_spec_module, render_unit_tree
from tgi_nix.nix.bridge import evaluate
from tgi_nix.spec.loader import load_spec

SNAPSHOTS = Path(__file__).parent / "snapshots"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UPDATE_HINT = "if intended, run `../.venv/bin/python -m tests.snapshots --update` in python/ and review the diff"


def example_specs() -> list[Path]:
    return sorted(EXAMPLES.glob("*.toml"))


def rendered(spec_path: Path) -> dict[str, str]:
    """Snapshot name -> text for one example: its spec module and its unit tree."""
    spec = load_spec(spec_path)
    files = {f"{spec_path.stem}.nix": render_spec_module(spec, spec_path.name)}
    tree = render_unit_tree(evaluate(spec, podman="/usr/bin/podman"))
    files.update({f"{spec_path.stem}/{rel}": text for rel, text in tree.items()})
    return files


def expected() -> dict[str, str]:
    """Every snapshot the examples render today."""
    files: dict[str, str] = {}
    for spec_path in example_specs():
        files.update(rendered(spec_path))
    return files


def stored() -> set[str]:
    """Every snapshot on disk (relative names)."""
    return {str(p.relative_to(SNAPSHOTS)) for p in SNAPSHOTS.rglob("*") if p.is_file()}


def update() -> list[str]:
    """Rewrite the snapshots from the examples, removing those no longer rendered; return what changed."""
    files = expected()
    changed: list[str] = []
    for name in sorted(stored() - set(files)):
        (SNAPSHOTS / name).unlink()
        changed.append(f"removed {name}")
    for directory in sorted((p for p in SNAPSHOTS.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            shutil.rmtree(directory)
    for name, text in sorted(files.items()):
        path = SNAPSHOTS / name
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(f"wrote {name}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite tests/snapshots from the examples")
    args = parser.parse_args(argv)
    if not args.update:
        parser.print_help()
        return 2
    changed = update()
    print("\n".join(changed) if changed else "snapshots are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
