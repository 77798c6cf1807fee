"""The entry points: `stylize`, `stylize_batch` and `stylize_tiled` -> `Result`.

Data flows one way: images -> features -> losses -> step -> result. These
functions load and prepare the inputs, turn the config into a schedule of
stages (coarse-to-fine levels; a tiled run's one-pass start, then its tiles)
and hand both to the run loop (`loop.run_stages`), which runs every kind
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

from ..core.config import (
    BATCH_VARIES,
    DEFAULT_TILE_SIZE,
    LBFGS_OPTIMIZERS,
    PRESET_FIELDS,
    StyleConfig,
    palette_path,
    resolve_optimizer,
)
from ..core.errors import NstkitError
from ..core.record import describe_inputs
from ..media.checks import check_inputs
from ..media.color import prepare_for_color_mode, restore_color, transfer_colors
from ..media.images import ImageInput
from ..core.packs import PackedStyle, check_fits
from ..core.packs import expand as expand_packs
from ..media.start import initial_image
from ..run.loop import run_stages
from ..run.result import Callback, Progress, Result, RunStopped
from ..run.schedule import Member, schedule
from .progress import progress_bar

__all__ = ["stylize", "stylize_batch", "stylize_tiled", "schedule", "Progress", "Result", "RunStopped"]


def stylize(content: ImageInput, style: ImageInput, config: StyleConfig | None = None, *,
            callbacks: Iterable[Callback] = (), stop_event: threading.Event | None = None,
            checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None, resume: bool = False,
            overwrite: bool = False, progress: bool | None = None, **options: Any) -> Result:
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
    uninterrupted run, on the CPU (`checkpoint`). A checkpoint already there (a
    stopped run's) is refused unless ``resume`` or ``overwrite=True`` (start afresh, replacing it).

    ``progress``: a bar with the loss terms and the time left (`api.progress`); None (the default) shows it
    in notebooks and terminals only.
    """
    requested = (config or StyleConfig()).replace(**options)
    member = prepare(content, style, requested)
    with progress_bar(progress) as bar:
        return run_stages([member], schedule(member.config, member.content_rgb.shape[:2]), _with(callbacks, bar),
                          stop_event, _checkpointing(checkpoint, checkpoint_every, resume, overwrite))[0]


def stylize_tiled(content: ImageInput, style: ImageInput, config: StyleConfig | None = None, *,
                  tile_size: int | None = None, callbacks: Iterable[Callback] = (),
                  stop_event: threading.Event | None = None, progress: bool | None = None, **options: Any) -> Result:
    """`stylize` in tiles of ``tile_size`` px (default: ``config.tile_size``, else 512), shifted every step.

    With ``tile_start_dim`` (default 1024) smaller than the content, the run
    first stylises at that long side in one pass (``tile_start_steps``
    steps), then refines with ``steps`` tiled steps at full size (`nstkit.tiles`).
    Ctrl-C / SIGTERM or ``stop_event`` stop within one window; the best image so far is returned.
    """
    run = {key: options.pop(key) for key in ("checkpoint", "checkpoint_every", "resume", "overwrite")
           if key in options}
    config = (config or StyleConfig()).replace(**options)
    tile_size = tile_size if tile_size is not None else (config.tile_size or DEFAULT_TILE_SIZE)
    return stylize(content, style, config.replace(tile_size=tile_size), callbacks=callbacks, stop_event=stop_event,
                   progress=progress, **run)


def stylize_batch(content: ImageInput, style: ImageInput, variants: Sequence[Mapping[str, Any]],
                  config: StyleConfig | None = None, *, callbacks: Iterable[Callback] = (),
                  stop_event: threading.Event | None = None, checkpoint: str | os.PathLike | None = None,
                  checkpoint_every: int | None = None, resume: bool = False, overwrite: bool = False,
                  progress: bool | None = None, **options: Any) -> list[Result]:
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
    style = expand_packs(list(style) if isinstance(style, (list, tuple)) else [style])  # a pack read once, not per member
    members = []
    for variant in variants:
        variant = dict(variant)
        member_content, member_style = variant.pop("content", content), variant.pop("style", style)
        members.append(prepare(member_content, member_style, base.replace(**variant), batch=len(variants)))
    _check_batchable(members)
    with progress_bar(progress) as bar:
        return run_stages(members, schedule(members[0].config, members[0].content_rgb.shape[:2]),
                          _with(callbacks, bar), stop_event,
                          _checkpointing(checkpoint, checkpoint_every, resume, overwrite))


