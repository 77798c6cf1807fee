"""How long a run will take before it starts: a short measured run of the same configuration.

A step's time depends on the CPU or GPU, the preset (how deep the network is
cut), the size, the precision and the batch, and it drifts 10-40% between
runs on a shared machine; so it is measured here, with a short warm-up run
of the same configuration on a synthetic image, never assumed. The first
step (the trace) is left out, as the run record's ``seconds_per_step`` does.
A running run's own estimate is `api.progress.RunTimeEstimate`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..api.progress import WARM_UP_STEPS, expected_seconds, format_duration

__all__ = ["measure_run", "expected_seconds", "format_duration"]


@lru_cache(maxsize=32)
def measure_run(*, preset: str = "robust", max_dim: int = 512, batch: int = 1, weights: str = "random",
                precision: str = "float32", aspect: float = 0.75) -> tuple[float, float]:
    """(median seconds per step, seconds each run adds besides its steps: building its step and tracing it).

    A short run at ``max_dim`` x ``aspect * max_dim``, cached per process.
    ImageNet weights cost the same per step as random ones, so random weights
    stand in for them (no download just to time a step).
    """
    from ..api.stylize import stylize, stylize_batch

    weights = weights if weights.startswith("random") else "random"
    rng = np.random.default_rng(0)
    height = max(32, round(max_dim * aspect))
    content = rng.uniform(0, 255, (height, max_dim, 3)).astype(np.float32)
    style = content[::-1].copy()
    options = dict(preset=preset, steps=WARM_UP_STEPS, max_dim=max_dim, weights=weights, precision=precision,
                   progress=False)
    if batch == 1:
        record = stylize(content, style, **options).record
    else:
        record = stylize_batch(content, style, [{"style_weight": 10.0 ** (6 + i)} for i in range(batch)],
                               **options)[0].record
    per_step = float(record["seconds_per_step"])
    return per_step, max(0.0, record["wall_time_s"] - WARM_UP_STEPS * per_step)
