"""Time to quality: wall time for nstkit to reach the loss the seed's loop reaches, side by side in one run.

    python benchmarks/time_to_quality.py                 # nstkit with no flags vs the seed's loop: 256 and 512 px,
                                                         # three bundled pairs (about 40 min on 2 cores)
    python benchmarks/time_to_quality.py --sizes 512 --pairs chelsea.jpg:mosaic.png --candidates all \
        [--seed-steps 500] [--plot img/results/time_to_quality.png]
    python benchmarks/time_to_quality.py --quick        # 96 px, a few steps: checks the script, measures nothing

1. A weights file saved from a random ResNet-50 whose BatchNorm statistics
   are randomised (so nstkit's BN folding is exercised); the seed's loop and
   nstkit both load it.
2. The objective is checked first: from that file the seed's loop and
   ``stylize(preset="robust", optimizer="adam", precision="float32")`` must agree at step 1
   (within 1e-6 relative) and along nstkit's own path (the seed's loss of
   each of its images, within 1e-5), else it stops; the two loss curves after
   30 steps are reported against the issue's 1e-3 (see `check_same_objective`).
3. The target is the seed loop's best loss in ``--seed-steps`` steps; the
   baseline is its wall time to the step that first reached it.
4. Each nstkit configuration runs until its image reaches the target, or as
   many steps as the seed took. Every candidate's images (every few steps) are
   scored afterwards under the seed's float32 objective at full size, so a
   bfloat16 run is judged by the same float32 loss (the image it would return
   then: its own best so far). Its time is from calling ``stylize`` (the
   trace included; each precision's network is built once beforehand, as the
   seed's model is before its first step) to the step whose image reached the
   target; the seed's loop is timed from its first step, which includes its
   own first-call overhead.

Prints, per size and pair, a table of seconds and ratios to the seed's wall
time and each candidate's seconds per step (an evaluation, for L-BFGS), then
the defaults' ratios over all of them, with the machine; saves a plot of loss
against wall time for the last one. Random weights: this is about the
optimiser and the arithmetic, not about looks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from seed_loop import SeedLoop  # noqa: E402

MULTI_SCALE = dict(coarse_levels=3, coarse_factor=2 ** 0.5, coarse_steps=60)  # crowsonkb's √2 growth
DEFAULTS = "nstkit defaults (no flags)"
CANDIDATES = {  # label -> stylize options (besides the shared ones)
    DEFAULTS: {},
    "adam float32 (the seed's exact path)": dict(optimizer="adam", precision="float32"),
    "lbfgsb float32 (scipy, the reference)": dict(optimizer="lbfgsb", precision="float32"),
    "adam bfloat16": dict(optimizer="adam", precision="bfloat16"),
    "lbfgs float32": dict(optimizer="lbfgs", precision="float32"),
    "lbfgs bfloat16": dict(optimizer="lbfgs", precision="bfloat16"),
    "adam bfloat16, lr decay to 0.1": dict(optimizer="adam", precision="bfloat16", lr_decay=0.1),
    "adam bfloat16, ema 0.9": dict(optimizer="adam", precision="bfloat16", ema=0.9),
    "adam bfloat16, multi-scale": dict(optimizer="adam", precision="bfloat16", **MULTI_SCALE),
    "lbfgs bfloat16, multi-scale": dict(optimizer="lbfgs", precision="bfloat16", **MULTI_SCALE),
    # Coarse-to-fine for L-BFGS (issue #25, item 4): levels at 1/2, 1/4 of the size, N evaluations each.
    "lbfgs, 1 coarse level x 40": dict(optimizer="lbfgs", coarse_levels=1, coarse_steps=40),
    "lbfgs, 1 coarse level x 80": dict(optimizer="lbfgs", coarse_levels=1, coarse_steps=80),
    "lbfgs, 2 coarse levels x 40": dict(optimizer="lbfgs", coarse_levels=2, coarse_steps=40),
    "lbfgs, 2 coarse levels x 80": dict(optimizer="lbfgs", coarse_levels=2, coarse_steps=80),
    "lbfgs bfloat16, 1 coarse level x 40": dict(optimizer="lbfgs", precision="bfloat16", coarse_levels=1,
                                                coarse_steps=40),
    # bfloat16 evaluations with a float32 finish (issue #25, item 3), as "auto" would run them on a large image.
    "lbfgs bfloat16, float32 finish": dict(optimizer="lbfgs", precision="bfloat16", float32_finish=True),
    "lbfgs float32, auto's coarse level": dict(optimizer="auto", precision="float32"),
    "lbfgs bfloat16, float32 finish, auto's coarse level": dict(optimizer="auto", precision="bfloat16",
                                                                float32_finish=True),
}
CHECK_STEPS = 30
RUN_BY_DEFAULT = (DEFAULTS, "adam float32 (the seed's exact path)", "lbfgsb float32 (scipy, the reference)")
PAIRS = ("chelsea.jpg:mosaic.png", "astronaut.jpg:hexagons.png", "coffee.jpg:strokes.png")  # content:style


def weights_file(folder: Path, seed: int = 0) -> Path:
    """A random ResNet-50 (notop) with randomised BatchNorm statistics and affine terms, saved as .weights.h5."""
    import keras

    from nstkit.network.backbone import _init_random

    model = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))
    _init_random(model, seed)
    rng = np.random.default_rng(seed + 1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.7, 1.3, channels), rng.normal(0, 0.1, channels),  # gamma, beta
                               rng.normal(0, 0.1, channels), rng.uniform(0.6, 1.6, channels)])  # mean, variance
    path = folder / "random_bn.weights.h5"
    model.save_weights(path)
    return path


def images(size: int, pair: str = PAIRS[0]) -> tuple[np.ndarray, np.ndarray]:
    """A bundled content and style ("content.jpg:style.png") at ``size`` px on the long side (float32 RGB), as both
    loops get them."""
    from nstkit.media.images import bundled_image

    content, style = pair.split(":")
    return bundled_image(content, size).astype(np.float32), bundled_image(style, size).astype(np.float32)


def check_same_objective(loop: SeedLoop, content, style, weights: str, size: int) -> dict:
    """Stop unless nstkit optimises the seed's objective; return the measured agreement.

    Three numbers: step 1's loss (the same image, the content: within 1e-6);
    the seed's loss of each image along nstkit's own path against nstkit's
    loss of it (the objective everywhere the run goes: within 1e-5); and the
    two loops' curves after 30 steps, which the issue asks within 1e-3. That
    last one measures float drift as much as the objective: the folded and
    unfolded networks round differently, and Adam's steps carry the
    difference on, so it is reported and warned about, while the first two
    decide.
    """
    import nstkit
    from nstkit.media.images import preprocess

    seed_losses, path = [], []
    loop.run(CHECK_STEPS, on_step=lambda step, seconds, loss: seed_losses.append(loss))
    ours = nstkit.stylize(content, style, preset="robust", optimizer="adam", precision="float32", steps=CHECK_STEPS,
                          max_dim=size, weights=weights, progress=False,
                          callbacks=[lambda p: path.append(p.image(as_float=True))]).history["total"]
    first = abs(ours[0] - seed_losses[0]) / seed_losses[0]
    along = max(abs(loop.loss(preprocess(rgb)) - ours[step + 1]) / ours[step + 1]
                for step, rgb in enumerate(path[:-1]))
    last = abs(ours[-1] - seed_losses[-1]) / seed_losses[-1]
    print(f"same objective: step 1 {first:.1e} relative (limit 1e-6); along nstkit's path, at most {along:.1e} "
          f"(limit 1e-5); the two curves after {CHECK_STEPS} steps {last:.1e} (the issue's guide: 1e-3)")
    if first > 1e-6 or along > 1e-5:
        raise SystemExit("the seed's loop and nstkit do not optimise the same objective here: no ratio is meaningful")
    if last > 1e-3:
        print(f"  note: the curves drift {last:.1e} apart by step {CHECK_STEPS}, past 1e-3, while the objective "
              "agrees along the path: rounding carried by Adam, not a different loss")
    return {"step_1": first, "along_path": along, f"step_{CHECK_STEPS}": last}


def run_candidate(options: dict, content, style, weights: str, size: int, steps: int, target: float,
                  loop: SeedLoop, every: int) -> dict:
    """Run until the float32 judge's loss of some kept image reaches ``target`` (or ``steps``)."""
    import nstkit
    from nstkit.core.config import StyleConfig
    from nstkit.network.device import resolve_precision

    float32 = resolve_precision(StyleConfig(**options))[0].precision == "float32"  # "auto" as this CPU makes it
    snapshots: list[tuple[int, float, np.ndarray]] = []
    started = time.perf_counter()
    judging = [0.0]  # seconds spent scoring inside the run: taken off its clock

    def keep(progress) -> None:
        if not at_full_size(progress):
            return  # coarse stages: their time counts, their images are not full size
        # A float32 run's own loss is the judge's (checked above, to 1e-5): judge it when it says it is there.
        says_reached = float32 and progress.best_loss <= target
        if says_reached or progress.step % every == 0 or progress.step == progress.steps:
            snapshots.append((progress.step, time.perf_counter() - started - judging[0],
                              progress.best_image(as_float=True)))  # what the run would return now
            if says_reached or (not float32 and len(snapshots) % 4 == 0):
                judged = time.perf_counter()
                if _judge(loop, snapshots[-1][2]) <= target:
                    progress.stop()
                judging[0] += time.perf_counter() - judged  # the judge's time is not the run's

    result = nstkit.stylize(content, style, preset="robust", steps=steps, max_dim=size, weights=weights,
                            callbacks=[keep], progress=False, **options)
    # The judged loss of the image the run would have returned at each snapshot (its own best so far: in
    # bfloat16, the judge may rank an earlier one better, but the run returns this one).
    curve = [(seconds, _judge(loop, rgb)) for _, seconds, rgb in snapshots]
    reached = next((seconds for seconds, loss in curve if loss <= target), None)
    record = result.record
    return {"seconds_to_target": reached, "steps_run": record["steps_run"], "curve": curve,
            "seconds_per_step": record["seconds_per_step"], "final_loss": curve[-1][1] if curve else None,
            "optimizer": record["config"]["optimizer"], "precision": record["config"]["precision"],
            "optimizer_chosen": record.get("optimizer_chosen")}


