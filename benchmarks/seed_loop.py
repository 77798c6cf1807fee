"""The seed's optimisation loop, the baseline every speed-up in BENCHMARKS.md is measured against.

Written as the seed wrote it: the unfolded float32 Keras ResNet-50 (cut at
the deepest requested layer, as Keras' functional model does by itself),
called eagerly under a `tf.GradientTape`, one Gram per entry of the style list
(the robust list's repeats computed again), Adam(lr 20, β1 0.99, ε 0.1),
clipping to the pixel bounds, and the loss read back to Python every step.
This is the only copy: `suite.py` and `gpu.py` import it.
"""

from __future__ import annotations

import time

import numpy as np


def seed_style_lists(preset: str) -> tuple[list[str], list[str]]:
    """(style list, content list) as the seed's loop sees them: robust keeps its 15 entries with repeats."""
    from nstkit.layers import SEED_ROBUST_STYLE_LIST, get_preset

    chosen = get_preset(preset)
    style_list = list(SEED_ROBUST_STYLE_LIST) if preset == "robust" else list(chosen.style_layers)
    return style_list, list(chosen.content_layers)


def eager_step_times(size: int, steps: int, warmup: int, preset: str,
                     cpu_times: list[float] | None = None) -> list[float]:
    """Seconds of each of ``steps`` timed steps, after ``warmup`` untimed ones, on a size×size image.

    ``cpu_times``, if given, receives each timed step's process CPU seconds (all threads).
    """
    import keras
    import tensorflow as tf

    from nstkit.backbone import load_resnet50
    from nstkit.images import pixel_bounds

    style_list, content_list = seed_style_lists(preset)
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
    times, cpu = [], []
    for _ in range(warmup + steps):
        start, cpu_start = time.perf_counter(), time.process_time()
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
        cpu.append(time.process_time() - cpu_start)
    if cpu_times is not None:
        cpu_times.extend(cpu[warmup:])
    return times[warmup:]
