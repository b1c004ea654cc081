"""Snapshot tests of every rendered file; each rendered Nix file passes `nix-instantiate --parse`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tgi_nix.generate.render import (
    render_options_md,
    render_options_nix,
    render_spec_module,
)
from tgi_nix.nix.bridge import module_dir, parse_nix_file
from tgi_nix.nix.expr import to_nix
from tgi_nix.spec.loader import load_spec, parse_spec

from . import snapshots
from .conftest import EXAMPLES, REPO

EXAMPLE_SPECS = sorted(EXAMPLES.glob("*.toml"))


@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_spec_module_parses(spec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "module.nix"
    out.write_text(render_spec_module(load_spec(spec_path), spec_path.name))
    parse_nix_file(out)


@pytest.mark.parametrize("spec_path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_rendered_files_match_their_snapshots(spec_path: Path) -> None:
    files = snapshots.rendered(spec_path)
    for name, text in sorted(files.items()):
        path = snapshots.SNAPSHOTS / name
        assert path.is_file(), f"{name} is rendered but has no snapshot; {snapshots.UPDATE_HINT}"
        assert text == path.read_text(), f"{name} differs from its snapshot; {snapshots.UPDATE_HINT}"


def test_every_snapshot_is_still_rendered() -> None:
    # A unit (or script) the examples no longer produce must not pass unnoticed.
    extra = snapshots.stored() - set(snapshots.expected())
    assert not extra, f"snapshots no longer rendered: {sorted(extra)}; {snapshots.UPDATE_HINT}"


def test_snapshot_update_is_a_command_that_rewrites_and_prunes(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    store = tmp_path / "snapshots"
    monkeypatch.setattr(snapshots, "SNAPSHOTS", store)
    (store / "gone").mkdir(parents=True)
    (store / "gone" / "old.service").write_text("stale\n")
    assert snapshots.main(["--update"]) == 0
    assert snapshots.stored() == set(snapshots.expected())
    assert not (store / "gone").exists()
    assert snapshots.main([]) == 2  # no flag: prints help, writes nothing


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
