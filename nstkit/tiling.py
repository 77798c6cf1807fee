"""Tiled stylisation: images too large for one pass (issue "Huge images").

A 4096 px image is cheap to *hold*: the image, Adam's two slots and the best
image are ~0.5 GB of float32 at 4096x2728. What does not fit is one training
step through ResNet-50 at that size, whose activations grow with the pixel
count: `nstkit estimate` predicts ~25 GiB in float32, more than a 24 GB box
has. So every step walks the image in tiles and blends their gradients::

          offset (oy, ox): a new seeded draw each step, so tile borders never stay in one place
          ↓
       ┌──┬──────┬──────┬─┐      for each tile:
       │  │      │      │ │        window = tile + `tile_overlap` px of real pixels on every side
       ├──┼──────┼──────┼─┤        window ──> ResNet-50 ──> content loss vs the content image's same window
       │  │ ┌──┐ │      │ │                             └─> Gram matrices, against the whole image's Gram
       │  │ └──┘ │      │ │                                 minus the style targets (computed once per run)
       │  │      │      │ │        the window's gradient x blend weights ──> one full-size gradient buffer
       ├──┼──────┼──────┼─┤      then: one Adam step of the whole image, clip, keep the best image
       └──┴──────┴──────┴─┘

Choices, and why:

- **A smooth blend across the overlap, not a hard switch.** Neighbouring
  windows overlap by 2·``tile_overlap`` px; across that band a pixel's
  gradient passes from one window's to the other's along a raised cosine
  (`blend_weights`: the weights sum to 1 everywhere, and each window's share
  fades to 0 before its edge, where the network's zero padding distorts the
  gradient). Keeping only each tile's own pixels' gradient (a hard switch)
  left a straight edge inside a flat cup after two steps of a 2048 px run:
  Adam's early, nearly sign-like steps turn any jump in the gradient into a
  ±learning-rate step in the image. The blend uses the same windows, so it
  costs nothing; a wider blend (tiles overlapping by half) would cost ~4x the
  windows. The grid's origin moves every step, so no band stays in one place.
- **Windows shift inward at the image edges instead of being padded**: every
  window has one shape (one trace of the compiled function), and edge tiles
  see real pixels, not mirrored ones. A window is only smaller than
  ``tile_size + 2·tile_overlap`` along an axis where the whole image is.
- **One style loss for the whole image**, as a one-pass run has: the Gram
  matrix is an average over positions, so the whole image's Gram is the
  windows' Grams averaged by their tiles' areas. Each window's gradient
  flows through its own Gram with the whole image's mismatch (Gram minus
  target) held fixed (`linearised_style_loss`). That mismatch comes from the
  previous pass over the windows, one update old (a pass before the first
  step supplies it). A first version gave each window its own style loss
  against the targets: windows of different content (a dark corner, a lit
  cup) then pulled their pixels in different directions, and the blend band
  of the first steps stayed visible as a texture edge in flat areas of a
  4096 px run. With one mismatch for all windows, overlapping windows agree
  on the pixels they share, up to their differing context.
- **Gradient scale.** Each window's gradient is taken unscaled, as if the
  window were a one-pass run of its own size, so the learning rate and
  Adam's ε keep the meaning they have at ~600 px whatever the full size (the
  mean over 11 M pixels of a one-pass loss would shrink gradients towards ε).
  The step's loss is the content and tv terms averaged over the windows by
  their tiles' areas plus the whole image's style loss; the best image is
  tracked by it.
- **Style targets, once per run**, from the style downscaled (never upscaled)
  to the window size. The Gram matrix is a per-position average, so a style
  image of a window's size is compared like with like: the same share of
  border positions, and its texture at the pixel scale a window sees it.
- **Content targets on the fly**: a forward pass of the content image's same
  window, inside the same compiled function. The offsets are random, so a
  window never repeats; caching per offset would mean offsets x tiles feature
  maps. It adds one forward pass to each window's forward and backward
  (a backward costs about two forwards): roughly a quarter of its work.
- **Coarse to fine.** By default a run first stylises at ``tile_start_dim`` px
  in one pass (the ordinary `stylize`, ``tile_start_steps`` steps), upsamples,
  then refines with ``steps`` tiled steps at full size: the start sets the
  palette and the large-scale layout cheaply; the tiles add full-resolution texture.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from .color import prepare_for_color_mode, restore_color
from .config import StyleConfig
from .images import ImageInput, deprocess, load_image, preprocess, resize_to, to_uint8
from .optimize import LOSS_TERMS, Callback, Progress, Result, default_jit_compile, stylize
from .record import build_record, describe_inputs, device_name
from .runs import initial_image, quiet_retracing_warnings, stop_on_signals, style_blend, style_targets

DEFAULT_TILE_SIZE = 512


@dataclass(frozen=True)
class Tile:
    """One tile: its own pixels ``[top, bottom) x [left, right)``, and where its window starts (image px)."""

    top: int
    bottom: int
    left: int
    right: int
    window_top: int
    window_left: int

    @property
    def area(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)


def window_shape(image_shape: tuple[int, int], tile_size: int, overlap: int) -> tuple[int, int]:
    """(height, width) of every window of a run: the tile plus its margins, or the whole axis if smaller."""
    return min(tile_size + 2 * overlap, image_shape[0]), min(tile_size + 2 * overlap, image_shape[1])


def tile_grid(image_shape: tuple[int, int], tile_size: int, overlap: int,
              offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles covering every pixel exactly once, on a grid whose origin sits at ``-offset``.

    Tiles at the image's edges are cut to the image; their windows keep the
    common shape by reaching further into the image.
    """
    window = window_shape(image_shape, tile_size, overlap)
    rows = _spans(image_shape[0], tile_size, offset[0], overlap, window[0])
    columns = _spans(image_shape[1], tile_size, offset[1], overlap, window[1])
    return [Tile(top, bottom, left, right, window_top, window_left)
            for top, bottom, window_top in rows for left, right, window_left in columns]


