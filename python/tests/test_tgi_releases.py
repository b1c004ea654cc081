"""TGI release knowledge, offline (core/tgi-releases.json): warnings on tags TGI never released and on
model families a pinned release cannot serve, GPU overlaps across instances, and the table's refresh."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tgi_nix.nix.bridge import check, module_dir
from tgi_nix.spec.loader import load_spec, parse_spec
from tgi_nix.spec.schema import DEFAULT_IMAGE

from .conftest import EXAMPLES, REPO

TABLE = module_dir() / "core" / "tgi-releases.json"
OFFICIAL = "ghcr.io/huggingface/text-generation-inference"
SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"


def warnings(**instances: dict[str, Any]) -> dict[str, str]:
    """path -> message of the core's warnings for these instances (ports filled in)."""
    spec = {name: {"port": 8000 + i, **inst} for i, (name, inst) in enumerate(instances.items())}
    return {w.path: w.message for w in check(parse_spec({"instances": spec}))}


def test_table_is_consistent() -> None:
    table = json.loads(TABLE.read_text())
    releases = table["releases"]
    assert len(releases) == len(set(releases)) >= 60
    assert releases == sorted(releases, key=lambda v: tuple(int(x) for x in v.split(".")))
    assert DEFAULT_IMAGE.rpartition(":")[2] in releases
    assert not [r for r in releases if r.startswith("2.5.")]  # 2.4.1 is followed by 3.0.0
    assert table["modelTypes"]["llama4"] == "3.2.2"
    assert set(table["families"]) <= set(table["modelTypes"])
    assert table["source"] and table["refreshed"]


def test_a_tag_tgi_never_released_names_the_nearest_releases() -> None:
    found = warnings(a={"model": "org/m", "image": f"{OFFICIAL}:2.5.1"})
    assert found["instances.a.image"] == "TGI never released 2.5.1; the nearest releases are 2.4.1 and 3.0.0 (latest 3.3.7)"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{OFFICIAL}:9.0.0", "newer than every release this tgi-nix knows (up to 3.3.7"),
        (f"{OFFICIAL}:sha-0123abc", '"sha-0123abc" is not a TGI release tag'),
        (f"{OFFICIAL}:3.3.7-rocm", None),  # a variant of a release
        (f"{OFFICIAL}:3.2.3", None),
        (f"{OFFICIAL}@sha256:{'0' * 64}", None),  # pinned by digest: nothing to compare
        ("registry.example.com/mirror/tgi:2.5.1", None),  # not the official image
    ],
)
def test_image_tags(image: str, expected: str | None) -> None:
    message = warnings(a={"model": "org/m", "image": image}).get("instances.a.image")
    assert (message is None) if expected is None else (message is not None and expected in message), message


@pytest.mark.parametrize(
    ("tag", "warns"), [("2.4.1", True), ("3.2.1", True), ("3.2.2", False), ("3.2.3", False), ("3.3.7", False)]
)
def test_llama4_needs_tgi_3_2_2(tag: str, warns: bool) -> None:
    found = warnings(scout={"model": SCOUT, "image": f"{OFFICIAL}:{tag}"})
    message = found.get("instances.scout.model")
    assert (message is not None) == warns, found
    if warns:
        assert message is not None and f"TGI {tag}" in message and "Llama 4" in message and "3.2.2" in message


def test_other_families_and_local_paths_are_not_llama4() -> None:
    for model in ("meta-llama/Llama-3.1-8B-Instruct", "org/llama-40b", "/srv/models/Llama-4-Scout"):
        assert "instances.a.model" not in warnings(a={"model": model, "image": f"{OFFICIAL}:2.4.1"}), model


def test_overlapping_gpus_warn_unless_both_allow_sharing() -> None:
    found = warnings(a={"model": "o/a", "gpus": [0, 1]}, b={"model": "o/b", "gpus": [1]}, c={"model": "o/c", "gpus": [2]})
    assert list(found) == ["instances.b.gpus"]
    assert '"a"' in found["instances.b.gpus"] and "allowGpuSharing" in found["instances.b.gpus"]
    found = warnings(a={"model": "o/a", "gpus": "all"}, b={"model": "o/b", "gpus": [3]}, cpu={"model": "o/c"})
    assert list(found) == ["instances.b.gpus"]
    one = warnings(a={"model": "o/a", "gpus": "all", "allowGpuSharing": True}, b={"model": "o/b", "gpus": "all"})
    assert list(one) == ["instances.b.gpus"]
    both = {"model": "o/a", "gpus": "all", "allowGpuSharing": True}
    assert warnings(a=both, b={**both, "model": "o/b"}) == {}
    assert warnings(a={"model": "o/a", "gpus": [0]}, b={"model": "o/b", "gpus": [0], "enable": False}) == {}


@pytest.mark.parametrize("spec_path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_examples_have_no_warnings(spec_path: Path) -> None:
    assert check(load_spec(spec_path)) == []


def test_quick_deploy_keeps_its_intent() -> None:
    spec = load_spec(EXAMPLES / "quick-deploy.toml")
    deepseek, scout = spec.instances["deepseek"], spec.instances["scout"]
    assert (deepseek.port, deepseek.image) == (8080, DEFAULT_IMAGE)
    table = json.loads(TABLE.read_text())
    tag = scout.image.rpartition(":")[2]
    assert scout.port == 8085 and scout.model == SCOUT and tag in table["releases"] and tag != DEFAULT_IMAGE.rpartition(":")[2]


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True, capture_output=True,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git (the Nix package's checkPhase has it)")
def test_refresh_script_reads_tags_and_model_types(tmp_path: Path) -> None:
    tgi = tmp_path / "tgi"
    models = tgi / "server" / "text_generation_server" / "models" / "__init__.py"
    models.parent.mkdir(parents=True)
    git(tgi, "init", "-q")
    for tag, types in (("v3.2.1", ["llama"]), ("v3.2.2", ["llama", "llama4"]), ("v3.10.0", ["llama4", "qwen3"])):
        models.write_text("".join(f'    X = {{"type": "{t}", "name": "x"}}\n' for t in types))
        git(tgi, "add", ".")
        git(tgi, "commit", "-q", "-m", tag)
        git(tgi, "tag", tag)
    git(tgi, "tag", "v3.3.0-rc1")  # not a release
    out = tmp_path / "table.json"
    out.write_text(TABLE.read_text())
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "refresh-tgi-releases.py"), str(tgi), "--output", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = json.loads(out.read_text())
    assert table["releases"] == ["3.2.1", "3.2.2", "3.10.0"]
    assert table["modelTypes"] == {"llama": "3.2.1", "llama4": "3.2.2", "qwen3": "3.10.0"}
    assert table["families"] == json.loads(TABLE.read_text())["families"]  # hand-written, kept
