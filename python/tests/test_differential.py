"""Differential property test: `tgi-nix validate` and the NixOS module (evaluated against real NixOS
modules by ../shared/nixos-eval) accept and reject the same generated specs, naming the same option
paths.

Hypothesis draws specs whose every option comes from a pool of valid values and, less often, of values
that break a rule (model ids, addresses, sizes, time spans, paths, secrets, smuggled flags,
combinations across options and instances) or a type bound (ports, GPU indices, uids). One batch of
specs goes to both sides: the CLI once per spec, the harness once for all of them.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tgi_nix.nix.expr import to_nix

from .nixos_eval import cli, run_configs

BATCH = 48

# option -> (valid values, invalid values); None means "leave the option out".
POOLS: dict[str, tuple[list[Any], list[Any]]] = {
    "model": (["org/model", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "/srv/models/llama"],
              ["acme--x/model", "acme/a..b", "noslash", "relative/path/x"]),
    "revision": ([None, "main", "refs/pr/1"], ["-bad", "a b"]),
    "image": ([None, "localhost/tgi:1", "ghcr.io/huggingface/text-generation-inference:3.3.7"],
              ["UPPER/x", "x:", "a@sha256:12"]),
    "listenAddress": ([None, "127.0.0.1", "::", "0.0.0.0", "fd00::1"], ["localhost", "[::1]", "1.2.3", "fe80::1%eth0"]),
    "shmSize": ([None, "1g", "512m"], ["lots", "0g", "1gb"]),
    "startTimeout": ([None, "1h", "90s", "infinity", "1h 30min"], ["soon", "99999999999999h", "-1s"]),
    "environmentFile": ([None, "/run/secrets/tgi.env"], ["relative.env", "/nix/store/abc-s.env"]),
    "apiKeyFile": ([None, "/run/secrets/key"], ["/nix/store/abc-key"]),
    "cacheDir": ([None, "/srv/cache"], ["cache"]),
    "gpus": ([None, "all", [0, 1], [3]], [[0, 0], [2000]]),
    "numShard": ([None, 1, 2], [0]),
    "quantize": ([None, "awq"], []),
    "dtype": ([None, "bfloat16"], []),
    "maxInputTokens": ([None, 100], [2**31]),
    "maxConcurrentRequests": ([None, 128], [0]),
    "maxTotalTokens": ([None, 200, 50], []),
    "extraArgs": ([None, ["--max-best-of", "1"]], [["--port", "9"], ["--model-id", "x/y"], ["--api-key=k"]]),
    "extraPodmanArgs": ([None, ["--memory=1g"]], [["--privileged"], ["--network=host"], ["--env=HF_TOKEN=x"]]),
    "allowUnsafePodmanArgs": ([None, True], []),
    "environment": ([None, {"A_MODE": "x"}], [{"HF_TOKEN": "x"}, {"bad-name": "x"}, {"MODEL_ID": "a/b"}]),
    "cdiDevices": ([None, ["amd.com/gpu=all"]], [["nope"]]),
    "port": ([8080, 8081, 9000, 80], [0, 70000]),
}
ROOTLESS = ([None, ("tgi-a", 2001), ("tgi-b", 2002)], [("tgi-c", None), ("root", 2003), (None, 2004)])
NAMES = (["a", "scout", "m7"], ["Bad", "x_y"])


def pick(draw: st.DrawFn, pools: tuple[list[Any], list[Any]]) -> Any:
    valid, invalid = pools
    if invalid and draw(st.integers(0, 9)) == 9:
        return draw(st.sampled_from(invalid))
    return draw(st.sampled_from(valid))


@st.composite
def instance(draw: st.DrawFn) -> dict[str, Any]:
    inst: dict[str, Any] = {}
    for option, pools in POOLS.items():
        # required options always, optional ones a third of the time
        if option in ("model", "port") or draw(st.integers(0, 2)) == 0:
            value = pick(draw, pools)
            if value is not None:
                inst[option] = value
    if draw(st.integers(0, 2)) == 0:
        user = pick(draw, ROOTLESS)
        if user is not None:
            if user[0] is not None:
                inst["user"] = user[0]
            if user[1] is not None:
                inst["uid"] = user[1]
    return inst


@st.composite
def spec(draw: st.DrawFn) -> dict[str, Any]:
    names = {pick(draw, NAMES) for _ in range(draw(st.integers(1, 2)))}
    return {"instances": {name: draw(instance()) for name in sorted(names)}}


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    paths: frozenset[str]
    detail: str


CLI_LINE = re.compile(r"^(instances(?:\.[^:]+)?): ")
NIX_TYPE_ERROR = re.compile(r"option `services\.huggingface-tgi\.([^']+)'")
LIST_ENTRY = re.compile(r'\."\[definition [^"]*\]"$')


def cli_verdict(data: dict[str, Any], workdir: Path, index: int) -> Verdict:
    path = workdir / f"spec-{index}.toml"
    path.write_text(tomli_w.dumps(data))
    proc = subprocess.run([cli(), "validate", "-q", str(path)], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return Verdict(True, frozenset(), proc.stderr)
    assert proc.returncode == 2, f"validate exited {proc.returncode} (not a spec error):\n{proc.stderr}"
    paths = {m.group(1) for line in proc.stderr.splitlines() if (m := CLI_LINE.match(line))}
    return Verdict(False, frozenset(paths), proc.stderr)


def module_text(data: dict[str, Any]) -> str:
    return "{ ... }:\n{\n  services.huggingface-tgi.instances = " + to_nix(data["instances"], 1) + ";\n}\n"


@pytest.mark.slow
# One batch; shrinking a batch of specs through two evaluators would take far longer than it helps.
@settings(max_examples=1, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(batch=st.lists(spec(), min_size=BATCH, max_size=BATCH, unique_by=repr))
def test_validate_and_module_agree(batch: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("differential")
    cli_side = [cli_verdict(data, workdir, i) for i, data in enumerate(batch)]
    run = run_configs({f"d-{i}": module_text(data) for i, data in enumerate(batch)}, workdir / "nixos-eval")
    disagreements: list[str] = []
    for i, (data, ours) in enumerate(zip(batch, cli_side, strict=True)):
        result = run.results[f"d-{i}"]
        if result.error is not None:
            # A list element's type error names the option plus `."[definition 1-entry 1]"`.
            type_paths = {LIST_ENTRY.sub("", p) for p in NIX_TYPE_ERROR.findall(result.error)}
            theirs = Verdict(False, frozenset(type_paths), result.error)
            # Nix stops at its first type error; the CLI lists every one: the module's path is one of them.
            same = not ours.accepted and bool(type_paths) and type_paths <= ours.paths
        else:
            paths = {a.removeprefix("services.huggingface-tgi.").split(": ", 1)[0] for a in result.assertions}
            theirs = Verdict(not result.assertions, frozenset(paths), "\n".join(result.assertions))
            same = ours.accepted == theirs.accepted and ours.paths == theirs.paths
        if not same:
            disagreements.append(f"spec {i}: {data}\n  validate: {ours}\n  module:   {theirs}")
    accepted = sum(v.accepted for v in cli_side)
    print(f"differential: {len(batch)} specs, {accepted} accepted, {len(batch) - accepted} rejected by both sides")
    # Both kinds must be present, or the comparison proves little.
    assert 0 < accepted < len(batch)
    assert not disagreements, "\n".join(disagreements)
