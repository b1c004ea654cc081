"""The units' promises (core/promises.nix) as data, and docs/hardening.md's table rendered from them."""

from __future__ import annotations

import json
from typing import Any

from ..nix.bridge import module_dir, run_nix

KIND_TITLES = {
    "mainRootful": "main, rootful",
    "imageRootful": "image, rootful",
    "mainRootless": "main, rootless",
    "imageRootless": "image, rootless",
}
BEGIN = "<!-- BEGIN promises (generated from core/promises.nix by `tgi-nix options`) -->"
END = "<!-- END promises -->"
_PLACEHOLDERS = {
    "@cacheDir@": "the cache dir",
    "@user@": "the instance's user",
    "@home@": "the user's home",
    "@runtimeDir@": "the user's runtime dir",
    "@gpuDevices@": "NVIDIA nodes if `gpus`",
    "@bindService@": "`CAP_NET_BIND_SERVICE` if port < 1024",
}


def load_promises() -> dict[str, Any]:
    """core/promises.nix, evaluated: {kinds, directives, container, gpuDevices}."""
    path = module_dir() / "core" / "promises.nix"
    data: dict[str, Any] = json.loads(run_nix(["--eval", "--strict", "--json", str(path)], f"evaluating {path}"))
    return data


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    lines = value if isinstance(value, list) else [value]
    shown = [_PLACEHOLDERS.get(line, f"`{line}`" if line else "(empty)") for line in lines]
    return "<br>".join(shown)


def render_promises_table(promises: dict[str, Any]) -> str:
    kinds: list[str] = promises["kinds"]
    rows = [
        "| directive | " + " | ".join(KIND_TITLES[k] for k in kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for name, values in promises["directives"].items():
        rows.append(f"| `{name}` | " + " | ".join(_cell(values[k]) for k in kinds) + " |")
    flags = ", ".join(f"`{flag}`" for flag in promises["container"])
    return "\n".join(
        [BEGIN, "", *rows, "", f"Every container: {flags}.", "", END]
    )


def render_hardening_md(current: str) -> str:
    """docs/hardening.md with its generated table replaced (the rest is hand-written)."""
    start, end = current.find(BEGIN), current.find(END)
    if start < 0 or end < start:
        raise ValueError(f"docs/hardening.md lacks the {BEGIN!r} ... {END!r} markers")
    return current[:start] + render_promises_table(load_promises()) + current[end + len(END) :]
