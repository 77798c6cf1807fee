"""Seconds per step: nstkit's compiled step vs the seed's eager GradientTape loop, in one run.

    python benchmarks/step_time.py [--sizes 256 512] [--steps 8] [--preset robust]

Both loops use the same truncated ResNet-50 (seeded random weights: speed
does not depend on the weight values), the same layers, Adam settings and
clipping. The eager loop is written as the seed wrote it: the 15-entry style
list with its repeats, a Keras model called eagerly under a GradientTape.
Prints the median seconds per step after warm-up, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def nstkit_step_times(size: int, steps: int, warmup: int, preset: str) -> list[float]:
    import nstkit

    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    stamps: list[float] = []
    nstkit.stylize(content, style, preset=preset, weights="random", steps=warmup + steps, max_dim=size,
                   callbacks=[lambda progress: stamps.append(time.perf_counter())])
    return list(np.diff(stamps[warmup - 1:]))


def eager_step_times(size: int, steps: int, warmup: int, preset: str) -> list[float]:
    """The seed's loop: eager model call, a Gram per list entry (repeats included), Adam, clip."""
    import keras
    import tensorflow as tf

    from nstkit.backbone import load_resnet50
    from nstkit.images import pixel_bounds
    from nstkit.layers import SEED_ROBUST_STYLE_LIST, get_preset

    chosen = get_preset(preset)
    style_list = SEED_ROBUST_STYLE_LIST if preset == "robust" else list(chosen.style_layers)
    content_list = list(chosen.content_layers)
    base, _ = load_resnet50("random")
    names = list(dict.fromkeys(style_list + content_list))
    model = keras.Model(base.input, [base.get_layer(n).output for n in names])
    index = {n: i for i, n in enumerate(names)}

    def gram(x):
        return tf.linalg.einsum("bijc,bijd->bcd", x, x) / tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)

    rng = np.random.default_rng(0)
    content = tf.constant(rng.uniform(-100, 100, (1, size, size, 3)), tf.float32)
    outputs = model(content)
    style_targets = [gram(outputs[index[n]]) for n in style_list]
    content_targets = [outputs[index[n]] for n in content_list]
    image = tf.Variable(content)
    optimizer = keras.optimizers.Adam(learning_rate=20.0, beta_1=0.99, epsilon=0.1)
    low, high = pixel_bounds()
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        with tf.GradientTape() as tape:
            outputs = model(image)
            style_loss = tf.add_n([tf.reduce_mean((gram(outputs[index[n]]) - t) ** 2)
                                   for n, t in zip(style_list, style_targets)]) / len(style_list)
            content_loss = tf.add_n([tf.reduce_mean((outputs[index[n]] - t) ** 2)
                                     for n, t in zip(content_list, content_targets)]) / len(content_list)
            loss = 1e7 * style_loss + 1e2 * content_loss
        gradient = tape.gradient(loss, image)
        optimizer.apply_gradients([(gradient, image)])
        image.assign(tf.clip_by_value(image, low, high))
        float(loss)  # the seed read the loss every step
        times.append(time.perf_counter() - start)
    return times[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per loop")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--preset", default="robust")
    args = parser.parse_args()
    import tensorflow as tf

    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU x{os.cpu_count()}"
    print(f"# {platform.processor() or platform.machine()}, {device}, TF {tf.__version__}, preset {args.preset}")
    print(f"{'size':>5} {'nstkit s/step':>14} {'eager s/step':>13} {'speed-up':>9}")
    for size in args.sizes:
        ours = statistics.median(nstkit_step_times(size, args.steps, args.warmup, args.preset))
        eager = statistics.median(eager_step_times(size, args.steps, args.warmup, args.preset))
        print(f"{size:>5} {ours:>14.3f} {eager:>13.3f} {eager / ours:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
