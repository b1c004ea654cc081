"""Facts about the models a spec names, shared by `doctor` (disk space) and `render-k8s` (cache size)."""

from __future__ import annotations

# Download sizes (GB, weights and tokenizer) of the models the examples use.
KNOWN_MODEL_SIZES_GB = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": 15.2,
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": 218.0,
    "HuggingFaceTB/SmolLM2-135M-Instruct": 0.27,
}


def known_model_size_gb(model: str) -> float | None:
    """Download size in GB of a well-known model, else None ."""
    return KNOWN_MODEL_SIZES_GB.get(model)