def at_full_size(progress) -> bool:
    """Whether a callback's step is at the output's size (not a coarse level's): its image can be judged."""
    return progress.schedule[progress.stage].size == progress.schedule[-1].size


def _judge(loop: SeedLoop, rgb: np.ndarray) -> float:
    from nstkit.media.images import preprocess

    return loop.loss(preprocess(rgb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), help="bundled content:style pairs")
    parser.add_argument("--seed-steps", type=int, default=500, help="the seed loop's steps that set the target")
    parser.add_argument("--every", type=int, default=5, help="score a candidate's image every N steps")
    parser.add_argument("--candidates", nargs="*", default=list(RUN_BY_DEFAULT),
                        help=f"labels to run, or 'all' (default: {', '.join(RUN_BY_DEFAULT)})")
    parser.add_argument("--plot", type=Path, default=None, help="save loss against wall time here (PNG), last run")
    parser.add_argument("--json", type=Path, default=None, help="save the numbers here")
    parser.add_argument("--quick", action="store_true", help="96 px, one pair and 20 seed steps: a check of the script")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.pairs, args.seed_steps, args.every = [96], args.pairs[:1], 20, 2
    labels = list(CANDIDATES) if args.candidates == ["all"] else args.candidates
    unknown = [label for label in labels if label not in CANDIDATES]
    if unknown:
        raise SystemExit(f"unknown candidate(s) {unknown}: choose from {list(CANDIDATES)} or 'all'")

    from nstkit.network.device import describe

    print(f"machine: {describe()}")
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        weights = str(weights_file(Path(folder)))
        for size in args.sizes:
            for pair in args.pairs:
                runs.append(compare(pair, size, weights, labels, args))
    print(f"\nthe defaults against the seed's loop, one run each (ratio of wall times to its {args.seed_steps}-step "
          "best loss):")
    for run in runs:
        row = run["candidates"].get(DEFAULTS)
        if row:
            reached = row["seconds_to_target"]
            ratio = f"{run['seed_seconds'] / reached:.1f}x" if reached else "not reached"
            print(f"  {run['size']:4d} px  {run['pair']:28s} {ratio:>12s}  ({row['optimizer']}, {row['precision']}, "
                  f"{row['seconds_per_step']:.3f} s/evaluation; the seed's loop {run['seed_seconds_per_step']:.3f} "
                  "s/step)")
    if args.json:
        args.json.write_text(json.dumps({"machine": describe(), "runs": runs}, indent=1))
    if args.plot:
        plot(runs[-1], args.plot)


