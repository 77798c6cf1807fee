"""Gradient sources: how one stage of a run turns the current image into losses and one optimiser update.

The run loop (`loop`, with `state.RunState`) owns the state a run carries (the image, the
optimiser, the best image, the history); a stage's source owns how a step is
computed. Two kinds, keyed in `SOURCES` by the name a `schedule.Stage` gives; each is a `GradientSource`:

- ``"image"`` (`WholeImage`): the whole image through the network in one
  compiled `tf.function`, traced once per stage. The image variable, the
  optimiser's state and the best image all live in TF variables, so a step
  never returns to Python for more than a few loss scalars. That is where
  most of the speed over the seed's eager loop comes from: graph mode prunes
  the filter gradients an eager tape computes and throws away.
- ``"tiles"`` (`TiledWindows`): for images too large for one pass, a Python
  loop over shifting tiles (`tiles`), each window's gradient compiled once,
  blended into one full-size gradient, then one compiled update.

A new kind of stage is one class here, added to `SOURCES`.

Tiled runs, and why they are built as they are:

- **One loss for the whole image.** Content and tv are averaged over the
  windows by their tiles' areas; the style term keeps one whole-image Gram
  (its tiled form, `objective.LinearisedStyle`), so overlapping windows agree
  on the pixels they share, up to their differing context.
- **Gradient scale.** Each window's gradient is taken unscaled, as if the
  window were a one-pass run of its own size, so the learning rate and
  Adam's ε keep the meaning they have at ~600 px whatever the full size (the
  mean over 11 M pixels of a one-pass loss would shrink gradients towards ε).
- **Style targets, once per stage**, from the style downscaled (never
  upscaled) to the window size: the Gram matrix is a per-position average, so
  a style image of a window's size is compared like with like.
- **Content targets on the fly**: a forward pass of the content image's same
  window, inside the same compiled function. The offsets are random, so a
  window never repeats; caching per offset would mean offsets x tiles feature
  maps. It adds roughly a quarter of a window's work.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..media.tiles import (
    blend_weights,
    tile_grid,
    tile_offsets,
    window_shape,
    windows_of,
)
from ..optim.lbfgs import INITIAL_STEP, LBFGS, RestartingLBFGSB


@runtime_checkable
class GradientSource(Protocol):
    """What a stage's source is to the loop (`loop.run_stages`); `SOURCES` names the kinds.

    Built once per stage with the stage's targets, it owns how a step is computed; the run's carried state
    (`state.RunState`: the image, the optimiser, the best image) is the loop's, which the source updates
    inside its compiled step. Each method returns what it computed: the loop keeps the history.
    """

    windowed: ClassVar[bool]  # targets come from each window (the content's), not the full-size image
    scores_when_stopped: ClassVar[bool]  # whether a stopped stage still scores its last image (cheap enough)
    compiled_step: Any  # the step as one tf.function, for tools that read its graph (None for tiles)

    @staticmethod
    def gradient_area(stage) -> int:
        """The pixels each loss term is a mean over (what `optim.optimizers.Adam.resized` rescales moments by)."""

    def restart(self, stage) -> None:
        """Run ``stage`` again in the same compiled step (`state.Compiled`: video frames)."""

    def step(self) -> np.ndarray | None:
        """One step: (B, 2 + T) each member's total, weighted terms and best loss so far; None if it stopped."""

    def finish(self) -> None:
        """Score the last update's image, which has no loss yet, so it can win "best"."""

    def close(self) -> None:
        """Release what the stage holds (L-BFGS's driver thread)."""

    def traces(self) -> int:
        """How often its step was traced: 1, unless something retraced."""

    def describe(self, member: int) -> dict[str, Any]:
        """What this stage adds to a member's run record."""

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays) a checkpoint needs to take the next step as this source would."""


def _jittered(config, image, rng):
    """Shift by up to ``jitter`` px each step (Mordvintsev et al. 2018): no pixel grid gets special."""
    import tensorflow as tf

    if not config.jitter:
        return image
    shift = rng.uniform([2], -config.jitter, config.jitter + 1, dtype=tf.int32)
    return tf.roll(image, shift=shift, axis=[1, 2])


class WholeImage:
    """A stage whose step is the whole image's loss, gradient and update as one compiled function."""

    scores_when_stopped = True  # one forward pass: cheap enough to give the last update's image its chance
    windowed = False  # its targets are the whole image's, computed once per stage

    @staticmethod
    def gradient_area(stage) -> int:
        """The pixels each loss term is a mean over: the whole image's (see `optim.optimizers.Adam.resized`)."""
        return stage.size[0] * stage.size[1]

    def __init__(self, objective, state, stage, inputs, targets, restored=None):
        import tensorflow as tf

        self.objective, self.state, self.param, self.targets = objective, state, state.param, targets
        self.weights = tf.constant(objective.weights())  # (B, T)
        self.jitter_rng = tf.random.Generator.from_seed(state.configs[0].seed)
        if restored is not None:
            self.jitter_rng.reset(restored[1]["jitter_state"])
        # L-BFGS lives here, not in the state: it starts afresh each stage. In the compiled step (`optim.lbfgs.LBFGS`);
        # or scipy's L-BFGS-B driving from the host, one evaluation per step (`optim.lbfgs.RestartingLBFGSB`).
        self.lbfgs = self.scipy = None
        optimizer = state.configs[0].optimizer
        if optimizer == "lbfgs":
            self.lbfgs = LBFGS(self.param.variable, self.param.bounds(),
                               initial_step=INITIAL_STEP[state.configs[0].param])
            if restored is not None:
                self.lbfgs.restore(*restored)
        elif optimizer == "lbfgsb":
            meta = restored[0] if restored else {}
            self.scipy = RestartingLBFGSB(self.param.bounds(), stage.steps, meta.get("evaluations", 0),
                                          meta.get("lbfgs_restarts"))
        # The last update's image is scored (`finish`) by the step itself with its update switched off, where the
        # step's loss is that image's (no jitter) and nothing else needs scoring (no moving average): a function of
        # its own cost a second trace, 0.85 s of a 3.7 s 64 px run and more than a 512 px step.
        config = state.configs[0]
        self.scores_by_step = (self.scipy is None and not config.jitter and state.average is None
                               and state.loss_scale is None)
        self.scoring = tf.Variable(False, trainable=False, name="scoring") if self.scores_by_step else None
        self.compiled_step = (self._evaluate_function() if self.scipy else
                              self._lbfgs_step_function() if self.lbfgs else self._step_function())
        self._score = None if self.scores_by_step or self.scipy else self._score_function()
        self.average_kept: list[bool] | None = None  # per member, whether the moving average beat every step

    def _loss_terms(self, image):
        """(scalar to minimise, (B, 1 + T): each member's total and its weighted terms)."""
        import tensorflow as tf

        weighted = self.weights * self.objective.values(image, self.targets, draw=self.state.updates)
        total = tf.reduce_sum(weighted, axis=1)
        return tf.reduce_sum(total), tf.concat([total[:, None], weighted], axis=1)

    def _step_function(self):
        """Adam's step: the loss at the current image (jittered), its gradient, one update, the best kept."""
        import tensorflow as tf

        state, param, config = self.state, self.param, self.state.configs[0]
        optimizer, scaler, variable = state.optimizer, state.loss_scale, param.variable

        @tf.function(jit_compile=state.jit_compile)
        def step():
            with tf.GradientTape() as tape:
                image = param.image()
                total, terms = self._loss_terms(_jittered(config, image, self.jitter_rng))
                scaled = scaler.scale_loss(total) if scaler else total
            gradient = tape.gradient(scaled, variable)
            state.keep_if_best(image, terms[:, 0])  # the loss belongs to the image before this update

            def update():
                if scaler:
                    scaler.apply(optimizer, gradient, variable, state.updates)
                else:
                    optimizer.apply(gradient, variable, state.updates)
                param.after_step()
                state.updates.assign_add(1)
                state.average_in()
                return tf.constant(0)

            if self.scoring is None:
                update()
            else:
                tf.cond(self.scoring, lambda: tf.constant(0), update)
            return tf.concat([terms, state.best.loss[:, None]], axis=1)

        return step

    def _lbfgs_step_function(self):
        """L-BFGS's step: the loss and gradient at its trial point (which may win "best"), then its next point."""
        import tensorflow as tf

        state, param, variable, lbfgs = self.state, self.param, self.param.variable, self.lbfgs

        @tf.function(jit_compile=state.jit_compile)
        def step():
            with tf.GradientTape() as tape:
                image = param.image()
                total, terms = self._loss_terms(image)
            gradient = tape.gradient(total, variable)
            state.keep_if_best(image, terms[:, 0])

            def update():
                lbfgs.propose(total, gradient)
                state.updates.assign_add(1)
                return tf.constant(0)

            if self.scoring is None:
                update()
            else:
                tf.cond(self.scoring, lambda: tf.constant(0), update)
            return tf.concat([terms, state.best.loss[:, None]], axis=1)

        return step

    def _evaluate_function(self):
        """scipy's L-BFGS-B: the loss and gradient at the point scipy picked; that image may win "best"."""
        import tensorflow as tf

        state, param, variable = self.state, self.param, self.param.variable

        @tf.function(jit_compile=state.jit_compile)
        def evaluate(point):
            variable.assign(point)
            with tf.GradientTape() as tape:
                image = param.image()
                total, terms = self._loss_terms(image)
            gradient = tape.gradient(total, variable)
            state.keep_if_best(image, terms[:, 0])
            state.updates.assign_add(1)
            return tf.concat([terms, state.best.loss[:, None]], axis=1), gradient

        return evaluate

    def _score_function(self):
        """Score the last update's image; then the image's moving average (``ema``), which may beat them all."""
        import tensorflow as tf

        state, param = self.state, self.param

        @tf.function(jit_compile=state.jit_compile)
        def score():
            image = param.image()
            state.keep_if_best(image, self._loss_terms(image)[1][:, 0])
            if state.average is None:
                return tf.zeros([len(state.configs)], tf.bool)
            totals = self._loss_terms(state.average.variable)[1][:, 0]
            won = totals < state.best.loss
            state.keep_if_best(state.average.variable, totals)
            return won

        return score

    def restart(self, stage) -> None:
        """Run ``stage`` (the same size) again with this compiled step, after `state.RunState.restart`: the
        jitter sequence and L-BFGS start afresh, as a new run's would."""
        self.jitter_rng.reset_from_seed(self.state.configs[0].seed)
        self.average_kept = None
        if self.lbfgs is not None:
            self.lbfgs.reset()
        if self.scipy is not None:
            self.scipy.reset(stage.steps)

    def step(self) -> np.ndarray | None:
        """(B, 2 + T): each member's total, weighted terms and best loss so far; one device->host copy.

        With L-BFGS: one function evaluation; None once it can go no further (in-graph: `LBFGS.stalled`; scipy's:
        at its next point, none).
        """
        if self.lbfgs is not None and self.lbfgs.stalled():
            return None  # it can go no further from the best point: the stage ends, as with scipy's
        if self.scipy is None:
            return self.compiled_step().numpy()
        point = self.scipy.next_point(self._best_point)
        if point is None:
            return None
        values, gradient = self.compiled_step(point)
        values = values.numpy()
        self.scipy.answer(values[:, 0].sum(), gradient.numpy())
        return values

    def _best_point(self, ended) -> np.ndarray:
        """Where L-BFGS (re)starts: the best image scored so far, never a rejected line-search trial.

        Pixels: the engine's best image is a point of the variable's own space.
        A spectrum: scipy's best point (``ended``), else the variable as it is.
        """
        if self.param.bounds() is not None and np.isfinite(self.state.best.loss.numpy()).all():
            return self.state.best.image.numpy()
        if ended is not None:
            return ended.x.reshape(ended.shape).astype(np.float32)
        return self.param.variable.numpy()

    def finish(self) -> None:
        """The last update's image has no loss yet; score it so it can win "best" (scipy's scored every point):
        by the step with its update off (`scores_by_step`), else by a function of its own."""
        if self.scoring is not None:
            self.scoring.assign(True)
            try:
                self.compiled_step()
            finally:
                self.scoring.assign(False)
            self.average_kept = [False] * len(self.state.configs)
        elif self._score is not None:
            self.average_kept = self._score().numpy().tolist()

    def close(self) -> None:
        """End scipy's driver thread, if one runs."""
        if self.scipy is not None:
            self.scipy.close()

    def traces(self) -> int:
        return self.compiled_step.experimental_get_tracing_count()

    def describe(self, member: int) -> dict[str, Any]:
        if self.lbfgs is not None:
            return self.lbfgs.describe()
        if self.scipy is not None:
            return self.scipy.describe()
        return {"ema_kept": self.average_kept[member]} if self.state.average is not None and self.average_kept else {}

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What a checkpoint needs to take the next step as this source would: the jitter generator's state.

        In-graph L-BFGS's whole state, so a resumed stage takes the same steps; scipy's curvature memory lives in
        scipy, and a resumed stage restarts it (see `optim.lbfgs.LBFGSB`).
        """
        meta, arrays = self.lbfgs.snapshot() if self.lbfgs is not None else ({}, {})
        if self.scipy is not None:
            meta = self.scipy.snapshot()
        return meta, {**arrays, "jitter_state": self.jitter_rng.state.numpy()}


class TiledWindows:
    """A stage that walks the image in tiles whose grid moves every step (see the module docstring)."""

    def __init__(self, objective, state, stage, inputs, targets, restored=None):
        config = state.configs[0]
        self.objective, self.state, self.targets = objective, state, targets
        self.tile_size, self.overlap = stage.tile_size, stage.tile_overlap
        self.image_shape = tuple(inputs.content.shape[1:3])
        self.window = window_shape(self.image_shape, self.tile_size, self.overlap)
        self.content = inputs.content  # (B, H, W, 3) caffe BGR; windows are sliced from it
        self.offsets = tile_offsets(config.seed, self.tile_size)
        self.offsets_used: list[list[int]] = []
        self.windows_per_step: list[int] = []
        self._offsets_after_step = self.offsets.state()  # a stopped step's draw does not count
        self.style_sizes = [[list(rgb.shape[:2]) for rgb in styles] for styles in inputs.styles]
        self.weights = objective.weights().astype(np.float64)  # (B, T)
        for term in objective.terms:
            if term.tiled is not None and term.used:
                term.tiled.start(targets[term.name])
        self._window_gradient, self._window_stats = self._window_functions()
        self._update, self._keep = self._image_functions()
        if restored is None:
            self.score((0, 0))  # the whole image's Grams, which the first step's gradient needs
        else:
            self._restore(*restored)

    def _window_parts(self, image_window, content_window):
        """Per term, (the window's statistic to average over windows, the value whose gradient is its share)."""
        objective, targets = self.objective, self.targets
        features = objective.features(image_window, native=True)  # bfloat16 Grams in a bfloat16 run
        window_targets = {}
        for term in objective.terms:  # targets that come from the content's own window (content)
            if term.used and term.window_targets:
                window_targets[term.name] = term.targets(objective, _window_inputs(content_window))
        parts = {}
        for term in objective.terms:
            if not term.used:
                continue
            if term.tiled is not None:
                stats = term.tiled.window_stats(features)
                parts[term.name] = (stats, term.tiled.window_objective(stats, targets[term.name]))
            else:
                value = term.loss(features, image_window, window_targets.get(term.name, targets.get(term.name)))
                parts[term.name] = (value, value)
        return parts

    def _window_functions(self):
        """A window's gradient and statistics, and its statistics alone: compiled once for the window's shape."""
        import tensorflow as tf

        window = tf.TensorSpec([len(self.state.configs), *self.window, 3], tf.float32)
        weight_of = {term.name: tf.constant(term.weights) for term in self.objective.terms}

        @tf.function(input_signature=[window, window], jit_compile=self.state.jit_compile)
        def window_gradient(image_window, content_window):
            with tf.GradientTape() as tape:
                tape.watch(image_window)
                parts = self._window_parts(image_window, content_window)
                total = tf.add_n([tf.reduce_sum(weight_of[name] * share) for name, (_, share) in parts.items()])
            return tape.gradient(total, image_window), {name: stats for name, (stats, _) in parts.items()}

        @tf.function(input_signature=[window, window], jit_compile=self.state.jit_compile)
        def window_stats(image_window, content_window):
            return {name: stats for name, (stats, _) in self._window_parts(image_window, content_window).items()}

        return window_gradient, window_stats

    def _image_functions(self):
        """The whole image's update from a blended gradient, and keeping it as best: compiled once."""
        import tensorflow as tf

        state, variable = self.state, self.state.param.variable

        @tf.function(input_signature=[tf.TensorSpec(variable.shape, tf.float32)])
        def update(gradient):
            state.optimizer.apply(gradient, variable, state.updates)
            state.param.after_step()
            state.updates.assign_add(1)

        @tf.function(input_signature=[tf.TensorSpec(variable.shape, tf.float32), tf.TensorSpec([None], tf.float32)])
        def keep(image, totals):
            state.keep_if_best(image, totals)

        return update, keep

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """The offsets and the Gram mismatch as a checkpoint left them."""
        self.offsets.restore(meta["offsets"])
        self._offsets_after_step = self.offsets.state()
        self.offsets_used, self.windows_per_step = meta["offsets_used"], meta["windows_per_step"]
        for term in self.objective.terms:
            if term.tiled is not None and term.used:
                for layer, mismatch in term.tiled.mismatch.items():
                    mismatch.assign(arrays[f"mismatch/{term.name}/{layer}"])

    compiled_step = None  # a tiled step is a Python loop over compiled windows, not one graph
    scores_when_stopped = False  # a pass over every window: a stopped run does not wait for it
    windowed = True  # the content's targets come from each window, never from the full-size image

    @staticmethod
    def gradient_area(stage) -> int:
        """Each window's gradient is a mean over the window (see the module docstring)."""
        height, width = window_shape(stage.size, stage.tile_size, stage.tile_overlap)
        return height * width

    def traces(self) -> int:
        return self._window_gradient.experimental_get_tracing_count()

    def restart(self, stage) -> None:
        raise NotImplementedError("a tiled stage is built for one run (video frames run whole, one pass each)")

    def close(self) -> None:
        pass

    def step(self) -> np.ndarray | None:
        """Every window's gradient into one full-size buffer, then one update; None if stopped mid-step."""
        offset = next(self.offsets)
        image = self.state.param.variable.numpy()
        gradient = np.zeros_like(image)
        swept = self._sweep(image, offset, gradient)
        if swept is None:
            return None
        values, windows = swept
        self._keep(image, values[:, 0].astype(np.float32))  # the loss belongs to the image before this update
        self._update(gradient)
        self.offsets_used.append(list(offset))
        self.windows_per_step.append(windows)
        self._offsets_after_step = self.offsets.state()
        return np.concatenate([values, self.state.best.loss.numpy()[:, None]], axis=1)

    def score(self, offset: tuple[int, int]) -> None:
        """The current image's losses (forward passes only); it may win "best"."""
        image = self.state.param.variable.numpy()
        swept = self._sweep(image, offset, None)
        if swept is not None:
            self._keep(image, swept[0][:, 0].astype(np.float32))

    def finish(self) -> None:
        self.score(next(self.offsets))  # the last update's image has no loss yet: score it so it can win

    def _sweep(self, image: np.ndarray, offset: tuple[int, int], gradient: np.ndarray | None):
        """One pass over the windows: ((B, 1 + T) weighted values of the image swept, its terms averaged over the
        windows by their tiles' areas; the number of windows), None if stopped; with ``gradient``, every
        window's blended gradient added into it."""
        height, width = self.window
        area = self.image_shape[0] * self.image_shape[1]
        stats: dict[str, Any] = {}
        windows = windows_of(tile_grid(self.image_shape, self.tile_size, self.overlap, offset))
        for (top, left), sharing in windows.items():
            rows, columns = slice(top, top + height), slice(left, left + width)
            image_window, content_window = image[:, rows, columns], self.content[:, rows, columns]
            if gradient is None:
                window_stats = self._window_stats(image_window, content_window)
            else:
                window_gradient, window_stats = self._window_gradient(image_window, content_window)
                blend = sum(blend_weights(tile, self.image_shape, (height, width), self.overlap) for tile in sharing)
                gradient[:, rows, columns] += blend[None, :, :, None] * window_gradient.numpy()
            share = sum(tile.area for tile in sharing) / area
            for name, value in window_stats.items():
                if isinstance(value, dict):
                    into = stats.setdefault(name, {})
                    for layer, gram in value.items():
                        into[layer] = into.get(layer, 0.0) + share * gram.numpy().astype(np.float64)
                else:
                    stats[name] = stats.get(name, 0.0) + share * value.numpy().astype(np.float64)
            if self.state.stop_event.is_set():
                return None
        return self._values(stats), len(windows)

    def _values(self, stats: dict[str, Any]) -> np.ndarray:
        """(B, 1 + T): the whole image's total and weighted terms from the windows' averaged statistics."""
        columns = []
        for term in self.objective.terms:
            if not term.used:
                columns.append(np.zeros(len(self.state.configs)))
            elif term.tiled is not None:
                columns.append(term.tiled.value(stats[term.name], self.targets[term.name]).numpy().astype(np.float64))
            else:
                columns.append(np.asarray(stats[term.name], np.float64))
        weighted = self.weights * np.stack(columns, axis=1)
        return np.concatenate([weighted.sum(axis=1, keepdims=True), weighted], axis=1)

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The offset generator (as after the last whole step), the offsets so far, and the Gram mismatch."""
        meta = {"offsets": self._offsets_after_step, "offsets_used": self.offsets_used,
                "windows_per_step": self.windows_per_step}
        arrays = {f"mismatch/{term.name}/{layer}": mismatch.numpy() for term in self.objective.terms
                  if term.tiled is not None and term.used for layer, mismatch in term.tiled.mismatch.items()}
        return meta, arrays

    def describe(self, member: int) -> dict[str, Any]:
        return {"tile_size": self.tile_size, "tile_overlap": self.overlap, "window_size": list(self.window),
                "style_size": self.style_sizes[member], "offset_seed": self.state.configs[0].seed,
                "tile_offsets": self.offsets_used, "windows_per_step": self.windows_per_step}


def _window_inputs(content_window):
    from ..objective.terms import StageInputs

    return StageInputs(content=content_window, styles=[], blends=[])


SOURCES = {"image": WholeImage, "tiles": TiledWindows}
