"""The method comparison of notebook 06 and `scripts/compare_methods.py`: same inputs, equal step
budgets, several seeds, every offline metric.

With random weights a "seed" picks a different random backbone (``random:SEED``) as well as the jitter,
so the spread shows how much a result depends on the particular network; the judge network for the
Gram distance is always a different, fixed seed (`metrics.JUDGE_WEIGHTS`). With ImageNet weights the
seed changes only the jitter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .metrics import evaluate

# Each method is a set of stylize options on top of the shared budget.
METHODS: dict[str, dict] = {
    "vanilla": {"preset": "vanilla"},
    "robust": {"preset": "robust"},
    # The softmax makes SWAG's loss steep: the seed's lr of 20 overshoots it by 1e4x on the first step.
    "swag": {"preset": "swag", "learning_rate": 5.0},
    "fourier": {"preset": "vanilla", "param": "fourier", "jitter": 2},
    "swag+fourier": {"preset": "swag", "param": "fourier", "jitter": 2},
    "vgg19": {"preset": "vgg19"},
}
PAIRS = [("astronaut.jpg", "hexagons.png"), ("chelsea.jpg", "mosaic.png"), ("coffee.jpg", "waves.png"),
         ("rocket.jpg", "strokes.png")]
METRICS = ("ssim_luminance", "ssim_edges", "gram_distance", "color_histogram", "color_moments", "seconds_per_step")


@dataclass
class Run:
    method: str
    pair: tuple[str, str]
    seed: int
    image: np.ndarray
    metrics: dict[str, float]


def weights_for(weights: str, seed: int) -> str:
    """Random weights: one network per seed. Anything else: the same weights for every seed."""
    return f"random:{seed}" if weights.startswith("random") else weights


def compare(methods: Iterable[str] = tuple(METHODS), pairs: Sequence[tuple[str, str]] = PAIRS,
            seeds: Sequence[int] = (0, 1, 2), *, weights: str = "random", steps: int = 200, max_dim: int = 128,
            precision: str = "float32", progress=print) -> list[Run]:
    """Run every method on every pair with every seed; return one `Run` per combination."""
    from .images import bundled_image as image
    from .optimize import stylize

    runs = []
    for content_name, style_name in pairs:
        content, style = image(content_name, max_dim), image(style_name, max_dim)
        for method in methods:
            for seed in seeds:
                run_weights = weights_for(weights, seed)
                started = time.perf_counter()
                result = stylize(content, style, steps=steps, max_dim=max_dim, seed=seed, weights=run_weights,
                                 precision=precision, **METHODS[method])
                metrics = evaluate(result.image, content, style, optimised_with=run_weights)
                metrics["seconds_per_step"] = result.record["seconds_per_step"]
                runs.append(Run(method, (content_name, style_name), seed, result.image, metrics))
                if progress:
                    progress(f"{method:13} {content_name:>14} x {style_name:<13} seed {seed}: "
                             f"gram {metrics['gram_distance']:.3f} ssim {metrics['ssim_luminance']:.3f} "
                             f"({time.perf_counter() - started:.1f} s)")
    return runs


def summary(runs: Sequence[Run]) -> list[dict]:
    """Mean and spread (standard deviation over pairs and seeds) of every metric, per method."""
    rows = []
    for method in dict.fromkeys(run.method for run in runs):
        chosen = [run for run in runs if run.method == method]
        row = {"method": method, "runs": len(chosen)}
        for metric in METRICS:
            values = np.array([run.metrics[metric] for run in chosen])
            row[metric] = f"{values.mean():.3f} ± {values.std():.3f}"
        rows.append(row)
    return rows


def verdict(runs: Sequence[Run], challengers: Sequence[str] = ("swag", "fourier"), baseline: str = "vanilla") -> list[str]:
    """The issue's target, checked per challenger: lower held-out Gram distance than the baseline at
    equal-or-better content SSIM (means over pairs and seeds)."""
    def mean(method, metric):
        return float(np.mean([run.metrics[metric] for run in runs if run.method == method]))

    lines = []
    for method in challengers:
        gram_better = mean(method, "gram_distance") < mean(baseline, "gram_distance")
        ssim_kept = mean(method, "ssim_luminance") >= mean(baseline, "ssim_luminance")
        met = "meets" if gram_better and ssim_kept else "does NOT meet"
        lines.append(f"{method} {met} the target vs {baseline}: Gram distance "
                     f"{mean(method, 'gram_distance'):.3f} vs {mean(baseline, 'gram_distance'):.3f}, "
                     f"SSIM {mean(method, 'ssim_luminance'):.3f} vs {mean(baseline, 'ssim_luminance'):.3f}")
    return lines