def _spans(size: int, tile_size: int, offset: int, overlap: int, window: int) -> list[tuple[int, int, int]]:
    """(start, stop, window start) of each tile along one axis."""
    spans = []
    for start in range(-(offset % tile_size), size, tile_size):
        low, high = max(start, 0), min(start + tile_size, size)
        if high > low:
            spans.append((low, high, min(max(low - overlap, 0), size - window)))
    return spans


def blend_weights(tile: Tile, image_shape: tuple[int, int], window: tuple[int, int], overlap: int) -> np.ndarray:
    """How much of the window's gradient goes to each of its pixels for this tile, shape ``window``.

    1 inside the tile, a raised-cosine ramp across each border shared with a
    neighbour (from ``overlap`` px outside the tile to ``overlap`` px inside),
    0 beyond. Along an axis the weights are ``ramp(own start) - ramp(own end)``,
    so over all tiles they telescope to exactly 1 at every pixel. With
    ``overlap`` 0 the ramp is a step: each tile keeps its own pixels' gradient.
    """
    rows = _axis_weights(tile.window_top, window[0], tile.top, tile.bottom, image_shape[0], overlap)
    columns = _axis_weights(tile.window_left, window[1], tile.left, tile.right, image_shape[1], overlap)
    return np.outer(rows, columns).astype(np.float32)


def _axis_weights(window_start: int, length: int, low: int, high: int, size: int, overlap: int) -> np.ndarray:
    positions = np.arange(window_start, window_start + length)
    rising = 1.0 if low == 0 else _ramp(positions, low, overlap)
    falling = 0.0 if high == size else _ramp(positions, high, overlap)
    return rising - falling


