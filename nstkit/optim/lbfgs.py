"""L-BFGS in the compiled step, at the cost of an Adam step; and scipy's L-BFGS-B, the reference it is tested against.

Why two. scipy's L-BFGS-B (`LBFGSB`) is the textbook method, but on this
problem it works in float64 on the host: every evaluation copies the image
and its gradient between device and host, and its box constraint's Cauchy
point costs about 0.17 s on 786k variables (measured at 512 px, 2 cores),
so an evaluation cost about twice an Adam step. `LBFGS` runs inside the
step's `tf.function`, next to the network:

- the two-loop recursion (Nocedal & Wright, Algorithm 7.4) over the last
  ``memory`` correction pairs, in float32, with the usual initial scaling
  γ = sᵀy / yᵀy;
- a backtracking line search on the Armijo condition (as neural-style and
  pystiche take Torch's L-BFGS without Wolfe's curvature test), each trial
  one engine step, so the run's step budget counts evaluations as before;
  the first trial of an iteration is the full step, which is accepted most
  of the time, so an iteration usually costs one evaluation; a rejected
  trial shrinks the step by quadratic interpolation (to 10%..50% of it);
- bounds kept by projection: the direction's components that would leave
  the pixel box at a pixel on its bound are zeroed and the trial point is
  clipped into the box (projected L-BFGS, as in Kim, Sra & Dhillon 2010),
  instead of L-BFGS-B's Cauchy point;
- a correction pair is kept only if sᵀy > 0 (the curvature the Hessian
  model needs), and a search that fails `MAX_TRIES` times, or a direction
  that is no descent once projected, drops the memory and restarts from
  the steepest descent; a trial is accepted only with a finite loss and
  gradient and a projected step that descends; when the steepest descent
  itself finds no decrease in `MAX_TRIES` trials, L-BFGS has stalled (at
  float32's resolution of the loss, or on rounded losses) and says so
  (`stalled`), and the stage ends, as scipy's does.

Everything it carries is a TF variable, so a checkpoint holds all of it and
a resumed run takes the same steps as an uninterrupted one (the same bytes
on the CPU), which scipy's memory could never give.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MEMORY = 10  # correction pairs kept (scipy's default maxcor); benchmarks/lbfgs_memory.py measured 5-20
ARMIJO = 1e-4  # sufficient decrease: f(x + s) <= f(x) + ARMIJO * gᵀs (Nocedal & Wright's c1)
MAX_TRIES = 8  # rejected trials at one iterate before the memory is dropped
# The first trial step (and each restart's) moves the entry the direction moves most by this much, in the
# variable's units: caffe pixels (measured at 128 px, chelsea x mosaic, random weights: 100 matched scipy's
# loss after 40 and 120 evaluations within 11% and 9%; 3, 10, 30, 300 and 1000 did worse), or a Fourier
# spectrum's coefficients (scaled as Adam's rates are, 20 : 0.05; not tuned).
INITIAL_STEP = {"pixel": 100.0, "fourier": 0.25}
CURVATURE_EPSILON = 1e-10  # a pair with sᵀy <= this * yᵀy carries no usable curvature: skipped


class LBFGS:
    """L-BFGS with a backtracking line search and projection onto a box, in TF variables (see the module docstring).

    Inside a compiled step: evaluate the loss and gradient at ``variable``, then `propose` them; it decides
    whether that trial point is accepted, and leaves ``variable`` at the next point to evaluate.

    The inverse-Hessian model is applied in its compact form (Byrd, Nocedal & Schnabel 1994; Nocedal & Wright
    eq. 7.24): the pairs sit as rows of two (memory, N) matrices, and H·g is four matrix-vector products and
    a few (memory x memory) triangular solves. The two-loop recursion gives the same vector, but as 4 x memory
    reads of single rows, each a copy in TF: it measured 3x slower at 512 px.
    """

    def __init__(self, variable, bounds: tuple[np.ndarray, np.ndarray] | None, memory: int = MEMORY,
                 initial_step: float = INITIAL_STEP["pixel"]):
        import tensorflow as tf

        self.variable, self.memory, self.initial_step = variable, int(memory), float(initial_step)
        self.shape = tuple(variable.shape)
        size = int(np.prod(self.shape))
        self.low = self.high = None
        if bounds is not None:
            self.low, self.high = (tf.constant(np.broadcast_to(b, self.shape).ravel(), tf.float32) for b in bounds)

        def zeros(*shape):
            return tf.Variable(tf.zeros(shape, tf.float32), trainable=False)

        self.x, self.g, self.d = zeros(size), zeros(size), zeros(size)  # the accepted iterate, its gradient, the way
        self.s, self.y = zeros(self.memory, size), zeros(self.memory, size)  # correction pairs, a ring of rows
        self.sy, self.yy = zeros(self.memory, self.memory), zeros(self.memory, self.memory)  # sᵢᵀyⱼ, yᵢᵀyⱼ by slot
        self.f = tf.Variable(0.0, trainable=False)  # the loss at x
        self.alpha = tf.Variable(0.0, trainable=False)  # the step length of the trial being evaluated
        self.gamma = tf.Variable(1.0, trainable=False)  # sᵀy / yᵀy of the newest pair: the initial Hessian scale
        self.counters = {name: tf.Variable(0, dtype=tf.int32, trainable=False)
                         for name in ("pairs", "head", "started", "tries",  # the ring of pairs, the search
                                      "iterations", "rejected", "restarts", "skipped", "stalled")}  # the record's

    # -------------------------------------------------------------------------------------------- in the graph

    def propose(self, loss, gradient) -> None:
        """Judge the trial point in ``variable`` by its ``loss`` and ``gradient``; set ``variable`` to the next."""
        import tensorflow as tf

        c = self.counters
        trial = tf.reshape(self.variable, [-1])
        loss, gradient = tf.cast(loss, tf.float32), tf.reshape(tf.cast(gradient, tf.float32), [-1])
        step = trial - self.x
        slope = _dot(self.g, step)  # negative for a descent; projection can make a descent direction's step not one
        sufficient = tf.logical_and(slope < 0, loss <= self.f + ARMIJO * slope)
        finite = tf.logical_and(tf.math.is_finite(loss), tf.reduce_all(tf.math.is_finite(gradient)))
        accepted = tf.logical_or(tf.equal(c["started"], 0), tf.logical_and(sufficient, finite))
        tf.cond(accepted, lambda: self._accept(trial, loss, gradient, step), lambda: self._reject(loss, step))
        self.variable.assign(tf.reshape(self._project(self.x + self.alpha * self.d), self.shape))

    def _accept(self, trial, loss, gradient, step):
        import tensorflow as tf

        c = self.counters
        change = gradient - self.g
        sy, yy = _dot(step, change), _dot(change, change)
        keep = tf.logical_and(c["started"] > 0, sy > CURVATURE_EPSILON * yy)
        tf.cond(keep, lambda: self._remember(step, change, sy, yy), lambda: self._skip(c["started"] > 0))
        self.x.assign(trial)
        self.f.assign(loss)
        self.g.assign(gradient)
        held = self._held(gradient)  # entries on a bound that the gradient pushes out: not the model's to move
        direction = -self.inverse_hessian_times(tf.where(held, 0.0, gradient))
        direction = self._feasible(tf.where(held, 0.0, direction))
        descends = _dot(gradient, direction) < 0
        tf.cond(descends, lambda: self._head_for(direction, c["pairs"] > 0), self._restart)
        c["started"].assign(1)
        c["tries"].assign(0)
        c["iterations"].assign_add(1)
        return tf.constant(0)

    def _reject(self, loss, step):
        import tensorflow as tf

        c = self.counters
        c["rejected"].assign_add(1)
        c["tries"].assign_add(1)
        # The quadratic through f(x), its slope along the step and f(trial), minimised: a fraction of the step.
        slope = _dot(self.g, step)
        curve = loss - self.f - slope
        fraction = tf.where(tf.logical_and(tf.math.is_finite(curve), curve > 0), -slope / (2.0 * curve), 0.1)
        self.alpha.assign(self.alpha * tf.clip_by_value(fraction, 0.1, 0.5))
        # Too many rejections: drop a memory that misleads; with none left, the steepest descent found nothing.
        tf.cond(c["tries"] >= MAX_TRIES,
                lambda: tf.cond(c["pairs"] > 0, self._restart, self._stall), lambda: tf.constant(0))
        return tf.constant(0)

    def _stall(self):
        import tensorflow as tf

        self.counters["stalled"].assign(1)
        return tf.constant(0)

    def _remember(self, step, change, sy, yy):
        """Store the pair in the oldest slot, and its products with every stored pair."""
        import tensorflow as tf

        c = self.counters
        slot = c["head"]
        self.s.scatter_update(tf.IndexedSlices(step[None], slot[None]))
        self.y.scatter_update(tf.IndexedSlices(change[None], slot[None]))
        with_y = tf.linalg.matvec(self.s, change)  # sᵢᵀ y_new
        with_s = tf.linalg.matvec(self.y, step)  # yᵢᵀ s_new: s_newᵀ yᵢ
        y_with_y = tf.linalg.matvec(self.y, change)  # yᵢᵀ y_new
        self.sy.assign(_set_row_and_column(self.sy, slot, row=with_s, column=with_y))
        self.yy.assign(_set_row_and_column(self.yy, slot, row=y_with_y, column=y_with_y))
        self.gamma.assign(sy / yy)
        c["head"].assign((slot + 1) % self.memory)
        c["pairs"].assign(tf.minimum(c["pairs"] + 1, self.memory))
        return tf.constant(0)

    def _skip(self, counted):
        import tensorflow as tf

        self.counters["skipped"].assign_add(tf.cast(counted, tf.int32))
        return tf.constant(0)

    def _restart(self):
        """Drop the memory; head down the (feasible) steepest descent from the accepted iterate."""
        import tensorflow as tf

        c = self.counters
        c["pairs"].assign(0)
        c["tries"].assign(0)
        c["restarts"].assign_add(tf.cast(c["started"] > 0, tf.int32))
        self.gamma.assign(1.0)
        return self._head_for(self._feasible(-self.g), tf.constant(False))

    def _head_for(self, direction, curved):
        """Set the direction, and the first trial's step: the full step once the memory has curvature, else one
        that moves the largest entry ``initial_step``."""
        import tensorflow as tf

        self.d.assign(direction)
        largest = tf.reduce_max(tf.abs(direction))
        first = tf.where(largest > 0, self.initial_step / tf.maximum(largest, 1e-30), 0.0)
        self.alpha.assign(tf.where(curved, 1.0, first))
        return tf.constant(0)

    def inverse_hessian_times(self, vector):
        """H·vector, H the L-BFGS model of the stored pairs with H₀ = γI (γ = sᵀy / yᵀy of the newest pair).

        H = γI + [S γY] [[R⁻ᵀ(D + γYᵀY)R⁻¹, -R⁻ᵀ], [-R⁻¹, 0]] [Sᵀ; γYᵀ], pairs oldest first, R the upper
        triangle of SᵀY and D its diagonal. Unused slots get an identity row in R and zeros elsewhere, so
        they drop out.
        """
        import tensorflow as tf

        c, m, gamma = self.counters, self.memory, self.gamma
        order = (c["head"] + tf.range(m)) % m  # slots, oldest first (unused ones, if any, before the used)
        used = tf.cast(tf.range(m) >= m - c["pairs"], tf.float32)
        both = used[:, None] * used[None, :]
        sy = tf.gather(tf.gather(self.sy, order, axis=0), order, axis=1) * both
        yy = tf.gather(tf.gather(self.yy, order, axis=0), order, axis=1) * both
        r = tf.linalg.band_part(sy, 0, -1) + tf.linalg.diag(1.0 - used)
        u = tf.gather(tf.linalg.matvec(self.s, vector), order)[:, None] * used[:, None]  # Sᵀv
        w = tf.gather(tf.linalg.matvec(self.y, vector), order)[:, None] * used[:, None]  # Yᵀv
        r_inv_u = tf.linalg.triangular_solve(r, u, lower=False)
        inner = tf.linalg.matvec(tf.linalg.diag(tf.linalg.diag_part(sy)) + gamma * yy, r_inv_u[:, 0])[:, None]
        top = tf.linalg.triangular_solve(r, inner - gamma * w, lower=False, adjoint=True)
        by_slot = tf.math.invert_permutation(order)
        top, bottom = tf.gather(top[:, 0], by_slot), tf.gather(-r_inv_u[:, 0], by_slot)
        return (gamma * vector + tf.linalg.matvec(self.s, top, transpose_a=True)
                + gamma * tf.linalg.matvec(self.y, bottom, transpose_a=True))

    def _held(self, gradient):
        """Entries of the iterate on a bound with the gradient pushing them out (the active set): all False
        without bounds."""
        import tensorflow as tf

        if self.low is None:
            return tf.zeros_like(gradient, tf.bool)
        return tf.logical_or(tf.logical_and(self.x <= self.low, gradient > 0),
                             tf.logical_and(self.x >= self.high, gradient < 0))

    def _feasible(self, direction):
        """The direction without the components that would leave the box at an entry already on its bound."""
        import tensorflow as tf

        if self.low is None:
            return direction
        leaving = tf.logical_or(tf.logical_and(self.x <= self.low, direction < 0),
                                tf.logical_and(self.x >= self.high, direction > 0))
        return tf.where(leaving, tf.zeros_like(direction), direction)

    def _project(self, point):
        import tensorflow as tf

        return point if self.low is None else tf.clip_by_value(point, self.low, self.high)

    # -------------------------------------------------------------------------------------------- outside it

    def stalled(self) -> bool:
        """Whether the steepest descent from the best point found no decrease: the stage can end (see above)."""
        return bool(self.counters["stalled"].numpy())

    def reset(self) -> None:
        """A fresh start from ``variable`` (a video's next frame): no memory, no iterate."""
        for counter in self.counters.values():
            counter.assign(0)
        self.gamma.assign(1.0)

    def take_memory(self, other: "LBFGS") -> None:
        """Start with ``other``'s correction pairs (a search over a variable of the same shape, which has ended).

        A float32 finish after a bfloat16 stage (`run.schedule.float32_finish`): the pairs describe the same
        loss's curvature near the same point, so the finish's first direction is a quasi-Newton one, not a
        steepest descent that must relearn it. Its first evaluation, as any search's, is taken as the iterate
        without a test (the losses of the stage before were rounded: no test against them would be fair).
        """
        for name in ("s", "y", "sy", "yy", "gamma"):
            getattr(self, name).assign(getattr(other, name))
        for name in ("pairs", "head"):
            self.counters[name].assign(other.counters[name])

    def describe(self) -> dict[str, Any]:
        """For the run record: how the search went (iterations = accepted points; each trial is a step)."""
        counts = {name: int(v.numpy()) for name, v in self.counters.items()}
        return {"lbfgs": {"memory": self.memory, "iterations": counts["iterations"],
                          "rejected_trials": counts["rejected"], "restarts": counts["restarts"],
                          "skipped_pairs": counts["skipped"],
                          **({"ended": "stalled: the steepest descent found no decrease (the loss at float32's "
                                       "resolution, or rounded)"} if counts["stalled"] else {})}}

    _ARRAYS = ("x", "g", "d", "s", "y", "sy", "yy")

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Everything it carries: the checkpoint's part (a resumed run takes the same steps)."""
        meta = {"lbfgs_" + name: int(v.numpy()) for name, v in self.counters.items()}
        meta.update(lbfgs_f=float(self.f.numpy()), lbfgs_alpha=float(self.alpha.numpy()),
                    lbfgs_gamma=float(self.gamma.numpy()))
        return meta, {"lbfgs_" + name: getattr(self, name).numpy() for name in self._ARRAYS}

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for name, counter in self.counters.items():
            counter.assign(meta["lbfgs_" + name])
        for name in ("f", "alpha", "gamma"):
            getattr(self, name).assign(meta["lbfgs_" + name])
        for name in self._ARRAYS:
            getattr(self, name).assign(arrays["lbfgs_" + name])


def _set_row_and_column(matrix, index, row, column):
    """``matrix`` with row ``index`` set to ``row`` and column ``index`` to ``column`` (small, in the graph)."""
    import tensorflow as tf

    size = matrix.shape[0]
    at = tf.one_hot(index, size)
    matrix = matrix * (1.0 - at[:, None]) + at[:, None] * row[None, :]
    return matrix * (1.0 - at[None, :]) + column[:, None] * at[None, :]


def _dot(a, b):
    import tensorflow as tf

    return tf.reduce_sum(a * b)


# ------------------------------------------------------------------------------------ the reference: scipy's

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

