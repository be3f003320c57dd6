"""vLLM's own Prometheus figures: how full the GPU's KV cache is, its measure of how busy the GPU is."""

from __future__ import annotations

# vLLM V1 names the gauge kv_cache_usage_perc; older releases gpu_cache_usage_perc. Both are fractions 0..1.
USAGE_GAUGES = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


def kv_cache_usage(exposition: str) -> float | None:
    """The mean of the KV-cache usage samples in a /metrics text (one per served model), or None."""
    for gauge in USAGE_GAUGES:
        values = []
        for line in exposition.splitlines():
            if line.startswith(gauge) and line[len(gauge):len(gauge) + 1] in ("{", " "):
                try:
                    values.append(float(line.rsplit(" ", 1)[1]))
                except (IndexError, ValueError):
                    continue
        if values:
            return sum(values) / len(values)
    return None
