"""Hypothesis strategies for valid specs (shared by the core property tests and the fuzz tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

names = st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z")
model_ids = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_]{0,8}/[A-Za-z0-9][A-Za-z0-9_]{0,12}(-[a-z0-9]{1,4})?(\.[a-z0-9]{1,4})?\Z"),
    st.from_regex(r"\A/srv/models/[a-z0-9]{1,8}\Z"),
)
addresses = st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "192.0.2.7", "::"])
gpus = st.one_of(st.none(), st.just("all"), st.lists(st.integers(0, 7), max_size=4, unique=True))
env_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\x00"), max_size=20
)
env = st.dictionaries(st.from_regex(r"\A[A-Z][A-Z0-9]{0,6}_(MODE|LEVEL|DIR)\Z"), env_values, max_size=3)
args = st.lists(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\x00"), max_size=12),
    max_size=3,
)


@st.composite
def instances(draw: st.DrawFn, port: int, index: int = 0) -> dict[str, Any]:
    inst: dict[str, Any] = {"model": draw(model_ids), "port": port}
    mode = draw(st.sampled_from(["shared", "own-user", "own-uid", "rootful"])) if port >= 1024 else "rootful"
    if mode == "rootful":
        inst["rootful"] = True
    elif mode in ("own-user", "own-uid"):
        # Rootless as a user of its own, with a derived or a set uid (the default: the shared user).
        inst["user"] = f"tgi-user{index}"
        if mode == "own-uid":
            inst["uid"] = 3000 + index
    if draw(st.booleans()):
        inst["listenAddress"] = draw(addresses)
    selected = draw(gpus)
    if selected is not None:
        inst["gpus"] = selected
        if isinstance(selected, list) and selected and draw(st.booleans()):
            inst["numShard"] = draw(st.integers(1, len(selected)))
    if draw(st.booleans()):
        inst["environmentFile"] = "/run/secrets/" + draw(st.from_regex(r"\A[a-z]{1,8}\.env\Z"))
    if draw(st.booleans()):
        inst["environment"] = draw(env)
    if draw(st.booleans()):
        inst["extraArgs"] = draw(args)
    if draw(st.booleans()):
        inst["cdiDevices"] = draw(
            st.lists(st.sampled_from(["example.com/gpu=fake0", "amd.com/gpu=all"]), unique=True, max_size=2)
        )
    if draw(st.booleans()):
        inst["openFirewall"] = True
    if draw(st.booleans()):
        inst["cacheDir"] = "/srv/" + draw(st.from_regex(r"\A[a-z0-9%$ ]{1,10}\Z"))
    if draw(st.booleans()):
        inst["quantize"] = draw(st.sampled_from(["awq", "gptq", "fp8"]))
    if draw(st.booleans()):
        inst["maxInputTokens"] = draw(st.integers(1, 10_000))
        inst["maxTotalTokens"] = inst["maxInputTokens"] + draw(st.integers(1, 10_000))
    if draw(st.booleans()):
        inst["downloadModel"] = draw(st.booleans())
    if draw(st.booleans()):
        inst["usageStats"] = draw(st.sampled_from(["off", "no-stack", "on"]))
    if draw(st.booleans()):
        inst["enable"] = draw(st.booleans())
    return inst


@st.composite
def specs(draw: st.DrawFn, max_instances: int = 4) -> dict[str, Any]:
    chosen = draw(st.lists(names, min_size=1, max_size=max_instances, unique=True))
    ports = draw(st.lists(st.integers(1, 65535), min_size=len(chosen), max_size=len(chosen), unique=True))
    return {
        "instances": {n: draw(instances(p, i)) for i, (n, p) in enumerate(zip(chosen, ports, strict=True))}
    }
