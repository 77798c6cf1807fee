"""Why bf16 helped ResNet-50 little, and what folding BatchNorm changes: four variants, one run.

    python benchmarks/folding.py [--size 512] [--presets robust vanilla] [--steps 6]

Times the forward + backward pass of the style and content losses w.r.t. the
image (what every step of `stylize` costs) through nstkit's feature
extractor, with BatchNorm unfolded (Keras' layers: in mixed precision each
BN casts its bf16 input up to float32 and back) or folded into the convs
(`nstkit.network.folding`), in float32 and bfloat16. Prints median seconds per step
and the speed-up of each variant over unfolded float32.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

VARIANTS = [(False, "float32"), (True, "float32"), (False, "bfloat16"), (True, "bfloat16")]


def step_seconds(size: int, preset: str, fold: bool, precision: str, steps: int) -> float:
    import tensorflow as tf

    from nstkit.core.presets import get_preset
    from nstkit.network.backbone import FeatureExtractor, load_resnet50
    from nstkit.objective.losses import (
        content_loss,
        gram_matrix,
        mean_over_layers,
        style_loss,
    )

    chosen = get_preset(preset)
    model, _ = load_resnet50("random")
    extractor = FeatureExtractor(model, [*chosen.style_layers, *chosen.content_layers], fold=fold,
                                 precision=precision)
    start = np.random.default_rng(0).uniform(-100, 100, (1, size, size, 3)).astype(np.float32)
    targets = extractor(start)
    style_targets = {n: gram_matrix(targets[n]) for n in chosen.style_layers}
    image = tf.Variable(start)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            features = extractor(image)
            loss = (1e7 * style_loss({n: gram_matrix(features[n]) for n in chosen.style_layers}, style_targets,
                                     chosen.style_layers)
                    + 1e2 * mean_over_layers({n: content_loss(features[n], targets[n])
                                              for n in chosen.content_layers}, chosen.content_layers))
        image.assign_sub(1e-9 * tape.gradient(loss, image))
        return loss

    step().numpy()  # trace
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--presets", nargs="+", default=["robust", "vanilla"])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    print(f"{args.size} px, load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print("| preset | BatchNorm | precision | s/step | vs unfolded float32 |")
    print("|---|---|---|---:|---:|")
    for preset in args.presets:
        baseline = None
        for fold, precision in VARIANTS:
            seconds = step_seconds(args.size, preset, fold, precision, args.steps)
            baseline = baseline or seconds
            print(f"| {preset} | {'folded' if fold else 'Keras BN'} | {precision} | {seconds:.3f} "
                  f"| {baseline / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