def _with(callbacks: Iterable[Callback], bar) -> list[Callback]:
    return [*callbacks, bar] if bar is not None else list(callbacks)


def _checkpointing(path, every: int | None, resume: bool, overwrite: bool):
    from ..core.errors import warn
    from ..run.checkpoint import Checkpointing

    if path is None:
        if resume:
            raise NstkitError("resume=True needs the checkpoint file to resume from: pass checkpoint=PATH")
        return None
    # A warning (`errors.NstkitWarning`): one line in the CLI, above the progress bar, never onto its line.
    return Checkpointing(path, every, resume, overwrite, on_failure=warn)


def prepare(content: ImageInput, style: ImageInput, requested: StyleConfig, *, video: bool = False,
            batch: int = 1) -> Member:
    """Load one member's images at the config's size and prepare them for its colour mode.

    The inputs are read and checked (`checks.check_inputs`) before anything imports TensorFlow, so a bad
    one is one line in milliseconds. ``video``: a frame of `video.stylize_video`, which gives it the
    previous frame for the temporal loss. ``batch``: the members of its `stylize_batch` (optimizer "auto" is
    Adam for a batch, and for video frames: `config.resolve_optimizer`).
    """
    if requested.temporal_weight and not video:
        raise NstkitError("temporal_weight ties a video frame to the previous one, and an image has none: "
                          "use nstkit video (stylize_video), or set temporal_weight 0")
    styles = expand_packs(list(style) if isinstance(style, (list, tuple)) else [style])
    checked = check_inputs(content, styles, requested.resolved())
    from ..network.device import resolve_precision

    on_device, precision_reason = resolve_precision(requested)
    on_device, optimizer_reason = resolve_optimizer(on_device, batch=batch, video=video,
                                                    shape=checked.content.shape[:2])
    config = on_device.resolved()
    packed = [style for style in styles if isinstance(style, PackedStyle)]
    for style in packed:  # again with the precision resolved: "auto" was not compared before
        check_fits(style, config)
    blend = config.blend_weights(len(styles))
    # Recoloured first (color_transfer; refused beside a preserve_color mode), so a content start takes the colours.
    original_content_rgb, style_rgbs = transfer_colors(config.color_transfer, config.color_from, checked.content,
                                                       checked.style_images(), checked.palette)
    regions = checked.regions
    content_rgb, style_rgbs, init_rgb = prepare_for_color_mode(  # Gatys et al. 2017
        config.preserve_color, original_content_rgb, style_rgbs,
        initial_image(config, original_content_rgb, style_rgbs, blend, init_rgb=checked.init))
    if config.init == "style_stats" and config.preserve_color != "none":
        init_rgb = initial_image(config, content_rgb, style_rgbs, blend)  # the palette the run matches
    inputs = describe_inputs(content, styles, config.init, config.mask,
                             config.color_from if palette_path(config.color_from) else None)

    def finish(best_rgb):
        return np.clip(restore_color(config.preserve_color, best_rgb, original_content_rgb), 0, 255)

    extra = {"preset_overridden": requested.overridden_preset_fields(),
             "style_sizes": [list(rgb.shape[:2]) for rgb in style_rgbs],  # (height, width) the statistics came from
             **({"precision_chosen": precision_reason} if precision_reason else {}),
             **({"optimizer_chosen": optimizer_reason} if optimizer_reason else {}),
             **({"regions": regions.describe([_name(s, i) for i, s in enumerate(styles)])} if regions else {})}
    return Member(config, inputs, blend, content_rgb, style_rgbs, init_rgb, finish, extra=extra, regions=regions,
                  packed=[isinstance(style, PackedStyle) for style in styles],
                  style_statistics={key: value for style in packed for key, value in style.statistics.items()})


def _name(source, index: int) -> str:
    if isinstance(source, PackedStyle):
        return f"{source.pack} (style {source.index + 1})"
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
    if len(members) > 1 and first.config.optimizer in LBFGS_OPTIMIZERS:
        # One line search for all members would couple them: each would no longer move as it would alone.
        raise NstkitError(f"optimizer {first.config.optimizer} runs one image at a time (its line search would "
                          "couple the members): use optimizer adam (or auto) for batches, or stylize each variant")


