"""Snapshot tests of every rendered file; each rendered Nix file passes `nix-instantiate --parse`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tgi_nix.generate.render import (
    render_options_md,
    render_options_nix,
    render_spec_module,
    render_unit_tree,
)
from tgi_nix.nix.bridge import evaluate, module_dir, parse_nix_file
from tgi_nix.nix.expr import to_nix
from tgi_nix.spec.loader import load_spec, parse_spec

from .conftest import EXAMPLES, REPO
from .snapshots import assert_snapshot

EXAMPLE_SPECS = sorted(EXAMPLES.glob("*.toml"))


@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_spec_module_snapshot_and_parse(spec_path: Path, tmp_path: Path) -> None:
    text = render_spec_module(load_spec(spec_path), spec_path.name)
    assert_snapshot(f"{spec_path.stem}.nix", text)
    out = tmp_path / "module.nix"
    out.write_text(text)
    parse_nix_file(out)


@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_unit_files_snapshot(spec_path: Path) -> None:
    files = render_unit_tree(evaluate(load_spec(spec_path), podman="/usr/bin/podman", shell="/bin/sh"))
    for rel, text in sorted(files.items()):
        assert_snapshot(f"{spec_path.stem}/{rel}", text)


def test_generated_options_are_committed_and_parse() -> None:
    assert (module_dir() / "generated" / "options.nix").read_text() == render_options_nix()
    assert (REPO / "docs" / "options.md").read_text() == render_options_md()
    parse_nix_file(module_dir() / "generated" / "options.nix")


def test_options_doc_lists_every_option() -> None:
    doc = render_options_md()
    for key in ("model", "port", "listenAddress", "gpus", "environmentFile", "cacheDir", "maxTotalTokens"):
        assert f"## {key}\n" in doc
    assert "**required**" in doc


def test_every_nix_file_in_the_repo_parses() -> None:
    files = [p for p in REPO.rglob("*.nix") if ".venv" not in p.parts]
    assert len(files) >= 5
    for path in files:
        parse_nix_file(path)


def test_nix_literals_escape_interpolation_and_quotes(tmp_path: Path) -> None:
    tricky = {"a b": ['${builtins.abort "x"}', 'q"uote', "back\\slash", "new\nline"], "if": None, "n": -3}
    out = tmp_path / "t.nix"
    out.write_text(to_nix(tricky) + "\n")
    parse_nix_file(out)
    import json
    import subprocess

    value = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(value) == tricky


def test_spec_module_contains_only_explicit_keys() -> None:
    spec = parse_spec({"instances": {"a": {"model": "a/b", "port": 9000}}})
    text = render_spec_module(spec, "x.toml")
    assert 'model = "a/b";' in text and "port = 9000;" in text
    assert "listenAddress" not in text and "shmSize" not in text
