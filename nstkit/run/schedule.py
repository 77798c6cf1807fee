"""A run's plan: its stages (sizes, steps, the gradient source of each) and its members (one image each, with
its inputs loaded and prepared), and what a stage hands the objective: the members' images at its size.

`schedule` turns a resolved config into stages: coarse-to-fine levels below the full size, or a tiled run's
one-pass start and then its tiles. The loop (`loop.run_stages`) runs every kind of stage the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..core.catalog import MIN_IMAGE_SIDE
from ..core.config import LBFGS_OPTIMIZERS, StyleConfig
from ..core.errors import warn
from ..media.images import resize_to
from ..media.tiles import window_shape
from ..objective.terms import StageInputs


@dataclass(frozen=True)
class Stage:
    """One part of a run's schedule: ``steps`` steps at ``size`` (height, width), gradients from ``source``."""

    size: tuple[int, int]
    steps: int
    source: str = "image"  # a key of `gradients.SOURCES`
    scale: float = 1.0  # the size as a share of the output's; the styles are scaled by it too
    tile_size: int | None = None  # tiles only
    tile_overlap: int = 0
    style_max_dim: int | None = None  # the styles downscaled (never upscaled) to this long side; None: as the image
    precision: str | None = None  # the network's precision here; None: the config's
    until_flat: bool = False  # ends once its best loss stops falling (`core.config.FLAT_GAIN`, `FLAT_WINDOW`)
    shares_steps: bool = False  # runs what the stage before it left of the same ``steps`` (a float32 finish)


@dataclass
class Member:
    """One image being optimised: its config and its inputs, loaded and prepared for the network (full size)."""

    config: StyleConfig
    inputs: dict[str, Any]  # the run record's description of the inputs (paths, hashes)
    blend: list[float]
    content_rgb: np.ndarray  # what the network sees (grey in luminance mode)
    style_rgbs: list[np.ndarray]
    init_rgb: np.ndarray
    finish: Callable[[np.ndarray], np.ndarray]  # the best image (float RGB) -> the output (float RGB, unrounded)
    extra: dict[str, Any] = field(default_factory=dict)  # more for its run record (e.g. the preset's overrides)
    regions: Any = None  # `masks.Regions` at the content's size, or None: the style everywhere
    # Video: (the previous stylised frame warped onto this one, float RGB (H, W, 3); where that warp holds,
    # (H, W) of 0 and 1), for the temporal term. None for images.
    previous: tuple[np.ndarray, np.ndarray] | None = None
    # Style packs (`core.packs`): per style, whether it came from one; and their statistics, by cache key.
    packed: list[bool] = field(default_factory=list)
    style_statistics: dict = field(default_factory=dict)


def schedule(config: StyleConfig, shape: tuple[int, int]) -> list[Stage]:
    """A resolved config's stages for a content of ``shape`` (height, width), in the order they run.

    - ``tile_size``: a one-pass start at ``tile_start_dim`` (if the image is
      larger; ``tile_start_steps`` steps), then ``steps`` tiled steps at full
      size, the styles at the window's size;
    - ``coarse_levels`` N: below the first one-pass stage (the full size, or a
      tiled run's start), N stages at 1/Fᴺ … 1/F of its size (F:
      ``coarse_factor``), each with ``coarse_steps`` steps (default: half of
      its steps) and none with a side under 32 px;
    - ``float32_finish`` (L-BFGS below float32): the full-size stage ends
      once its loss stops falling, and a float32 stage at the same size
      runs the steps it left (`float32_finish`).
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
                warn(f"coarse_levels {config.coarse_levels}: {level - 1} coarse level(s) run, since level {level} "
                     f"would be under {MIN_IMAGE_SIDE} px at {shape[1]}x{shape[0]} px; lower coarse_levels or "
                     "raise max_dim")
                break
            steps = config.coarse_steps or max(1, first.steps // 2)
            stages.insert(0, Stage(scaled(shape, factor), steps, "image", scale=factor))
    return float32_finish(config, stages)


def float32_finish(config: StyleConfig, stages: list[Stage]) -> list[Stage]:
    """``stages`` with a float32 finish, where ``config.float32_finish`` asks for one and the run is not float32.

    L-BFGS on bfloat16 losses and gradients: each evaluation is cheaper (18-39% measured on an AVX-512 BF16
    CPU), but its line search stalls or crawls once the loss nears bfloat16's resolution (BENCHMARKS.md, "Time
    to quality"). So the full-size stage ends when its loss stops falling, and a float32 stage of the same size
    spends the evaluations it left, from its best image and with its L-BFGS memory (`loop`): the cheap
    evaluations were to do the early descent, float32 the end. Measured, the bfloat16 stage buys less descent
    per evaluation long before it is flat, and the run ended 15-56% above float32's loss at equal evaluations
    (BENCHMARKS.md, "Time to quality"): an option, not a default.
    """
    last = stages[-1]
    if not config.float32_finish or config.precision == "float32" or last.source != "image" \
            or config.optimizer not in LBFGS_OPTIMIZERS:
        return stages
    return [*stages[:-1], dataclasses.replace(last, until_flat=True),
            dataclasses.replace(last, precision="float32", shares_steps=True)]


def planned_steps(stages: Sequence[Stage]) -> int:
    """The steps a schedule plans: a stage that shares the one before's steps (`Stage.shares_steps`) adds none."""
    return sum(stage.steps for stage in stages if not stage.shares_steps)


def stage_inputs(members: Sequence[Member], stage: Stage) -> StageInputs:
    """The members' content and styles at a stage's size: styles scaled as the image is, or to the window."""
    from ..media.images import check_size, preprocess, resize_max_dim

    content = np.concatenate([preprocess(resize_to(m.content_rgb, *stage.size)) for m in members])
    styles = []
    for member in members:
        if stage.style_max_dim is not None:
            scales = member.config.style_scales(len(member.style_rgbs))
            resized = ([resize_max_dim(rgb, stage.style_max_dim) for rgb in member.style_rgbs] if scales is None else
                       [resize_to(rgb, *scaled(rgb.shape[:2], f * stage.style_max_dim / max(rgb.shape[:2])))
                        for rgb, f in zip(member.style_rgbs, scales)])  # F times the window, as F times the image
            for rgb in resized:  # a wide style can end up too thin for the network at a tile's size
                check_size(rgb.shape[:2], f"style image at this run's window ({stage.style_max_dim} px)",
                           downscaled=True)
            styles.append(resized)
        else:
            styles.append([resize_to(rgb, *scaled(rgb.shape[:2], stage.scale)) for rgb in member.style_rgbs])
    regions = members[0].regions  # a batch shares its mask
    previous = reliable = None
    if members[0].previous is not None:
        previous = np.concatenate([preprocess(resize_to(m.previous[0], *stage.size)) for m in members])
        reliable = np.stack([resize_to(np.asarray(m.previous[1], np.float32)[..., None], *stage.size)
                             for m in members])
    return StageInputs(content=content, styles=styles, blends=[member.blend for member in members],
                       masks=regions.at(stage.size) if regions is not None else None,
                       keeps_content=regions is not None and regions.unstyled, previous=previous,
                       previous_reliable=reliable)


def scaled(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """``shape`` times ``factor``, rounded, no side below ResNet-50's smallest input."""
    if factor == 1.0:
        return tuple(shape)
    return max(MIN_IMAGE_SIDE, round(shape[0] * factor)), max(MIN_IMAGE_SIDE, round(shape[1] * factor))
