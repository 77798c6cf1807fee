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
    from nstkit.core.presets import SEED_ROBUST_STYLE_LIST, get_preset

    chosen = get_preset(preset)
    style_list = list(SEED_ROBUST_STYLE_LIST) if preset == "robust" else list(chosen.style_layers)
    return style_list, list(chosen.content_layers)


class SeedLoop:
    """The seed's objective and loop on given content and style images (caffe BGR, (1, H, W, 3) float32).

    ``weights`` as nstkit takes it ("random", a local .h5 path): the seed
    loaded Keras' ResNet-50 the same way. `loss` scores an image under the
    seed's float32 objective (the judge `time_to_quality.py` uses for every
    candidate); `run` takes the seed's Adam steps from the content image.
    """

    def __init__(self, content, style, weights: str = "random", preset: str = "robust"):
        import keras
        import tensorflow as tf

        from nstkit.network.backbone import load_resnet50

        self.style_list, self.content_list = seed_style_lists(preset)
        base, _ = load_resnet50(weights)
        names = list(dict.fromkeys(self.style_list + self.content_list))
        self.model = keras.Model(base.input, [base.get_layer(n).output for n in names])
        self.index = {n: i for i, n in enumerate(names)}
        self.content = tf.constant(content, tf.float32)
        style_outputs = self.model(tf.constant(style, tf.float32))
        content_outputs = self.model(self.content)
        self.style_targets = [self._gram(style_outputs[self.index[n]]) for n in self.style_list]
        self.content_targets = [content_outputs[self.index[n]] for n in self.content_list]

    @staticmethod
    def _gram(x):
        import tensorflow as tf

        return tf.linalg.einsum("bijc,bijd->bcd", x, x) / tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)

    def _loss(self, image):
        import tensorflow as tf

        outputs = self.model(image)
        style_loss = tf.add_n([tf.reduce_mean((self._gram(outputs[self.index[n]]) - t) ** 2)
                               for n, t in zip(self.style_list, self.style_targets)]) / len(self.style_list)
        content_loss = tf.add_n([tf.reduce_mean((outputs[self.index[n]] - t) ** 2)
                                 for n, t in zip(self.content_list, self.content_targets)]) / len(self.content_list)
        return 1e7 * style_loss + 1e2 * content_loss

    def loss(self, image) -> float:
        """The seed's loss of ``image`` (caffe BGR, (1, H, W, 3)), in float32."""
        import tensorflow as tf

        return float(self._loss(tf.constant(image, tf.float32)))

    def run(self, steps: int, on_step=None, cpu_times: list[float] | None = None) -> list[float]:
        """The seed's loop for ``steps`` steps from the content; returns each step's seconds.

        ``on_step(step, seconds_so_far, loss)`` after each step, with the loss of the image before its update.
        """
        import keras
        import tensorflow as tf

        from nstkit.media.images import pixel_bounds

        image = tf.Variable(self.content)
        optimizer = keras.optimizers.Adam(learning_rate=20.0, beta_1=0.99, epsilon=0.1)
        low, high = pixel_bounds()
        times = []
        for step in range(steps):
            start, cpu_start = time.perf_counter(), time.process_time()
            with tf.GradientTape() as tape:
                loss = self._loss(image)
            gradient = tape.gradient(loss, image)
            optimizer.apply_gradients([(gradient, image)])
            image.assign(tf.clip_by_value(image, low, high))
            value = float(loss)  # the seed read the loss every step
            times.append(time.perf_counter() - start)
            if cpu_times is not None:
                cpu_times.append(time.process_time() - cpu_start)
            if on_step is not None:
                on_step(step + 1, sum(times), value)
        return times


def eager_step_times(size: int, steps: int, warmup: int, preset: str,
                     cpu_times: list[float] | None = None) -> list[float]:
    """Seconds of each of ``steps`` timed steps, after ``warmup`` untimed ones, on a size×size image.

    ``cpu_times``, if given, receives each timed step's process CPU seconds (all threads).
    """
    rng = np.random.default_rng(0)
    content = rng.uniform(-100, 100, (1, size, size, 3)).astype(np.float32)
    loop = SeedLoop(content, content, "random", preset)  # the content as its own style: timing only
    cpu: list[float] = []
    times = loop.run(warmup + steps, cpu_times=cpu)
    if cpu_times is not None:
        cpu_times.extend(cpu[warmup:])
    return times[warmup:]