def _ramp(positions: np.ndarray, border: int, overlap: int) -> np.ndarray:
    """0 up to ``border - overlap``, 1 from ``border + overlap``, a raised cosine between (a step if overlap is 0)."""
    if overlap == 0:
        return (positions >= border).astype(np.float64)
    share = np.clip((positions + 0.5 - (border - overlap)) / (2 * overlap), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * share)


def windows_of(tiles: list[Tile]) -> dict[tuple[int, int], list[Tile]]:
    """Tiles grouped by their window's origin: tiles sharing a window share one pass through the network.

    That happens to a sliver of at most ``tile_overlap`` px at an image edge
    (its window is its neighbour's), and to every tile of an axis no longer than a window.
    """
    windows: dict[tuple[int, int], list[Tile]] = {}
    for tile in tiles:
        windows.setdefault((tile.window_top, tile.window_left), []).append(tile)
    return windows


def linearised_style_loss(grams, mismatch, layer_weights, layer_scales=None):
    """A window's share of the whole image's style loss: its gradient, not its value, is what counts.

    The style loss is ``mean((G - T)²)`` of the whole image's Gram ``G``, so
    its gradient is ``mean(2 (G - T) ⊙ dG/dx)``. With the whole image's
    ``mismatch = G - T`` held fixed, the gradient of ``mean(2 · mismatch ⊙ G_window)``
    is that gradient as it flows through one window's Gram. Layers are
    weighted and scaled as in `losses.style_loss`.
    """
    import tensorflow as tf

    total_weight = sum(layer_weights.values())
    return tf.add_n([
        (weight / total_weight) * tf.reduce_mean(2.0 * tf.stop_gradient(mismatch[name]) * grams[name])
        / (layer_scales[name] if layer_scales else 1.0)
        for name, weight in layer_weights.items()
    ])


def tile_offsets(seed: int, tile_size: int) -> Iterator[tuple[int, int]]:
    """The grid origin of each step, (oy, ox) in [0, tile_size)²: seeded, and never the same twice running."""
    rng = np.random.default_rng(seed)
    previous = None
    while True:
        offset = tuple(int(v) for v in rng.integers(0, tile_size, size=2))
        if offset != previous:
            previous = offset
            yield offset


