"""The entry points: `stylize`, `stylize_batch` and `stylize_tiled` -> `Result`.

Data flows one way: images -> features -> losses -> step -> result. These
functions load and prepare the inputs, turn the config into a schedule of
stages (coarse-to-fine levels; a tiled run's one-pass start, then its tiles)
and hand both to the run engine (`engine.run_stages`), which runs every kind
of stage with one loop.

::

    content ──┐                      ┌─> content features ─┐
              ├─> ResNet-50 (cut) ───┤                      ├─> named loss terms ─> Adam step ─> clip ─> best?
    image ────┘                      └─> Gram matrices ─────┘       (one tf.function per stage, traced once)
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..core.catalog import MIN_IMAGE_SIDE
from ..core.config import BATCH_VARIES, DEFAULT_TILE_SIZE, PRESET_FIELDS, StyleConfig
from ..core.errors import NstkitError
from ..core.record import describe_inputs
from ..media.color import prepare_for_color_mode, restore_color
from ..media.images import ImageInput, load_image, resize_to, scaled_style_shape
from ..media.masks import load_regions
from ..media.start import initial_image
from ..media.tiles import window_shape
from .loop import (
    Callback,
    Member,
    Progress,
    Result,
    RunStopped,
    Stage,
    run_stages,
    scaled,
)
from .progress import progress_bar

__all__ = ["stylize", "stylize_batch", "stylize_tiled", "schedule", "Progress", "Result", "RunStopped"]


def stylize(content: ImageInput, style: ImageInput, config: StyleConfig | None = None, *,
            callbacks: Iterable[Callback] = (), stop_event: threading.Event | None = None,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None, resume: bool = False,
            progress: bool | None = None, **options: Any) -> Result:
    """Optimise an image so its ResNet-50 features match ``content`` and its Gram matrices match ``style``.

    ``content`` / ``style`` are paths, PIL images or arrays; ``style`` may be a
    list, blended by ``style_blend``. ``options`` override
    fields of ``config`` (see `StyleConfig`). Ctrl-C / SIGTERM (in the main
    thread) or ``stop_event`` end the run early; the best image so far is
    returned and ``result.stopped_early`` is true. Stopped before the first
    step, the run raises `RunStopped`: there is no image to return.

    ``checkpoint``: a file (``.npz``) to keep the run's state in, every
    ``checkpoint_every`` steps (None: about once a minute once the run looks
    longer than a few minutes; 0: never) and when it is stopped; removed when
    the run finishes. ``resume=True`` continues from it: the same bytes as an
    uninterrupted run, on the CPU (`checkpoint`).

    ``progress``: a bar with the loss terms and the time left (`run.progress`); None (the default) shows it
    in notebooks and terminals only.
    """
    requested = (config or StyleConfig()).replace(**options)
    member = _prepare(content, style, requested)
    with progress_bar(progress) as bar:
        return run_stages([member], schedule(member.config, member.content_rgb.shape[:2]), _with(callbacks, bar),
                          stop_event, _checkpointing(checkpoint, checkpoint_every, resume))[0]


def stylize_tiled(content: ImageInput, style: ImageInput, config: StyleConfig | None = None, *,
                  tile_size: int | None = None, callbacks: Iterable[Callback] = (),
                  stop_event: threading.Event | None = None, progress: bool | None = None, **options: Any) -> Result:
    """`stylize` in tiles of ``tile_size`` px (default: ``config.tile_size``, else 512), shifted every step.

    With ``tile_start_dim`` (default 1024) smaller than the content, the run
    first stylises at that long side in one pass (``tile_start_steps``
    steps), then refines with ``steps`` tiled steps at full size (`nstkit.tiles`).
    Ctrl-C / SIGTERM or ``stop_event`` stop within one window; the best image so far is returned.
    """
    run = {key: options.pop(key) for key in ("checkpoint", "checkpoint_every", "resume") if key in options}
    config = (config or StyleConfig()).replace(**options)
    tile_size = tile_size if tile_size is not None else (config.tile_size or DEFAULT_TILE_SIZE)
    return stylize(content, style, config.replace(tile_size=tile_size), callbacks=callbacks, stop_event=stop_event,
                   progress=progress, **run)


def stylize_batch(content: ImageInput, style: ImageInput, variants: Sequence[Mapping[str, Any]],
                  config: StyleConfig | None = None, *, callbacks: Iterable[Callback] = (),
                  stop_event: threading.Event | None = None, checkpoint: str | os.PathLike | None = None,
                  checkpoint_every: int | None = None, resume: bool = False, progress: bool | None = None,
                  **options: Any) -> list[Result]:
    """Run several variants of one stylisation as a single batch: one compiled step, B images per step.

    Each variant is a dict of `StyleConfig` overrides on ``config`` + ``options``
    (e.g. ``[{"style_weight": 1e6}, {"style_weight": 1e8}]``); only the fields
    in `config.BATCH_VARIES` may differ. A variant may also carry ``content`` /
    ``style`` images of its own (same size after loading). Members never mix:
    each result equals its own `stylize` run up to float rounding. The gain
    over a loop is one step for all B instead of B steps (one trace, fuller
    use of the cores per op; BENCHMARKS.md), tiled stages included. Callbacks
    run once per member per step; ``progress.member`` says which. Checkpoints and ``progress`` as in `stylize`.
    """
    if not variants:
        raise NstkitError("stylize_batch needs at least one variant, e.g. [{'style_weight': 1e7}]")
    base = (config or StyleConfig()).replace(**options)
    members = []
    for variant in variants:
        variant = dict(variant)
        member_content, member_style = variant.pop("content", content), variant.pop("style", style)
        members.append(_prepare(member_content, member_style, base.replace(**variant)))
    _check_batchable(members)
    with progress_bar(progress) as bar:
        return run_stages(members, schedule(members[0].config, members[0].content_rgb.shape[:2]),
                          _with(callbacks, bar), stop_event, _checkpointing(checkpoint, checkpoint_every, resume))


def _with(callbacks: Iterable[Callback], bar) -> list[Callback]:
    return [*callbacks, bar] if bar is not None else list(callbacks)


def schedule(config: StyleConfig, shape: tuple[int, int]) -> list[Stage]:
    """A resolved config's stages for a content of ``shape`` (height, width), in the order they run.

    - ``tile_size``: a one-pass start at ``tile_start_dim`` (if the image is
      larger; ``tile_start_steps`` steps), then ``steps`` tiled steps at full
      size, the styles at the window's size;
    - ``coarse_levels`` N: below the first one-pass stage (the full size, or a
      tiled run's start), N stages at 1/Fᴺ … 1/F of its size (F:
      ``coarse_factor``), each with ``coarse_steps`` steps (default: half of
      its steps) and none with a side under 32 px.
    """
    stages = []
    if not config.tile_size:
        stages.append(Stage(tuple(shape), config.steps, "image"))
    else:
        if config.tile_start_dim and max(shape) > config.tile_start_dim:
            factor = config.tile_start_dim / max(shape)
            stages.append(Stage(scaled(shape, factor), config.tile_start_steps, "image", scale=factor))
        window = window_shape(shape, config.tile_size, config.tile_overlap)
        stages.append(Stage(tuple(shape), config.steps, "tiles", tile_size=config.tile_size,
                            tile_overlap=config.tile_overlap, style_max_dim=max(window)))
    first = stages[0]
    if first.source == "image":
        for level in range(1, config.coarse_levels + 1):
            factor = first.scale / config.coarse_factor ** level
            if min(shape) * factor < MIN_IMAGE_SIDE:
                break
            steps = config.coarse_steps or max(1, first.steps // 2)
            stages.insert(0, Stage(scaled(shape, factor), steps, "image", scale=factor))
    return stages


def _checkpointing(path, every: int | None, resume: bool):
    import sys

    from .checkpoint import Checkpointing

    if path is None:
        if resume:
            raise NstkitError("resume=True needs the checkpoint file to resume from: pass checkpoint=PATH")
        return None
    return Checkpointing(path, every, resume,
                         on_failure=lambda line: print(f"nstkit: warning: {line}", file=sys.stderr))


def _prepare(content: ImageInput, style: ImageInput, requested: StyleConfig, *, video: bool = False) -> Member:
    """Load one member's images at the config's size and prepare them for its colour mode.

    ``video``: a frame of `video.stylize_video`, which gives it the previous frame for the temporal loss.
    """
    from ..network.device import resolve_precision

    if requested.temporal_weight and not video:
        raise NstkitError("temporal_weight ties a video frame to the previous one, and an image has none: "
                          "use nstkit video (stylize_video), or set temporal_weight 0")
    on_device, precision_reason = resolve_precision(requested)
    config = on_device.resolved()
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    blend = config.blend_weights(len(styles))
    original_content_rgb = load_image(content, config.max_dim, what="content image")
    style_rgbs = _load_styles(styles, config, original_content_rgb.shape[:2])
    regions = load_regions(config.mask, original_content_rgb.shape[:2], len(styles)) if config.mask else None
    content_rgb, style_rgbs, init_rgb = prepare_for_color_mode(  # Gatys et al. 2017
        config.preserve_color, original_content_rgb, style_rgbs,
        initial_image(config, original_content_rgb, style_rgbs, blend))
    if config.init == "style_stats" and config.preserve_color != "none":
        init_rgb = initial_image(config, content_rgb, style_rgbs, blend)  # the palette the run matches
    inputs = describe_inputs(content, styles, config.init, config.mask)

    def finish(best_rgb):
        return np.clip(restore_color(config.preserve_color, best_rgb, original_content_rgb), 0, 255)

    extra = {"preset_overridden": requested.overridden_preset_fields(),
             "style_sizes": [list(rgb.shape[:2]) for rgb in style_rgbs],  # (height, width) the statistics came from
             **({"precision_chosen": precision_reason} if precision_reason else {}),
             **({"regions": regions.describe([_name(s, i) for i, s in enumerate(styles)])} if regions else {})}
    return Member(config, inputs, blend, content_rgb, style_rgbs, init_rgb, finish, extra=extra, regions=regions)


def _load_styles(styles: list, config: StyleConfig, content_shape: tuple[int, int]) -> list:
    """The style images, downscaled to ``max_dim``; with ``style_scale`` F, resized to F times the output's long side.

    A scaled style is read at full resolution first, so F > 1 enlarges the
    texture from the real pixels where the file has them.
    """
    scales = config.style_scales(len(styles))
    loaded = []
    for i, source in enumerate(styles):
        what = "style image" if len(styles) == 1 else f"style image {i + 1}"
        if scales is None:
            loaded.append(load_image(source, config.max_dim, what=what))
            continue
        rgb = load_image(source, None, what=what, check_min_size=False)
        loaded.append(resize_to(rgb, *scaled_style_shape(rgb.shape[:2], scales[i], content_shape, what)))
    return loaded


def _name(source, index: int) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else f"style {index + 1}"


def _check_batchable(members: list[Member]) -> None:
    first = members[0]
    shared = {k: v for k, v in first.config.to_dict().items() if k not in BATCH_VARIES}
    for index, member in enumerate(members[1:], start=2):
        fields = member.config.to_dict()
        for key, value in shared.items():
            if fields[key] != value:
                because = (f" (its preset {member.config.preset} sets {key} {fields[key]}, the first's "
                           f"{first.config.preset} {value}: give {key} for all variants)"
                           if key in PRESET_FIELDS and member.config.preset != first.config.preset else "")
                raise NstkitError(f"variant {index} changes {key}, which a batch must share{because} "
                                  f"(only {', '.join(BATCH_VARIES)} may vary): run it separately")
        if member.content_rgb.shape != first.content_rgb.shape:
            raise NstkitError(f"variant {index}'s content is {member.content_rgb.shape[1]}x"
                              f"{member.content_rgb.shape[0]} px, the first's "
                              f"{first.content_rgb.shape[1]}x{first.content_rgb.shape[0]}: a batch needs one size")
        if member.config.seed != first.config.seed and (first.config.jitter or first.config.tile_size):
            shared_draw = "jitter sequence" if first.config.jitter else "sequence of tile offsets"
            raise NstkitError(f"variant {index} changes seed, but the batch shares one {shared_draw}: give all "
                              f"variants one seed, or {'jitter=0' if first.config.jitter else 'no tile_size'}")
    if len(members) > 1 and first.config.param != "pixel":
        raise NstkitError(f"param={first.config.param} runs one image at a time: use param=pixel for batches")
    if len(members) > 1 and first.config.optimizer == "lbfgs":
        # One line search for all members would couple them: each would no longer move as it would alone.
        raise NstkitError("optimizer lbfgs runs one image at a time (its line search would couple the members): "
                          "use optimizer adam for batches, or stylize each variant")
