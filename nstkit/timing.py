"""How long a run will take, from measured steps: what the CLI, the panel and the notebooks say before they start.

A step's time depends on the CPU or GPU, the preset (how deep the network is
cut), the size, the precision and the batch, and it drifts 10-40% between
runs on a shared machine; so it is measured here, with a short warm-up run
of the same configuration on a synthetic image, never assumed. The first
step (the trace) is left out, as the run record's ``seconds_per_step`` does.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

WARM_UP_STEPS = 4
LONG_RUN_SECONDS = 60.0  # a run expected to take longer says so, once its warm-up steps are measured


def expected_seconds(steps: int, seconds_per_step: float, seconds_per_run: float = 0.0) -> float:
    """A run's time: its steps at the measured speed, plus what building and tracing it adds."""
    return seconds_per_run + steps * seconds_per_step


class RunTimeEstimate:
    """Seconds left in a running run, from its own steps (a callback: pass it to ``stylize``).

    The current stage's median step (its first, the trace, left out) times its
    steps left; later stages' steps scaled by their area against this
    stage's (their traces, a few seconds each, are not counted). ``ready`` once `WARM_UP_STEPS`
    steps after the trace are measured; `seconds_left` is None before that.
    """

    def __init__(self, warm_up: int = WARM_UP_STEPS):
        self.warm_up = warm_up
        self.seconds_left: float | None = None
        self.per_step: float | None = None
        self._stage = None
        self._times: list[float] = []
        self._last = None

    @property
    def ready(self) -> bool:
        return self.seconds_left is not None

    def __call__(self, progress) -> None:
        if progress.member:
            return  # a batch reports each member; one clock is enough
        now = time.perf_counter()
        if progress.stage != self._stage:
            self._stage, self._times, self._last = progress.stage, [], None
        if self._last is not None:  # a stage's first step (its trace) has no interval before it: left out
            self._times.append(now - self._last)
        self._last = now
        if len(self._times) < self.warm_up:
            return
        schedule = progress.schedule
        self.per_step = float(np.median(self._times))
        stage = schedule[progress.stage]
        left = expected_seconds(stage.steps - progress.stage_step, self.per_step)
        area = stage.size[0] * stage.size[1]
        for later in schedule[progress.stage + 1:]:
            left += expected_seconds(later.steps, self.per_step * later.size[0] * later.size[1] / area)
        self.seconds_left = left

    def line(self) -> str:
        """'about 4 min left (0.241 s/step measured)'."""
        return f"about {format_duration(self.seconds_left)} left ({self.per_step:.3f} s/step measured here)"


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@lru_cache(maxsize=32)
def measure_seconds_per_step(*, preset: str = "robust", max_dim: int = 512, batch: int = 1,
                             weights: str = "random", precision: str = "float32", aspect: float = 0.75) -> float:
    """The median seconds per step of a short run at ``max_dim`` x ``aspect * max_dim`` (cached per process)."""
    return measure_run(preset=preset, max_dim=max_dim, batch=batch, weights=weights, precision=precision,
                       aspect=aspect)[0]


@lru_cache(maxsize=32)
def measure_run(*, preset: str = "robust", max_dim: int = 512, batch: int = 1, weights: str = "random",
                precision: str = "float32", aspect: float = 0.75) -> tuple[float, float]:
    """(median seconds per step, seconds each run adds besides its steps: building its step and tracing it).

    A short run at ``max_dim`` x ``aspect * max_dim``, cached per process.
    ImageNet weights cost the same per step as random ones, so random weights
    stand in for them (no download just to time a step).
    """
    from .optimize import stylize, stylize_batch

    weights = weights if weights.startswith("random") else "random"
    rng = np.random.default_rng(0)
    height = max(32, round(max_dim * aspect))
    content = rng.uniform(0, 255, (height, max_dim, 3)).astype(np.float32)
    style = content[::-1].copy()
    options = dict(preset=preset, steps=WARM_UP_STEPS, max_dim=max_dim, weights=weights, precision=precision)
    if batch == 1:
        record = stylize(content, style, **options).record
    else:
        record = stylize_batch(content, style, [{"style_weight": 10.0 ** (6 + i)} for i in range(batch)],
                               **options)[0].record
    per_step = float(record["seconds_per_step"])
    return per_step, max(0.0, record["wall_time_s"] - WARM_UP_STEPS * per_step)
