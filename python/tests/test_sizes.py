"""Size bounds (core/sizes.nix): a huge value is one finding naming the option, from every verb, fast,
with nothing written - not Nix's "stack overflow" from a regular expression on a megabyte string."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import pytest

from tgi_nix.cli import main

HUGE = 1_500_000


def run(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(args))
    return rc, err.getvalue()


CASES = {
    "argument": ('extraArgs = ["--x={big}"]', "instances.a.extraArgs[0]: a value of 1500004 characters"),
    "environment value": ("environment = {{ B = \"{big}\" }}", "instances.a.environment.B: a value of 1500000"),
    "environment key": ('environment = {{ {big} = "v" }}', "instances.a.environment: a key of 1500000"),
    "model": ('model = "o/{big}"', "instances.a.model: a value of 1500002"),
    "many arguments": ("extraArgs = [" + ", ".join(['"--x"'] * 2000) + "]", "instances.a.extraArgs: 2000 entries"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("verb", ["validate", "generate", "render-units", "render-k8s"])
def test_huge_values_are_one_finding_from_every_verb(tmp_path: Path, case: str, verb: str) -> None:
    setting, expected = CASES[case]
    body = setting.format(big="b" * HUGE)
    model = "" if case == "model" else 'model = "org/m"\n'
    spec = tmp_path / "spec.toml"
    spec.write_text(f"[instances.a]\n{model}port = 8080\n{body}\n")
    out = tmp_path / "out"
    args = [verb, str(spec)] + ([] if verb == "validate" else ["-o", str(out)])
    started = time.monotonic()
    rc, err = run(*args)
    elapsed = time.monotonic() - started
    assert rc == 2, err[:500]
    assert expected in err and "at most" in err, err[:500]
    assert "stack overflow" not in err and "Traceback" not in err and len(err) < 1000
    assert not out.exists()
    assert elapsed < 30, f"{verb} took {elapsed:.1f} s"  # a bound, not a benchmark: minutes would mean a hang


def test_values_at_the_bound_are_accepted(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    arg = "--x=" + "a" * (4096 - 4)
    spec.write_text(f'[instances.a]\nmodel = "org/m"\nport = 8080\nextraArgs = ["{arg}"]\n')
    rc, err = run("validate", str(spec))
    assert rc == 0 and "characters" not in err, err[:300]


@pytest.mark.parametrize(
    ("setting", "path"),
    [('[instances."a\\u0000"]\nmodel = "o/m"\nport = 1\n', 'instances."a\\u0000"'),
     ('[instances.a]\nmodel = "o/m"\nport = 1\nextraArgs = ["x\\u0000y"]\n', "instances.a.extraArgs[0]"),
     ('[instances.a]\nmodel = "o/m"\nport = 1\nenvironment = { "K\\u0000" = "v" }\n', 'instances.a.environment."K\\u0000"')],
)
def test_a_nul_character_is_named_not_a_nix_error(tmp_path: Path, setting: str, path: str) -> None:
    """Nix strings cannot hold NUL (JSON can): the bridge refuses it by path instead of exit 3."""
    spec = tmp_path / "spec.toml"
    spec.write_text(setting)
    rc, err = run("validate", str(spec))
    assert rc == 2 and f"{path}: contains a NUL character" in err, err