def compare(pair: str, size: int, weights: str, labels: list[str], args) -> dict:
    """One pair at one size: the objective checked, the seed's target, then each candidate against it."""
    import nstkit
    from nstkit.media.images import preprocess

    print(f"\n{pair} at {size} px")
    content, style = images(size, pair)
    loop = SeedLoop(preprocess(content), preprocess(style), weights)
    check = check_same_objective(loop, content, style, weights, size)
    seed_curve = []
    loop.run(args.seed_steps, on_step=lambda step, seconds, loss: seed_curve.append((seconds, loss)))
    seed_best = np.minimum.accumulate([loss for _, loss in seed_curve])
    target = float(seed_best[-1])
    # The seed's time to its own best: the first step that reached it (Adam at lr 20 may get there early).
    first = int(np.argmax(seed_best <= target))
    seed_seconds = seed_curve[first][0]
    print(f"seed loop: {args.seed_steps} steps, {seed_curve[-1][0] / args.seed_steps:.3f} s/step; target loss "
          f"{target:.4g}, its best, first reached at step {first + 1} after {seed_seconds:.1f} s")
    for precision in sorted({CANDIDATES[label].get("precision", "auto") for label in labels}):
        # Build and cache each precision's folded network once, so no candidate pays it for another.
        nstkit.stylize(content, style, preset="robust", steps=2, max_dim=size, weights=weights, precision=precision,
                       progress=False)
    rows = {}
    for label in labels:
        row = run_candidate(CANDIDATES[label], content, style, weights, size, args.seed_steps, target, loop,
                            args.every)
        rows[label] = row
        reached = row["seconds_to_target"]
        ratio = f"{seed_seconds / reached:.1f}x" if reached else "not reached"
        print(f"{label:38s} {row['steps_run']:5d} steps, {row['seconds_per_step'] or 0:.3f} s/step, "
              f"to target: {f'{reached:.1f} s' if reached else '-':>8s}  vs the seed's loop: {ratio}"
              f"  (best float32 loss {row['final_loss']:.4g})")
    return {"pair": pair, "size": size, "seed_steps": args.seed_steps, "target_loss": target,
            "seed_seconds": seed_seconds, "seed_seconds_per_step": seed_curve[-1][0] / args.seed_steps,
            "objective_check": check, "seed_curve": [(s, float(b)) for (s, _), b in zip(seed_curve, seed_best)],
            "candidates": rows}


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nstkit.network.device import describe
    from nstkit.ui.figures import FIGURE_DPI, add_caption, fill, use_legible_defaults

    use_legible_defaults()
    figure, axes = plt.subplots(figsize=(8, 5))
    seconds, losses = zip(*summary["seed_curve"])
    axes.plot(seconds, losses, color="black", lw=2, label="the seed's eager loop")
    for label, row in summary["candidates"].items():
        if row["curve"]:
            axes.plot(*zip(*row["curve"]), label=label)
    axes.axhline(summary["target_loss"], color="grey", ls=":", lw=1)
    axes.set(xscale="log", yscale="log", xlabel="wall time (s)", ylabel="best loss so far (seed's float32 objective)",
             title=fill(f"time to quality, robust preset, {summary['pair']}, {summary['size']} px, random weights "
                        "(BN randomised)", 8))
    axes.legend()
    figure.tight_layout()
    add_caption(figure, describe())
    figure.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")


if __name__ == "__main__":
    main()
