"""A tiny Prometheus registry with TGI's metric names, help texts and buckets."""

from __future__ import annotations

import decimal
import json
import threading

DURATION_BUCKETS = [0.0001 * 1.5 ** (i + 1) for i in range(35)]
METRIC_HELP = {
    "tgi_request_count": ("counter", "Total number of requests"),
    "tgi_request_success": ("counter", "Number of successful requests"),
    "tgi_request_failure": ("counter", "Number of failed requests"),
    "tgi_batch_inference_count": ("counter", "Inference calls per method (prefill or decode)"),
    "tgi_batch_inference_success": (
        "counter",
        "Number of successful inference calls per method (prefill or decode)",
    ),
    "tgi_queue_size": ("gauge", "Current queue size"),
    "tgi_batch_current_size": ("gauge", "Current batch size"),
    "tgi_batch_current_max_tokens": ("gauge", "Maximum tokens for the current batch"),
    "tgi_batch_max_total_tokens": ("gauge", "Maximum amount of tokens in total."),
    "tgi_request_duration": ("histogram", "Total time spent processing the request"),
    "tgi_request_validation_duration": ("histogram", "Time spent validating the request"),
    "tgi_request_queue_duration": ("histogram", "Time spent in the queue per request"),
    "tgi_request_inference_duration": ("histogram", "Request inference duration"),
    "tgi_request_mean_time_per_token_duration": ("histogram", "Mean time per token per request"),
    "tgi_request_input_length": ("histogram", "Input token length per request"),
    "tgi_request_generated_tokens": ("histogram", "Generated tokens per request"),
    "tgi_request_max_new_tokens": ("histogram", "Maximum new tokens per request"),
    "tgi_batch_next_size": ("histogram", "Batch size of the next batch"),
    "tgi_batch_inference_duration": ("histogram", "Batch inference duration"),
    "tgi_batch_forward_duration": ("histogram", "Batch forward duration per method (prefill or decode)"),
    "tgi_batch_decode_duration": ("histogram", "Time spent decoding a batch per method (prefill or decode)"),
    "tgi_batch_filter_duration": (
        "histogram",
        "Time spent filtering batches and sending generated tokens per method (prefill or decode)",
    ),
}
Labels = tuple[tuple[str, str], ...]


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(float(value))
    return format(decimal.Decimal(text), "f") if "e" in text else text


class Metrics:
    """A tiny Prometheus registry rendering like metrics-exporter-prometheus (no `_total` suffixes)."""

    def __init__(self, max_input_tokens: int, max_total_tokens: int) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}
        self._hists: dict[str, dict[Labels, list[float]]] = {}  # bucket counts..., sum, count
        self.buckets: dict[str, list[float]] = {
            "tgi_request_input_length": [max_input_tokens / 100 * (x + 1) for x in range(100)],
            "tgi_request_generated_tokens": [max_total_tokens / 100 * (x + 1) for x in range(100)],
            "tgi_request_max_new_tokens": [max_total_tokens / 100 * (x + 1) for x in range(100)],
            "tgi_batch_next_size": [float(x + 1) for x in range(1024)],
        }
        for name, (kind, _) in METRIC_HELP.items():
            if kind != "histogram" and name not in {
                "tgi_request_failure",
                "tgi_batch_inference_count",
                "tgi_batch_inference_success",
            }:
                self._values[name] = {(): 0.0}
            elif kind == "histogram" and name.startswith("tgi_request_"):
                self._hists[name] = {(): [0.0] * (len(self._buckets_for(name)) + 2)}

    def _buckets_for(self, name: str) -> list[float]:
        return self.buckets.get(name, DURATION_BUCKETS)

    def add(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            series = self._values.setdefault(name, {})
            key = tuple(sorted(labels.items()))
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._values.setdefault(name, {})[()] = float(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = self._buckets_for(name)
        with self._lock:
            series = self._hists.setdefault(name, {})
            row = series.setdefault(tuple(sorted(labels.items())), [0.0] * (len(buckets) + 2))
            for i, bound in enumerate(buckets):
                if value <= bound:
                    row[i] += 1
            row[-2] += value
            row[-1] += 1

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        def lbl(labels: Labels, extra: str = "") -> str:
            items = [f'{k}="{v}"' for k, v in labels] + ([extra] if extra else [])
            return "{" + ",".join(items) + "}" if items else ""

        out: list[str] = []
        with self._lock:
            for name in sorted(self._values):
                kind, doc = METRIC_HELP.get(name, ("counter", ""))
                out += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
                out += [f"{name}{lbl(k)} {_num(v)}" for k, v in sorted(self._values[name].items())]
                out.append("")
            for name in sorted(self._hists):
                out += [f"# HELP {name} {METRIC_HELP.get(name, ('', ''))[1]}", f"# TYPE {name} histogram"]
                for key, row in sorted(self._hists[name].items()):
                    bounds = [*map(_num, self._buckets_for(name)), "+Inf"]
                    counts = [*row[:-2], row[-1]]
                    for bound, count in zip(bounds, counts, strict=True):
                        out.append(f"{name}_bucket{lbl(key, 'le=' + json.dumps(bound))} {_num(count)}")
                    out.append(f"{name}_sum{lbl(key)} {_num(row[-2])}")
                    out.append(f"{name}_count{lbl(key)} {_num(row[-1])}")
                out.append("")
        return "\n".join(out)
