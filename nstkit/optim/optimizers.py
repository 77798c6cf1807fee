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


class _Closed(Exception):
    """Raised inside scipy's objective call to end a driver the engine no longer needs."""


class LBFGSB:
    """L-BFGS-B (scipy's, `scipy.optimize.minimize(method="L-BFGS-B", jac=True)`) on one image's parameters.

    Why scipy's and not tfp's or our own: it is the reference implementation
    (Byrd, Lu, Nocedal & Zhu 1995, as in Gatys' and jcjohnson's code),
    handles the pixel box natively (Adam clips after each step), and costs
    a few ms per evaluation on the host against a network pass of 0.1-0.4 s;
    tfp's `lbfgs_minimize` has no bounds and needs tf-keras beside Keras 3.

    scipy calls the objective itself; the run engine wants to call a step. So
    `minimize` runs in a driver thread, and each point it asks for is handed to
    the engine (`next_point`), which evaluates it in its own compiled function
    and hands back the loss and gradient (`answer`). One engine step is one
    function evaluation, as the anchors count L-BFGS's iterations. Line-search
    evaluations are steps too: each is an image scored for "best".

    Its curvature memory lives inside scipy, so a checkpoint cannot hold it:
    a resumed L-BFGS run restarts its memory at the best image so far (the
    stage's ``lbfgs_restarts`` in the run record lists it), and is not
    byte-identical to an uninterrupted one.
    """

    memory = 10  # correction pairs kept: scipy's default maxcor (nstkit.memory counts what they hold)

    def __init__(self, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None, evaluations: int):
        import queue
        import threading

        self.shape = x0.shape
        self.evaluations = evaluations
        self._points: "queue.Queue[np.ndarray | None]" = queue.Queue()  # unbounded: a put never blocks
        self._answers: "queue.Queue[tuple[float, np.ndarray] | None]" = queue.Queue()
        self.message: str | None = None  # scipy's, once it has ended on its own
        self.x: np.ndarray | None = None  # its best point then (float64, flat)
        self.improved = False  # whether that point's loss is below the first one it was given
        self.error: BaseException | None = None
        self._first_loss: float | None = None
        low, high = bounds if bounds is not None else (None, None)
        start = x0.astype(np.float64).ravel()
        if bounds is not None:
            start = np.clip(start, low.ravel(), high.ravel())
        self._thread = threading.Thread(target=self._drive, args=(start, low, high), daemon=True,
                                        name="nstkit-lbfgs")
        self._thread.start()

    def _drive(self, start: np.ndarray, low, high) -> None:
        def objective(x: np.ndarray):
            self._points.put(x)
            answer = self._answers.get()
            if answer is None:
                raise _Closed
            return answer

        try:
            from scipy.optimize import (  # in the try: a failed import reaches the engine too
                Bounds,
                minimize,
            )

            result = minimize(objective, start, jac=True, method="L-BFGS-B",
                              bounds=Bounds(low.ravel(), high.ravel()) if low is not None else None,
                              # No tolerance ends a run early: the step budget does (and a stalled line search).
                              options={"maxfun": self.evaluations, "maxiter": self.evaluations,
                                       "maxcor": self.memory, "ftol": 0.0, "gtol": 0.0})
            self.message, self.x = str(result.message), result.x
            self.improved = self._first_loss is not None and float(result.fun) < self._first_loss
        except _Closed:
            pass
        except BaseException as error:  # handed to the engine's thread, which raises it
            self.error = error
        finally:
            self._points.put(None)

    def next_point(self) -> np.ndarray | None:
        """The point scipy wants evaluated next (float32, the variable's shape); None once it has ended."""
        point = self._points.get()
        if point is None:
            if self.error is not None:
                raise self.error
            return None
        return point.reshape(self.shape).astype(np.float32)

    def answer(self, loss: float, gradient: np.ndarray) -> None:
        if self._first_loss is None:
            self._first_loss = float(loss)
        self._answers.put((float(loss), np.asarray(gradient, np.float64).ravel()))

    def close(self) -> None:
        """End the driver thread (the engine has all the steps it planned, or was stopped)."""
        if self._thread.is_alive():
            self._answers.put(None)  # the objective call waiting for it (or the next one) raises _Closed
            self._thread.join()


class RestartingLBFGSB:
    """L-BFGS-B over one stage's budget of evaluations, restarted when it ends before the budget.

    scipy ends a run when its line search cannot improve (an "ABNORMAL" stop), often far from done on this
    objective. Then the memory restarts once from the best point so far, if the run that ended gained
    anything (so restarts never loop); a resumed stage restarts it too (scipy's memory is not in a
    checkpoint). ``best_point(ended)`` gives the point to (re)start from: the caller knows the best image
    scored so far, never a rejected line-search trial.
    """

    def __init__(self, bounds, evaluations: int, done: int = 0, restarts: list[int] | None = None):
        self.bounds, self.left, self.done = bounds, evaluations - done, done
        self.restarts: list[int] = list(restarts or [])  # evaluations at which the memory restarted
        self.ended: str | None = None  # why it stopped before the budget, if it did
        self._driver: LBFGSB | None = None

    def reset(self, evaluations: int) -> None:
        """A new run of the same stage (video's next frame): the whole budget, no history."""
        self.close()
        self.left, self.done, self.restarts, self.ended, self._driver = evaluations, 0, [], None, None

    def next_point(self, best_point) -> np.ndarray | None:
        """The next point to evaluate; None once L-BFGS can go no further within the budget."""
        if self._driver is None:  # a stage's start, or a resumed one: from the best point so far
            if self.done:
                self.restarts.append(self.done)  # resumed: the memory restarts here
            self._driver = LBFGSB(best_point(None), self.bounds, self.left)
        point = self._driver.next_point()
        if point is None and self.left > 0:
            ended = self._driver
            if ended.improved:  # each restart must have gained something: no endless restarts
                self.restarts.append(self.done)
                self._driver = LBFGSB(best_point(ended), self.bounds, self.left)
                point = self._driver.next_point()
            if point is None:
                self.ended = f"L-BFGS-B ended after {self.done} evaluations: {ended.message}"
        return point

    def answer(self, loss: float, gradient: np.ndarray) -> None:
        self._driver.answer(loss, gradient)
        self.done += 1
        self.left -= 1

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()

    def describe(self) -> dict:
        return {"lbfgs_restarts": self.restarts, **({"ended": self.ended} if self.ended else {})}

    def snapshot(self) -> dict:
        return {"evaluations": self.done, "lbfgs_restarts": self.restarts}