def stylize_tiled(content: ImageInput, style: ImageInput, config: StyleConfig | None = None, *,
                  tile_size: int | None = None, callbacks: Iterable[Callback] = (),
                  stop_event: threading.Event | None = None, **options: Any) -> Result:
    """`stylize` for images too large for one pass: tiles of ``tile_size`` px (default 512), shifted every step.

    ``tile_size`` here wins over ``config.tile_size``. With ``tile_start_dim``
    (default 1024) smaller than the content, the run first stylises at that
    long side in one pass (``tile_start_steps`` steps), upsamples, and refines
    with ``steps`` tiled steps at full size. Callbacks see the steps of both
    stages, numbered on. Ctrl-C / SIGTERM or ``stop_event`` stop within one
    tile; the best image so far is returned (the start's, upsampled, if the
    tiled stage had not begun).
    """
    config = (config or StyleConfig()).replace(**options)
    if tile_size is None:
        tile_size = config.tile_size if config.tile_size is not None else DEFAULT_TILE_SIZE
    config = config.replace(tile_size=tile_size).resolved()
    callbacks = list(callbacks)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    blend = style_blend(config, len(styles))
    original_content_rgb = content_rgb = load_image(content, config.max_dim, what="content image")
    window = window_shape(content_rgb.shape[:2], config.tile_size, config.tile_overlap)
    # The style at a window's size (downscale only): see the module docstring.
    style_rgbs = [load_image(s, max(window), what="style image" if len(styles) == 1 else f"style image {i + 1}")
                  for i, s in enumerate(styles)]

    stop_event = stop_event or threading.Event()
    history: dict[str, list[float]] = {term: [] for term in LOSS_TERMS}
    levels: list[dict[str, Any]] = []
    step_times: list[float] = []
    offsets: list[list[int]] = []
    run = start_result = None
    started = time.perf_counter()
    with stop_on_signals(stop_event):
        if config.tile_start_dim and max(content_rgb.shape[:2]) > config.tile_start_dim:
            start_config = config.replace(tile_size=None, max_dim=config.tile_start_dim,
                                          steps=config.tile_start_steps)
            numbered_on = [_with_total(callback, config.steps) for callback in callbacks]
            start_result = stylize(content_rgb, style, start_config, callbacks=numbered_on, stop_event=stop_event)
            for term in LOSS_TERMS:
                history[term].extend(start_result.history[term])
            levels.append({"size": list(start_result.image.shape[:2]), "steps": start_result.record["steps_run"],
                           "tiled": False, "seconds_per_step": start_result.record["seconds_per_step"]})
            init_rgb = resize_to(start_result.image.astype(np.float32), *content_rgb.shape[:2])
        else:
            init_rgb = initial_image(config, content_rgb)
        best_rgb = init_rgb  # already in full colour if it came from the start

        if not stop_event.is_set():
            content_rgb, style_rgbs, init_rgb = prepare_for_color_mode(config.preserve_color, content_rgb,
                                                                       style_rgbs, init_rgb)
            run = _TiledRun(config, content_rgb, style_rgbs, blend, init_rgb, stop_event)
            steps_before = len(history["total"])
            total_steps = steps_before + config.steps
            run.score((0, 0))  # the whole image's Grams, which the first step's gradient needs
            for offset in tile_offsets(config.seed, config.tile_size):
                if stop_event.is_set():
                    break
                if len(offsets) == config.steps:
                    run.score(offset)  # the last update's image has no loss yet: score it so it can win
                    break
                step_started = time.perf_counter()
                losses = run.step(offset)
                if losses is None:  # stopped between two tiles: that step is dropped, no update
                    break
                step_times.append(time.perf_counter() - step_started)
                offsets.append(list(offset))
                for term, value in losses.items():
                    history[term].append(value)
                progress = Progress(len(history["total"]), total_steps, losses, run.best_loss,
                                    time.perf_counter() - started, run)
                for callback in callbacks:
                    callback(progress)
            levels.append({"size": list(content_rgb.shape[:2]), "steps": len(offsets), "tiled": True,
                           "seconds_per_step": round(float(np.median(step_times)), 4) if step_times else None})
            best_rgb = restore_color(config.preserve_color, deprocess(run.best_image.numpy()), original_content_rgb)
    wall_time = time.perf_counter() - started

    start_planned = sum(level["steps"] for level in start_result.record["levels"]) if start_result else 0
    planned = start_planned + config.steps
    steps_run = len(history["total"])
    record = build_record(
        config=config.to_dict(),
        weights=vars(run.weights_info) if run else start_result.record["weights"],
        inputs=describe_inputs(content, styles, config.init),
        style_blend=blend,
        image_size=list(original_content_rgb.shape[:2]),
        levels=levels,
        tile_size=config.tile_size,
        tile_overlap=config.tile_overlap,
        window_size=list(window),
        style_size=[list(rgb.shape[:2]) for rgb in style_rgbs],
        offset_seed=config.seed,
        tile_offsets=offsets,
        windows_per_step=[len(windows_of(tile_grid(content_rgb.shape[:2], config.tile_size, config.tile_overlap,
                                                   tuple(offset)))) for offset in offsets],
        device=device_name(),
        steps_run=steps_run,
        steps_planned=planned,
        stopped_early=steps_run < planned,
        best_step=run.best_step if run else start_result.record["best_step"],  # within the tiled stage
        best_loss=run.best_loss if run else start_result.record["best_loss"],
        final_losses={term: values[-1] for term, values in history.items() if values},
        step_traces=run.traces() if run else None,  # 1 unless something retraced
        jit_compile=run.jit_compile if run else None,
        wall_time_s=round(wall_time, 3),
        # The median tiled step, so the first step's tracing does not count as speed.
        seconds_per_step=round(float(np.median(step_times[1:] or step_times)), 4) if step_times else None,
    )
    return Result(to_uint8(best_rgb), history, config, record)


