"""Adam on the image, with its state in plain TF variables the run engine can carry, resize and save.

The update is Keras' Adam, op for op (keras/src/optimizers/adam.py), so a run
gives the same bytes as one driven by `keras.optimizers.Adam`. Owning the
state is what lets one engine carry it across stages: a coarse stage's
moments are resized with the image into the next stage (`resized`) instead
of thrown away, as crowsonkb/style-transfer-pytorch does between scales.

float16 networks add Keras' dynamic loss scaling (`LossScale`): the seed's
style weight of 1e7 overflows float16's range in the backward pass.
"""

from __future__ import annotations

import numpy as np

FLOAT16_LOSS_SCALE = 2.0 ** -8  # float16's first loss scale; dynamic scaling moves it from there
LOSS_SCALE_GROWTH_STEPS = 100  # clean steps before the scale doubles (Keras' LossScaleOptimizer)


class LearningRate:
    """The learning rate at each update of a run: a linear warm-up, then a geometric decay to its last step.

    ``warmup`` updates rise linearly to ``base`` (the first at base / warmup);
    from there it falls geometrically to ``base * decay`` at the last of
    ``total`` updates.
    warmup 0 and decay 1 is the seed's constant rate, and then the update is
    Keras' Adam's, op for op. The clock is the run's update count over all
    stages, so a coarse-to-fine schedule decays once, not once per stage.
    """

    def __init__(self, base: float, warmup: int = 0, decay: float = 1.0, total: int = 1):
        self.base, self.warmup, self.decay, self.total = base, warmup, decay, max(1, total)

    @property
    def constant(self) -> bool:
        return self.warmup == 0 and self.decay == 1.0

    def at(self, update):
        """The rate for update ``update`` (0-based; a TF int tensor), as a float32 tensor."""
        import tensorflow as tf

        step = tf.cast(update, tf.float32)
        rate = tf.constant(self.base, tf.float32)
        if self.warmup:
            rate *= tf.minimum(1.0, (step + 1.0) / self.warmup)
        if self.decay != 1.0:
            peak = max(self.warmup - 1, 0)  # the update at the full rate, where the decay starts
            done = tf.clip_by_value((step - peak) / max(1, self.total - 1 - peak), 0.0, 1.0)
            rate *= tf.pow(tf.constant(self.decay, tf.float32), done)
        return rate

    def numpy_at(self, update: int) -> float:
        return float(self.at(update).numpy())


class Adam:
    """Adam (Kingma & Ba 2015) for one image variable; ``step`` counts the updates applied so far."""

    def __init__(self, variable, learning_rate: float, beta_1: float, beta_2: float, epsilon: float,
                 step: int = 0, moments: tuple[np.ndarray, np.ndarray] | None = None,
                 schedules: list[LearningRate] | None = None):
        import tensorflow as tf

        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        # One schedule per batch member (their warm-ups may differ); all constant: the seed's scalar rate.
        self.schedules = schedules if schedules and not all(s.constant for s in schedules) else None
        self._rate = tf.Variable(learning_rate, dtype=tf.float32, trainable=False, name="learning_rate")
        self.step = tf.Variable(step, dtype=tf.int64, trainable=False, name="adam_step")
        first, second = moments if moments is not None else (np.zeros(variable.shape, np.float32),) * 2
        self.m = tf.Variable(first, dtype=tf.float32, trainable=False, name="adam_m")
        self.v = tf.Variable(second, dtype=tf.float32, trainable=False, name="adam_v")

    def apply(self, gradient, variable, update=None) -> None:
        """One update of ``variable`` (inside the compiled step); the same ops, in the same order, as Keras.

        ``update``: the run's update count (over all stages), which the learning-rate schedule follows.
        """
        import tensorflow as tf

        rate = tf.cast(self._rate, tf.float32)
        if self.schedules is not None:  # (B, 1, 1, 1): each member's rate at this update
            rate = tf.reshape(tf.stack([schedule.at(update) for schedule in self.schedules]), [-1, 1, 1, 1])
        local_step = tf.cast(self.step + 1, tf.float32)
        beta_1_power = tf.pow(tf.cast(self.beta_1, tf.float32), local_step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, tf.float32), local_step)
        alpha = rate * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        self.m.assign_add(tf.multiply(tf.subtract(gradient, self.m), 1 - self.beta_1))
        self.v.assign_add(tf.multiply(tf.subtract(tf.square(gradient), self.v), 1 - self.beta_2))
        variable.assign_sub(tf.divide(tf.multiply(self.m, alpha), tf.add(tf.sqrt(self.v), self.epsilon)))
        self.step.assign_add(1)

    def restart(self) -> None:
        """No history: zero moments and step count, in the same variables (a compiled step keeps reading them)."""
        self.m.assign(np.zeros(self.m.shape, np.float32))
        self.v.assign(np.zeros(self.v.shape, np.float32))
        self.step.assign(0)

    def resized(self, variable, resize, area_ratio: float) -> "Adam":
        """This optimiser's state for ``variable`` at a new size: moments resized like the image, steps kept.

        Every loss term is a mean over positions, so a pixel's gradient scales
        with 1 / (pixel count): the first moment is rescaled by
        ``area_ratio`` (old area / new) and the second by its square, so the
        next stage's first steps are as large as its own gradients make them;
        the areas are those the stages' gradients are means over (the image's,
        or a tiled stage's window's). ``resize(array, shape)`` resizes a
        (B, H, W, C) array; ``None`` starts afresh, moments and step count (a
        parameterisation whose variable cannot be resized).
        """
        shape = tuple(variable.shape)
        step = int(self.step.numpy())
        if resize is None:
            moments, step = None, 0  # fresh moments: bias correction must not assume a history they lack
        else:
            first = resize(self.m.numpy(), shape) * area_ratio
            second = np.maximum(resize(self.v.numpy(), shape), 0.0) * area_ratio ** 2
            moments = (first.astype(np.float32), second.astype(np.float32))
        return Adam(variable, self.learning_rate, self.beta_1, self.beta_2, self.epsilon, step=step, moments=moments,
                    schedules=self.schedules)


class LossScale:
    """Dynamic loss scaling for float16 networks, as Keras' LossScaleOptimizer does it.

    The loss is multiplied by ``scale`` before the backward pass; a gradient
    with an inf or NaN halves the scale and skips the update; after
    `LOSS_SCALE_GROWTH_STEPS` clean updates the scale doubles.
    """

    def __init__(self, initial: float = FLOAT16_LOSS_SCALE):
        import tensorflow as tf

        self.initial = initial
        self.scale = tf.Variable(initial, dtype=tf.float32, trainable=False, name="loss_scale")
        self.clean = tf.Variable(0, dtype=tf.int64, trainable=False, name="clean_steps")

    def restart(self) -> None:
        self.scale.assign(self.initial)
        self.clean.assign(0)

    def scale_loss(self, loss):
        return loss * self.scale

    def apply(self, optimizer: Adam, scaled_gradient, variable, update=None) -> None:
        import tensorflow as tf

        def finite():
            optimizer.apply(scaled_gradient / self.scale, variable, update)

            def grow():
                self.clean.assign(0)
                self.scale.assign(self.scale * 2.0)

            def count():
                self.clean.assign_add(1)

            tf.cond(tf.equal(self.clean, LOSS_SCALE_GROWTH_STEPS - 1), grow, count)

        def overflow():
            self.clean.assign(0)
            self.scale.assign(self.scale * 0.5)

        tf.cond(tf.reduce_all(tf.math.is_finite(scaled_gradient)), finite, overflow)
