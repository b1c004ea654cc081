"""Facts about the models a spec names, shared by `doctor` (disk space) and `render-k8s` (cache size)."""

from __future__ import annotations

import re

# Download sizes (GB, weights and tokenizer) of the models the examples use.
KNOWN_MODEL_SIZES_GB = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": 15.2,
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": 218.0,
    "HuggingFaceTB/SmolLM2-135M-Instruct": 0.27,
}


def known_model_size_gb(model: str) -> float | None:
    """Download size in GB of a well-known model, else None ."""
    return KNOWN_MODEL_SIZES_GB.get(model)


# A parameter count in a Hub model name: "SmolLM2-360M-Instruct", "Qwen2.5-7B", "Mixtral-8x7B".
_PARAMS_RE = re.compile(r"(?:^|[-_.])(?:(\d+)x)?(\d+(?:\.\d+)?)([MB])(?=$|[-_.])", re.IGNORECASE)
# bf16/fp16 weights: two bytes per parameter.
_BYTES_PER_PARAM = 2


def estimated_model_size_gb(model: str) -> tuple[float, str] | None:
    """Download size in GB and how it was found: the known size, else the parameter count the
    model's name states (at two bytes each); None when neither is known."""
    known = known_model_size_gb(model)
    if known is not None:
        return known, "known size"
    found = _PARAMS_RE.findall(model.rpartition("/")[2])
    if not found:
        return None
    experts, count, unit = found[-1]
    params = float(count) * (1e6 if unit.upper() == "M" else 1e9) * (int(experts) if experts else 1)
    return params * _BYTES_PER_PARAM / 1e9, f"{'x'.join(filter(None, (experts, count)))}{unit.upper()} parameters in its name"