def _with_total(callback: Callback, more_steps: int) -> Callback:
    """The start's progress, counted out of the whole run's steps (the tiled steps follow it)."""
    return lambda progress: callback(dataclasses.replace(progress, steps=progress.steps + more_steps))


class _TiledRun:
    """The state of a tiled run: the full-size image and Adam, the best image, and the compiled window step.

    Exposes what `Progress` reads (``param``, ``best_image``, ``weights_info``, ``stop_event``).
    """

    def __init__(self, config: StyleConfig, content_rgb, style_rgbs, blend, init_rgb, stop_event):
        import keras
        import tensorflow as tf

        from .backbone import FeatureExtractor, load_backbone
        from .losses import content_loss, gram_matrix, mean_over_layers, style_layer_scales, total_variation_loss
        from .param import PixelImage

        quiet_retracing_warnings()

        self.config, self.stop_event = config, stop_event
        model, self.weights_info = load_backbone(config.backbone, config.weights)
        style_layers, content_layers = config.style_layers, config.content_layers
        extractor = FeatureExtractor(model, [*style_layers, *content_layers], config.backbone, config.precision)
        self.style_targets = style_targets(extractor, style_rgbs, blend, style_layers)
        self.style_scales = style_layer_scales(self.style_targets) if config.normalize_style_layers else None
        # The whole image's Grams minus the targets, from the last pass over the windows (see `_losses`).
        self.style_mismatch = {n: tf.Variable(tf.zeros_like(g), trainable=False)
                               for n, g in self.style_targets.items()}

        self.image_shape = tuple(content_rgb.shape[:2])
        self.content = preprocess(content_rgb)  # (1, H, W, 3) caffe BGR; windows are sliced from it
        self.param = PixelImage(init_rgb)
        self.best_image = tf.Variable(self.param.image(), name="best_image", trainable=False)
        self.best_loss, self.best_step, self.updates = float("inf"), 0, 0
        optimizer = keras.optimizers.Adam(learning_rate=float(config.learning_rate), beta_1=float(config.beta_1),
                                          beta_2=float(config.beta_2), epsilon=float(config.epsilon))
        optimizer.build([self.param.variable])
        self.jit_compile = default_jit_compile() if config.jit_compile is None else config.jit_compile
        window = tf.TensorSpec([1, *window_shape(self.image_shape, config.tile_size, config.tile_overlap), 3],
                               tf.float32)

        def window_terms(image_window, content_window):
            """Weighted (content, tv) of one window, and its Gram matrices; losses' (1,) results summed to scalars."""
            zero = tf.constant(0.0)
            features = extractor.native_activations(image_window)  # bfloat16 Grams in a bfloat16 run
            content = zero
            if config.content_weight:
                content_features = extractor(content_window)  # forward only: targets for this window
                content = tf.reduce_sum(mean_over_layers(
                    {n: content_loss(features[n], content_features[n]) for n in content_layers}, content_layers))
            tv = tf.reduce_sum(total_variation_loss(image_window)) if config.tv_weight else zero
            grams = {n: gram_matrix(features[n]) for n in style_layers}
            return tf.stack([config.content_weight * content, config.tv_weight * tv]), grams

        @tf.function(input_signature=[window, window], jit_compile=self.jit_compile)
        def window_gradient(image_window, content_window):
            with tf.GradientTape() as tape:
                tape.watch(image_window)
                terms, grams = window_terms(image_window, content_window)
                style = (config.style_weight * tf.reduce_sum(linearised_style_loss(
                    grams, self.style_mismatch, style_layers, self.style_scales)) if config.style_weight else 0.0)
                total = tf.reduce_sum(terms) + style
            return tape.gradient(total, image_window), terms, grams

        @tf.function(input_signature=[window, window], jit_compile=self.jit_compile)
        def window_loss(image_window, content_window):
            return window_terms(image_window, content_window)

        @tf.function(input_signature=[tf.TensorSpec(self.param.variable.shape, tf.float32)])
        def update(gradient):
            optimizer.apply_gradients([(gradient, self.param.variable)])
            self.param.after_step()

        self._window_gradient, self._window_loss, self._update = window_gradient, window_loss, update

    def traces(self) -> int:
        return self._window_gradient.experimental_get_tracing_count()

    def step(self, offset: tuple[int, int]) -> dict[str, float] | None:
        """Every window's gradient into one full-size buffer, then one Adam update; None if stopped mid-step."""
        image = self.param.variable.numpy()
        gradient = np.zeros_like(image)
        swept = self._sweep(image, offset, gradient)
        if swept is None:
            return None
        losses = self._losses(*swept)
        self._keep_if_best(image, losses["total"])  # the loss belongs to the image before this update
        self._update(gradient)
        self.updates += 1
        return losses

    def score(self, offset: tuple[int, int]) -> dict[str, float] | None:
        """The current image's losses and Grams (forward passes only); it may win "best". None if stopped."""
        image = self.param.variable.numpy()
        swept = self._sweep(image, offset, None)
        if swept is None:
            return None
        losses = self._losses(*swept)
        self._keep_if_best(image, losses["total"])
        return losses

    def _sweep(self, image: np.ndarray, offset: tuple[int, int], gradient: np.ndarray | None):
        """One pass over the windows: (content and tv terms, the whole image's Grams), each averaged over the
        windows by their tiles' areas; with ``gradient``, every window's blended gradient added into it."""
        height, width = window_shape(self.image_shape, self.config.tile_size, self.config.tile_overlap)
        area = self.image_shape[0] * self.image_shape[1]
        terms = np.zeros(2)
        grams = {name: np.zeros(target.shape, np.float64) for name, target in self.style_targets.items()}
        tiles = tile_grid(self.image_shape, self.config.tile_size, self.config.tile_overlap, offset)
        for (top, left), sharing in windows_of(tiles).items():
            rows, columns = slice(top, top + height), slice(left, left + width)
            image_window, content_window = image[:, rows, columns], self.content[:, rows, columns]
            if gradient is None:
                window_terms, window_grams = self._window_loss(image_window, content_window)
            else:
                window_gradient, window_terms, window_grams = self._window_gradient(image_window, content_window)
                blend = sum(blend_weights(tile, self.image_shape, (height, width), self.config.tile_overlap)
                            for tile in sharing)
                gradient[:, rows, columns] += blend[None, :, :, None] * window_gradient.numpy()
            share = sum(tile.area for tile in sharing) / area
            terms += share * window_terms.numpy()
            for name, gram in window_grams.items():
                grams[name] += share * gram.numpy()
            if self.stop_event.is_set():
                return None
        return terms, grams

    def _losses(self, terms: np.ndarray, grams: dict[str, np.ndarray]) -> dict[str, float]:
        """The weighted terms of the image just swept; keeps its Gram mismatch for the next step's gradient."""
        import tensorflow as tf

        from .losses import style_loss

        content, tv = map(float, terms)
        style = 0.0
        if self.config.style_weight:
            grams = {name: tf.constant(gram, tf.float32) for name, gram in grams.items()}
            style = self.config.style_weight * float(tf.reduce_sum(style_loss(
                grams, self.style_targets, self.config.style_layers, self.style_scales)))
            for name, mismatch in self.style_mismatch.items():
                mismatch.assign(grams[name] - self.style_targets[name])
        return {"total": content + style + tv, "content": content, "style": style, "tv": tv}

    def _keep_if_best(self, image: np.ndarray, loss: float) -> None:
        if loss < self.best_loss:
            self.best_image.assign(image)
            self.best_loss, self.best_step = loss, self.updates
