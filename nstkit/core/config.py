"""The run configuration: one dataclass, one source of defaults, each field described once.

The Python API, the CLI, the widgets, sweeps and the JSON run record all read
and write `StyleConfig`. Each field carries its own description (`fields.option`):
the CLI's flags, the sweep's grid values, the panel's controls, the batch
rule and validation are all made from it. Its defaults are the seed's
settings (original-settings.md): Adam(lr=20, beta_1=0.99, epsilon=0.1) in
caffe-BGR pixel space, 512 px on the long side, content weight 1e2, style
weight 1e7, 1000 steps, the ``robust`` layer set.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .._version import RECORD_VERSION
from . import fields
from .catalog import BACKBONES, MAX_STYLE_SIDE, LayerSpec, parse_layers
from .errors import NstkitError
from .fields import fraction, number, one_of, option, whole
from .presets import (
    PRESET_NAMES,
    SWAG_FIRST_STAGE,
    SWAG_RENAMED,
    SWAG_TEMPERED,
    SWAG_VARIANTS,
    Preset,
    default_swag_layers,
    get_preset,
)

DEFAULT_CONTENT_WEIGHT = 1e2
DEFAULT_STYLE_WEIGHT = 1e7
# Start images, besides a path (crowsonkb/style-transfer's set): "noise" is the older name of "uniform".
INIT_CHOICES = ("content", "gray", "uniform", "noise", "style_stats")


def palette_path(color_from: str) -> bool:
    """Whether ``color_from`` names a palette image (anything not in `COLOR_SOURCES`)."""
    return color_from not in COLOR_SOURCES


def init_is_path(init: str) -> bool:
    """Whether ``init`` names an image file (anything not in `INIT_CHOICES`): the one place that decides it."""
    return init not in INIT_CHOICES


# What of the style's features the style loss matches (nstkit/objective/style_stats.py describes each).
STYLE_LOSSES = ("gram", "mean_cov", "wasserstein", "histogram", "remd", "nn", "mrf")
# How the content is kept (nstkit/objective/terms.py, `content_term`): the seed's squared difference of
# activations, or STROTSS's self-similarity (Kolkin et al. 2019), which keeps what the positions say about each
# other and leaves their colours and textures free.
CONTENT_LOSSES = ("mse", "self_similarity")
# Losses sampled anew at every step (random positions, seeded by the step): Adam's, never L-BFGS's, whose line
# search needs the same loss at every evaluation.
SAMPLED_LOSSES = {"style_loss": ("remd", "nn", "mrf"), "content_loss": ("self_similarity",)}
# The self-similarity loss reads 0 at the content and about 5-10 once the layout is gone (64 px, random weights),
# where the normalised style terms start at 1 x NORMALISED_STYLE_WEIGHT: this weight lets a lost layout pull about
# as hard. A first setting, not tuned (random weights cannot judge it; the method comparison will measure it).
SELF_SIMILARITY_CONTENT_WEIGHT = 1e4
# The Gram loss keeps the seed's raw scale (its weights: the preset's, else 1e7). Every other statistic's loss
# is divided, per layer, by its value at the content image, so it reads 1 there whatever the network. With
# weight 1e5 (content 1e2) each reached the held-out style distance of the robust preset's Gram default
# (0.20-0.21 against 0.196) while keeping more of the content (SSIM 0.26-0.29 against 0.05), random weights at
# 192 px (benchmarks/style_loss_weights.py; BENCHMARKS.md, "Style losses").
NORMALISED_STYLE_WEIGHT = 1e5
POOLINGS = ("max", "avg")
PARAMETERIZATIONS = ("pixel", "fourier")
COLOR_MODES = ("none", "luminance", "match")
# normalize_gradients: the default (content, style) weights of unit-L1 gradients, neural-style's defaults.
GRADIENT_NORMALIZED_WEIGHTS = (5.0, 100.0)
COLOR_TRANSFERS = ("none", "histogram", "mean_cov")  # `media.color.transfer_colors`
COLOR_SOURCES = ("content", "style")  # color_from, besides a palette image's path
AUTO_OPTIMIZER = "auto"  # L-BFGS wherever it applies, else Adam (`resolve_optimizer`), chosen when a run starts
OPTIMIZERS = (AUTO_OPTIMIZER, "adam", "lbfgs", "lbfgsb")
LBFGS_OPTIMIZERS = ("lbfgs", "lbfgsb")  # in the compiled step (`optim.lbfgs.LBFGS`), and scipy's L-BFGS-B
# "auto"'s L-BFGS starts at half the size on an image this large (long side, px), with this many evaluations there
# (`auto_coarse_level`; measured in BENCHMARKS.md, "Time to quality").
AUTO_COARSE_MIN_SIDE, AUTO_COARSE_STEPS = 384, 40
# ``float32_finish``: the bfloat16 stage ends once its best loss fell by less than this share over this many
# evaluations (measured at 256 px, coffee x strokes: in-graph L-BFGS in bfloat16 fell 10-40% per 10 evaluations,
# then 0% from evaluation 120 to 200, where float32's still fell 7-15% per 10).
FLAT_GAIN, FLAT_WINDOW = 0.01, 10
ADAM_FIELDS = ("learning_rate", "beta_1", "beta_2", "epsilon", "warmup_steps", "lr_decay", "ema")  # Adam's alone
PRECISIONS = ("float32", "bfloat16", "float16")  # the network's compute precision (nstkit/network/folding.py)
AUTO_PRECISION = "auto"  # the device's choice (`device.resolve_precision`), made when a run starts
# Adam's step in each parameterisation's own units: caffe pixels (the seed's 20), or Fourier coefficients
# scaled as in lucid (Mordvintsev et al. 2018 used 0.05).
DEFAULT_LEARNING_RATE = {"pixel": 20.0, "fourier": 0.05}
DEFAULT_EPSILON = 0.1  # the seed's Adam epsilon, in caffe pixel units
# With preserve_color luminance/match the start is the content's luminance, and Adam's first full-rate step
# (about ±lr in every channel) throws it far out: with random weights at 64-256 px the loss rose 23-130-fold
# and no step in 30 came back below the start. A 10-step warm-up made every step in 30 improve (BENCHMARKS.md).
COLOR_WARMUP_STEPS = 10
DEFAULT_TILE_SIZE = 512  # `stylize_tiled`'s tile when none is given
# Preset-provided fields: the run record says which of these a run overrode.
PRESET_FIELDS = ("style_layers", "content_layers", "content_weight", "style_weight", "learning_rate", "epsilon",
                 "swag")

_BEYOND, _SPEED, _TILES = "beyond the seed", "speed and memory", "huge images (tiles)"
_SCHEDULE = "optimiser schedules"
_VIDEO = "video"
# nstkit video's temporal weight, on the mean squared caffe-pixel difference to the warped previous frame.
# benchmarks/video_flicker.py (random weights, robust preset, 8 frames at 96 px, 60 then 20 steps): 1e4 left the
# warping error where warm starts alone put it (1.7x below independent frames), 1e6 made it 4.5x lower at the
# same style loss, 1e8 44x lower but the frames stopped stylising (style loss back to the independent frames').
VIDEO_TEMPORAL_WEIGHT = 1e6


def _layer_spec(name: str, value: Any) -> None:
    """Layer specs are parsed (and checked against the catalog) when the config resolves; here only their type."""
    if value is not None and not isinstance(value, (str, list, tuple, dict)):
        raise NstkitError(f"{name} must be a layer spec like 'conv1_relu,conv2_block1_out:2', a list or a dict; "
                          f"got {value!r}")


def _tile_size(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 32:
        raise NstkitError(f"{name} must be a whole number of px >= 32 (ResNet-50's smallest input), "
                          f"or none for one pass; got {value!r}")


def _above_one(name: str, value: Any) -> None:
    number(zero=False)(name, value)
    if value <= 1:
        raise NstkitError(f"{name} must be above 1 (each level smaller than the next), got {value}")


def _tile_start_dim(name: str, value: Any) -> None:
    whole(0)(name, value)
    if 0 < value < 32:
        raise NstkitError(f"{name} must be 0 (no one-pass start) or >= 32 px, got {value}")


def _scales(name: str, value: Any) -> None:
    """One positive factor, or a list of them."""
    (number(zero=False) if isinstance(value, (int, float)) else fields.numbers(number(zero=False)))(name, value)


def _tri_state(name: str, value: Any) -> None:
    if value not in (None, True, False):
        raise NstkitError(f"{name} must be true, false or null (the device's default), got {value!r}")


def _lr_text() -> str:
    pixel, fourier = DEFAULT_LEARNING_RATE["pixel"], DEFAULT_LEARNING_RATE["fourier"]
    return (f"the preset's, else {fields.number_text(pixel)} in caffe pixel units; "
            f"{fields.number_text(fourier)} with --param fourier")


@dataclass
class StyleConfig:
    """Everything that decides a run's output, and nothing that does not.

    ``style_layers`` / ``content_layers`` override the preset's layers; the
    loss weights left as ``None`` come from the preset, else from the seed's
    defaults. `resolved()` fills them in, and the run record stores that form,
    so a record can be fed back to reproduce the run.
    """

    preset: str | None = option(
        help=f"layer preset: {', '.join(PRESET_NAMES)}; conv_relu:0.25 puts 25% of the style weight on ReLU layers",
        kind="str", default_text="robust, or vgg19 with --backbone vgg19", batch=True,
        widget=("choice", *PRESET_NAMES[:-1], "conv_relu:0.5"))
    # Layer specs: 'name,name:2,...', a list (a repeated name adds up) or a dict; a dict once resolved.
    style_layers: LayerSpec = option(
        help="override the preset's style layers: 'name,name:2,...' (':w' weights a layer; a repeated name adds up)",
        kind="layers", check=_layer_spec, optional=True, batch=True)
    content_layers: LayerSpec = option(
        help="override the preset's content layers, same syntax", kind="layers", check=_layer_spec,
        optional=True, batch=True)
    content_weight: float | None = option(
        help="content loss weight", kind="float", check=number(zero=True),
        default_text=f"the preset's, else {fields.number_text(DEFAULT_CONTENT_WEIGHT)}; with --content-loss "
                     f"self_similarity, {fields.number_text(SELF_SIMILARITY_CONTENT_WEIGHT)}", batch=True,
        widget=("log", -8, 6, 0.5))
    style_weight: float | None = option(
        help="style loss weight", kind="float", check=number(zero=True),
        default_text=f"the preset's, else {fields.number_text(DEFAULT_STYLE_WEIGHT)}; with a --style-loss other "
                     f"than gram, {fields.number_text(NORMALISED_STYLE_WEIGHT)}", batch=True, widget=("log", -3, 13, 0.5))
    tv_weight: float = option(0.0, help="total-variation weight", kind="float", check=number(zero=True), batch=True)
    temporal_weight: float | None = option(
        help="video: weight of the temporal loss, the masked squared difference to the previous stylised frame "
                  "warped by the optical flow (Ruder et al. 2016); 0 for images",
        kind="float", check=number(zero=True), default_text=f"0; {fields.number_text(VIDEO_TEMPORAL_WEIGHT)} for "
                                                             "nstkit video", group=_VIDEO)
    optimizer: str = option(
        AUTO_OPTIMIZER, help="auto: lbfgs wherever it applies (one whole image, the same loss every step; from "
                             "half the size first on an image of 384 px or more, unless coarse levels are given), "
                             "else adam, and the run record says which and why; adam: the seed's; lbfgs: L-BFGS in the "
                             "compiled step (a step is one function evaluation; the Adam settings do not apply); "
                             "lbfgsb: scipy's L-BFGS-B on the host, the reference lbfgs is tested against",
        kind="str", check=one_of(OPTIMIZERS), choices=OPTIMIZERS, widget=("choice", *OPTIMIZERS),
        tiles=(lambda value: value in ("adam", AUTO_OPTIMIZER),
               "optimizer adam (the moving windows change the loss every step)"))
    learning_rate: float | None = option(
        help="Adam learning rate", kind="float", check=number(zero=False), flag="--lr", aliases=("--learning-rate",),
        default_text=_lr_text(), widget=("log", -2, 2, 0.1))
    beta_1: float = option(0.99, help="Adam beta_1", kind="float", check=fraction, flag="--beta1")
    beta_2: float = option(0.999, help="Adam beta_2", kind="float", check=fraction, flag="--beta2")
    epsilon: float | None = option(help="Adam epsilon", kind="float", check=number(zero=False),
                                   default_text=f"the preset's, else {DEFAULT_EPSILON} (the seed's)")
    warmup_steps: int | None = option(
        help="raise Adam's learning rate linearly over the first N steps (0: the full rate from the first step, "
             "as the seed)", kind="int", check=whole(0), metavar="N", group=_SCHEDULE, optional=True,
        default_text=f"{COLOR_WARMUP_STEPS} with --preserve-color luminance or match, else 0", batch=True)
    lr_decay: float = option(
        1.0, help="the share of Adam's learning rate left at the last step, reached geometrically after the "
                  "warm-up (1: constant, as the seed)", kind="float", check=number(zero=False), group=_SCHEDULE)
    ema: float = option(
        0.0, help="keep an exponential moving average of the image with this decay (e.g. 0.9, as "
                  "crowsonkb/style-transfer outputs); at the end it is scored and kept if it beats the best step "
                  "(0: none)", kind="float", check=fraction, group=_SCHEDULE,
        tiles=(lambda value: value == 0, "no ema"))
    steps: int = option(1000, help="optimisation steps", kind="int", check=whole(1), widget=("int", 5, 2000, 5))
    max_dim: int = option(512, help="downscale images so the long side is at most this many px", kind="int",
                          check=whole(32), metavar="PX", widget=("int", 64, 1024, 32))
    init: str = option(
        "content", help="start from 'content', 'gray', 'uniform' noise, 'style_stats' (noise with the style's colour "
                        "mean and covariance) or an image path ('noise': uniform's older name)",
        kind="str", batch=True)
    seed: int = option(0, help="seed for noise init, jitter and tile offsets", kind="int", check=whole(0), batch=True)
    weights: str = option("imagenet", kind="str",
                          help="'imagenet' (downloaded once to the Keras cache), a local .h5 path, or "
                               "'random[:SEED]' for offline runs (Keras' initialisation; 'random-kaiming[:SEED]': "
                               "PyTorch's ResNet one, Kaiming-normal fan-out)")
    backbone: str | None = option(
        help="network; vgg19 is the baseline", kind="str", check=one_of(BACKBONES), choices=BACKBONES,
        default_text="resnet50, or the preset's")
    # Beyond the seed (issue #4): activation smoothing, image parameterisation, loss normalisation, colour.
    swag: str | None = option(
        help="smooth activations before the losses (Wang et al. 2021): " + "; ".join(
            f"{name}: {source}" for name, source in SWAG_VARIANTS.items() if name != "none"),
        kind="str", check=one_of(tuple(SWAG_VARIANTS)), choices=tuple(SWAG_VARIANTS),
        default_text="the preset's, else none", group=_BEYOND,
        tiles=(lambda value: value in (None, "none"), "no swag"))
    swag_temperature: float = option(1.0, help=f"softmax temperature T of --swag {' and '.join(SWAG_TEMPERED)}",
                                     kind="float", check=number(zero=False), group=_BEYOND)
    swag_alpha: float = option(1.0, help="factor for --swag scale", kind="float", check=number(zero=False),
                               group=_BEYOND)
    swag_layers: list[str] | None = option(
        help="layers to smooth, 'a,b,...'; each must be a style or content layer", kind="names", optional=True,
        group=_BEYOND, default_text=f"the style and content layers in stages {SWAG_FIRST_STAGE}-5")
    param: str = option(
        "pixel", help="optimise pixels, or a colour-decorrelated Fourier spectrum (Mordvintsev et al. 2018)",
        kind="str", check=one_of(PARAMETERIZATIONS), choices=PARAMETERIZATIONS, group=_BEYOND,
        tiles=(lambda value: value == "pixel", "param pixel"))
    jitter: int = option(0, help="shift the image by up to this many px each step", kind="int", check=whole(0),
                         group=_BEYOND,
                         tiles=(lambda value: value == 0, "no jitter (the moving tiles already shift each step)"))
    normalize_style_layers: bool = option(
        False, help="divide each style layer's loss by its target's scale (He et al. 2016)", kind="bool",
        check=fields.boolean, group=_BEYOND)
    normalize_gradients: bool = option(
        False, help="divide each loss layer's gradient by its mean absolute value, then weigh it (after "
                    "neural-style's -normalize_gradients, Johnson 2015, which divides by the sum): every layer pulls "
                    "as hard as its weight says, whatever its activations' scale or the image's size. The weights "
                    "then weigh unit pulls (tv, on pixels, keeps its raw scale): default "
                    f"content {GRADIENT_NORMALIZED_WEIGHTS[0]:g}, style {GRADIENT_NORMALIZED_WEIGHTS[1]:g} "
                    "(neural-style's); Adam only", kind="bool", check=fields.boolean, group=_BEYOND,
        tiles=(lambda value: not value, "no normalize_gradients"))
    preserve_color: str = option(
        "none", help="keep the content's colours: 'luminance' transfers luminance only, 'match' gives the style the "
                     "content's colour statistics first (Gatys et al. 2017)",
        kind="str", check=one_of(COLOR_MODES), choices=COLOR_MODES, group=_BEYOND, batch=True)
    color_transfer: str | None = option(
        help="recolour before the run (Gatys et al. 2017, section 5): histogram (each RGB channel's histogram, "
             "matched) or mean_cov (the colours' mean and covariance, a linear map); --color-from says whose "
             "colours", kind="str", check=one_of(COLOR_TRANSFERS), choices=COLOR_TRANSFERS, optional=True,
        group=_BEYOND, widget=("choice", *COLOR_TRANSFERS),
        default_text="none; histogram with --color-from style or an image")
    color_from: str = option(
        "content", help="whose colours --color-transfer gives: content (the styles take the content's colours), "
                        "style (the content and the start take the styles'), or a palette image's path (all of "
                        "them take its colours)", kind="str", metavar="content|style|PATH", group=_BEYOND,
        widget=("choice", *COLOR_SOURCES))
    coarse_levels: int = option(
        0, help="first optimise at 1/F, 1/F², ... of the size (F: --coarse-factor), then upsample; Adam's moments "
                "carry across, resized with the image (with --param fourier they restart)", kind="int", check=whole(0),
        group=_BEYOND)
    coarse_factor: float = option(
        2.0, help="each coarse level is this much smaller than the next (crowsonkb/style-transfer grows by √2: "
                  "1.414)", kind="float", check=_above_one, group=_BEYOND)
    coarse_steps: int | None = option(
        help="steps at each coarse level", kind="int", check=whole(1), optional=True, metavar="N",
        default_text="half of --steps", group=_BEYOND)
    style_loss: str = option(
        "gram", help="what of the style's features to match: gram (the seed's Gram matrices), mean_cov (means and "
                     "covariances), wasserstein (the 2-Wasserstein distance of Gaussians fitted to them, as "
                     "crowsonkb/style-transfer), histogram (Gram plus each channel's histogram, Risser et al. "
                     "2017), remd (STROTSS, Kolkin et al. 2019: the relaxed earth mover's distance between the "
                     "features at 1024 positions drawn each step and the style's, plus their means and "
                     "covariances; Adam only), nn (NNST, Kolkin et al. 2022: each drawn feature pulled to its "
                     "nearest style feature; Adam only), mrf (CNNMRF, Li & Wand 2016: 3x3 feature patches pulled "
                     "to their best-correlated style patch; Adam only). gram keeps the seed's raw scale; the "
                     "others read 1 at the content "
                     f"image, so their default style weight is {NORMALISED_STYLE_WEIGHT:g}",
        kind="str", check=one_of(STYLE_LOSSES), choices=STYLE_LOSSES, group=_BEYOND,
        widget=("choice", *STYLE_LOSSES), tiles=(lambda value: value == "gram", "style_loss gram"))
    content_loss: str = option(
        "mse", help="how the content is kept: mse (the seed's squared difference of activations), or "
                    "self_similarity (STROTSS, Kolkin et al. 2019: the pattern of cosine distances between 1024 "
                    "positions drawn each step, so colours and textures stay free; Adam only)",
        kind="str", check=one_of(CONTENT_LOSSES), choices=CONTENT_LOSSES, group=_BEYOND,
        widget=("choice", *CONTENT_LOSSES), tiles=(lambda value: value == "mse", "content_loss mse"))
    style_scale: list[float] | None = option(
        help="resize each style image to F times the output's long side (in a tiled run, the window's) before "
             f"its statistics are taken (larger: larger texture features), up to {MAX_STYLE_SIDE} px; one F for "
             "all styles, or one per style, e.g. 0.5,2",
        kind="floats", optional=True, check=_scales, metavar="F", group=_BEYOND,
        default_text="the style as loaded (downscaled to --max-dim)", batch=True)
    mask: str | None = option(
        help="a mask image over the content: one style per mask colour (colours in the order they first appear "
             "reading from the top-left; black leaves its region unstyled), or a grayscale mask for one style "
             "(white: styled, black: the content kept)", kind="str", optional=True, metavar="PATH",
        group=_BEYOND, tiles=(lambda value: value is None, "no mask"))
    pooling: str = option(
        "max", help="the network's pooling: max (as trained), or avg: its max pools (ResNet-50's one after conv1, "
                    "VGG19's five) become average pools of the same window (Gatys et al. 2016 found smoother "
                    "gradients)",
        kind="str", check=one_of(POOLINGS), choices=POOLINGS, group=_BEYOND, widget=("choice", *POOLINGS))
    style_blend: list[float] | None = option(
        help="weights of several style images, e.g. 0.7,0.3", kind="floats", optional=True,
        check=fields.numbers(number(zero=False)), default_text="equal", group=_BEYOND, batch=True)
    # Speed (issue #5): the network's compute precision (the image and the losses stay float32), and XLA.
    precision: str = option(
        AUTO_PRECISION, help="the network's compute precision (the image and the losses stay float32); auto: "
                             "float32 here, as measured: bfloat16 ended 11% above float32's loss with Adam, "
                             "stalled with L-BFGS, and ended 15-56% above it with L-BFGS and a float32 finish "
                             "(BENCHMARKS.md); bfloat16 was 1.4-2.6x faster per step on CPUs "
                             "with AVX-512 BF16 or AMX (GPUs unmeasured). float32 is the "
                             "seed's exact path", kind="str", check=one_of((AUTO_PRECISION, *PRECISIONS)),
        choices=(AUTO_PRECISION, *PRECISIONS), group=_SPEED, widget=("choice", AUTO_PRECISION, *PRECISIONS),
        tiles=(lambda value: value != "float16", "precision float32 or bfloat16"))
    float32_finish: bool = option(
        False, help=f"L-BFGS in bfloat16: once its full-size loss stops falling (under {FLAT_GAIN:.0%} in {FLAT_WINDOW} "
                    "evaluations) or its "
                    "line search stalls on the rounded losses, spend the evaluations left in float32, from the best "
                    "image and with L-BFGS's memory; a no-op in float32. Measured on an AVX-512 BF16 CPU: "
                    "evaluations 25-40% cheaper, but the end 15-56% above float32's loss at equal evaluations "
                    "(BENCHMARKS.md), so auto never takes it", kind="bool", check=fields.boolean, group=_SPEED)
    jit_compile: bool | None = option(
        help="compile the step with XLA", kind="bool", check=_tri_state, optional=True, group=_SPEED,
        default_text="on with a GPU, off on CPUs")
    # Huge images (nstkit/media/tiles.py): tiles of this many px, None = one pass.
    tile_size: int | None = option(
        help="stylise in tiles of PX px, shifted every step, for images too large for one pass (e.g. 512 with "
             "--max-dim 4096); --steps then counts the tiled steps at full size", kind="int", check=_tile_size,
        optional=True, metavar="PX", group=_TILES, default_text="one pass")
    tile_overlap: int = option(64, help="px of context each tile's window reaches past the tile on every side",
                               kind="int", check=whole(0), metavar="PX", group=_TILES)
    tile_start_dim: int = option(1024, help="first stylise in one pass at this long side, then refine with tiles; "
                                            "0: no start", kind="int", check=_tile_start_dim, metavar="PX",
                                 group=_TILES)
    tile_start_steps: int = option(200, help="steps of that one-pass start", kind="int", check=whole(1),
                                   metavar="N", group=_TILES)

    def replace(self, **changes: Any) -> "StyleConfig":
        unknown = set(changes) - set(FIELD_NAMES)
        if unknown:
            raise NstkitError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                              f"valid options are {', '.join(FIELD_NAMES)}")
        return dataclasses.replace(self, **changes)

    def resolved(self) -> "StyleConfig":
        """Fill in and check every field, in four explicit steps: preset, layers, defaults, validate."""
        resolved = self._filled()
        resolved.validate()
        return resolved

    def _filled(self) -> "StyleConfig":
        """Steps 1-3 of `resolved`: every field filled in from the preset and the defaults, not yet checked."""
        preset, backbone = self._preset()
        style, content, swag_layers = self._layers(preset, backbone)
        filled = dataclasses.replace(self, preset=preset.name, backbone=backbone, style_layers=style,
                                     content_layers=content, swag_layers=swag_layers, **self._defaults(preset))
        if self.swag_layers is None and filled.swag == "none":
            filled.swag_layers = []  # nothing smoothed: the default layers would only clutter the record
        return filled

    def _preset(self) -> tuple[Preset, str]:
        """Step 1: the preset (by name, else the backbone's default) and the backbone it implies."""
        if self.backbone is not None:
            one_of(BACKBONES)("backbone", self.backbone)
        preset = get_preset(self.preset or ("vgg19" if self.backbone == "vgg19" else "robust"))
        backbone = self.backbone or preset.backbone
        if backbone != preset.backbone:
            raise NstkitError(f"preset '{preset.name}' is for {preset.backbone}, not {backbone}: "
                              f"use --preset {'vgg19' if backbone == 'vgg19' else 'robust'} or give the layers")
        return preset, backbone

    def _layers(self, preset: Preset, backbone: str):
        """Step 2: style, content and smoothed layers, from the overrides or the preset, checked against the catalog."""
        for name in ("style_layers", "content_layers"):
            _layer_spec(name, getattr(self, name))
        style = (parse_layers(self.style_layers, "style layers", backbone) if self.style_layers
                 else dict(preset.style_layers))
        content = (parse_layers(self.content_layers, "content layers", backbone) if self.content_layers
                   else dict(preset.content_layers))
        swag_layers = self.swag_layers
        if swag_layers is None:
            swag_layers = default_swag_layers(dict.fromkeys([*style, *content]), backbone)
        return style, content, list(parse_layers(swag_layers, "swag layers", backbone)) if swag_layers else []

    def _defaults(self, preset: Preset) -> dict[str, Any]:
        """Step 3: fields left as None take the preset's value, else nstkit's default."""
        if self.normalize_gradients:  # the weights weigh unit pulls: neither the preset's nor a loss's scale
            content_weight, style_weight = GRADIENT_NORMALIZED_WEIGHTS
        else:
            content_weight = (_first(preset.content_weight, DEFAULT_CONTENT_WEIGHT) if self.content_loss == "mse"
                              else SELF_SIMILARITY_CONTENT_WEIGHT)
            style_weight = (_first(preset.style_weight, DEFAULT_STYLE_WEIGHT) if self.style_loss == "gram"
                            else NORMALISED_STYLE_WEIGHT)
        return {"content_weight": _first(self.content_weight, content_weight),
                "style_weight": _first(self.style_weight, style_weight),
                "swag": _first(self.swag, preset.swag, "none"),
                "color_transfer": _first(self.color_transfer,
                                         "histogram" if self.color_from != "content" else "none"),
                "temporal_weight": _first(self.temporal_weight, 0.0),  # nstkit video gives its own default
                "warmup_steps": _first(self.warmup_steps, COLOR_WARMUP_STEPS if self.preserve_color != "none"
                                       and self.optimizer == "adam" else 0),
                "learning_rate": _first(self.learning_rate,
                                        preset.learning_rate if self.param == "pixel" else None,
                                        DEFAULT_LEARNING_RATE.get(self.param, DEFAULT_LEARNING_RATE["pixel"])),
                "epsilon": _first(self.epsilon, preset.epsilon if self.param == "pixel" else None, DEFAULT_EPSILON)}

    def validate(self) -> None:
        """Step 4: every field's own check, then the rules that tie fields together."""
        fields.validate(self)
        if self.content_weight == 0 and self.style_weight == 0:
            raise NstkitError("content_weight and style_weight are both 0: nothing to optimise; "
                              "give at least one a positive value")
        if self.tile_size is not None:
            unsupported = {name: getattr(self, name) for name, (_, spec) in fields.options(StyleConfig).items()
                           if spec.tiles and not spec.tiles[0](getattr(self, name))}
            if unsupported:
                supported = [spec.tiles[1] for _, spec in fields.options(StyleConfig).values() if spec.tiles]
                got = ", ".join(f"{name}={value!r}" for name, value in unsupported.items())
                raise NstkitError(f"tiled runs (tile_size) support {', '.join(supported)}; got {got}: "
                                  "change it or drop tile_size")
        if not self.coarse_levels and (self.coarse_steps is not None
                                       or self.coarse_factor != OPTIONS["coarse_factor"][0].default):
            raise NstkitError("coarse_factor and coarse_steps shape the coarse levels, and coarse_levels is 0: "
                              "give coarse_levels N, or drop them")
        chosen = self.optimizer
        if chosen in LBFGS_OPTIMIZERS and self.jitter:
            raise NstkitError(f"optimizer {chosen} needs the same loss at every step, and jitter shifts the image "
                              "each step: drop jitter or use optimizer adam")
        adam_only = {name: getattr(self, name) for name in ("warmup_steps", "lr_decay", "ema")
                     if getattr(self, name) not in (OPTIONS[name][0].default, 0)}
        if chosen in LBFGS_OPTIMIZERS and adam_only:
            raise NstkitError(f"{', '.join(f'{k}={v}' for k, v in adam_only.items())} shape Adam's steps, and "
                              f"optimizer {chosen} takes its own: drop them, or use optimizer adam")
        if self.float32_finish and chosen == "adam":
            raise NstkitError("float32_finish ends an L-BFGS stage when its loss stops falling, and optimizer adam "
                              "has no such stage: use optimizer lbfgs (or auto), or drop float32_finish")
        if self.float32_finish and self.precision == "float16":
            raise NstkitError("float32_finish finishes an L-BFGS run in bfloat16, and L-BFGS has no float16: "
                              "use precision bfloat16, or drop float32_finish")
        if chosen in LBFGS_OPTIMIZERS and self.precision == "float16":
            raise NstkitError(f"optimizer {chosen} with precision float16 would need loss scaling in its line "
                              "search: use precision bfloat16 or float32")
        if self.normalize_style_layers and self.style_loss != "gram":
            raise NstkitError(f"normalize_style_layers scales the Gram loss per layer, and style_loss "
                              f"{self.style_loss} is normalised per layer already: drop one")
        if self.normalize_gradients and self.normalize_style_layers:
            raise NstkitError("normalize_gradients gives each layer a unit pull, so normalize_style_layers' scale "
                              "per layer would change nothing: drop one")
        if self.normalize_gradients and chosen in LBFGS_OPTIMIZERS:
            raise NstkitError(f"normalize_gradients steps along normalised gradients, not the loss's, and optimizer "
                              f"{chosen}'s line search needs the loss's: use optimizer adam (or auto)")
        if self.normalize_gradients and self.temporal_weight:
            raise NstkitError("normalize_gradients sets each layer's pull by its weight, and the temporal loss (on "
                              "pixels, not layers) keeps its raw scale, so it would outweigh the style: set "
                              "temporal_weight 0, or drop normalize_gradients")
        if self.normalize_gradients and self.precision == "float16":
            raise NstkitError("normalize_gradients divides out the loss scaling float16 needs: use precision "
                              "bfloat16 or float32")
        if self.mask is not None and self.normalize_style_layers:
            raise NstkitError("normalize_style_layers scales the plain Gram loss, and a mask takes each region's "
                              "own statistics: drop one")
        if self.color_transfer not in (None, "none") and self.preserve_color != "none":
            raise NstkitError(f"color_transfer recolours the images before the run, and preserve_color "
                              f"{self.preserve_color} sets the colours its own way: drop one")
        if self.color_transfer == "none" and self.color_from != "content":
            raise NstkitError(f"color_from {self.color_from} says whose colours color_transfer gives, and "
                              "color_transfer is none: give color_transfer histogram or mean_cov, or drop color_from")
        if self.temporal_weight and self.jitter:
            raise NstkitError("jitter shifts the image against the previous frame the temporal loss compares it "
                              "with: drop jitter, or set temporal_weight 0")
        if self.temporal_weight and self.tile_size is not None:
            raise NstkitError("the temporal loss compares whole frames, and tiled runs see one window at a time: "
                              "drop tile_size, or set temporal_weight 0")
        if self.mask is not None and self.jitter:
            raise NstkitError("jitter shifts the image under the mask each step, so border pixels would take "
                              "the other region's style: drop jitter or mask")
        if self.mask is not None and self.style_blend is not None:
            raise NstkitError("style_blend mixes the styles everywhere, and with a mask each region takes its own "
                              "style: drop style_blend or mask")
        if self.mask is not None and self.style_loss in SAMPLED_LOSSES["style_loss"]:
            raise NstkitError(f"style_loss {self.style_loss} draws its positions from the whole image, not per mask "
                              "region: use style_loss gram, mean_cov or wasserstein with a mask")
        sampled = self.sampled_losses()
        if sampled and chosen in LBFGS_OPTIMIZERS:
            raise NstkitError(f"{' and '.join(sampled)} draw{'s' if len(sampled) == 1 else ''} new positions every "
                              f"step, and optimizer {chosen} "
                              "needs the same loss at every evaluation: use optimizer adam (or auto)")
        if self.mask is not None and self.style_loss == "histogram":
            raise NstkitError("style_loss histogram matches each channel's histogram over the whole image, not per "
                              "mask region: use style_loss gram, mean_cov or wasserstein with a mask")
        self._check_swag()
        if not self.style_layers and self.style_weight:
            raise NstkitError("no style layers selected; choose a preset or pass style layers")
        if not self.content_layers and self.content_weight:
            raise NstkitError("no content layers selected; choose a preset or pass content layers")

    def sampled_losses(self) -> list[str]:
        """The losses this config samples anew each step (`SAMPLED_LOSSES`), as "field value" phrases."""
        return [f"{name} {getattr(self, name)}" for name, values in SAMPLED_LOSSES.items()
                if getattr(self, name) in values]

    def _check_swag(self) -> None:
        """Smoothing must reach a loss: a smoothed layer no term reads changes nothing, without a word."""
        if self.swag == "none":
            if self.swag_layers:
                raise NstkitError(f"swag_layers {', '.join(self.swag_layers)} given, and swag is none: "
                                  "choose a variant (e.g. swag softmax) or drop swag_layers")
            return
        if self.swag_temperature != 1.0 and self.swag not in SWAG_TEMPERED:
            raise NstkitError(f"swag {self.swag} has no temperature (swag_temperature {self.swag_temperature:g}): "
                              f"use swag {' or '.join(SWAG_TEMPERED)}, or drop swag_temperature")
        used = {*self.style_layers, *self.content_layers}
        unused = [name for name in self.swag_layers if name not in used]
        if unused:
            raise NstkitError(f"swag layer(s) {', '.join(unused)} feed no loss, so smoothing them changes nothing: "
                              f"smooth some of the style/content layers ({', '.join(used)}) or add them to those")
        if not self.swag_layers:
            raise NstkitError(f"swag {self.swag} has no layer to smooth: no style or content layer is in stages "
                              f"{SWAG_FIRST_STAGE}-5; give swag_layers")

    def overridden_preset_fields(self) -> list[str]:
        """The preset-provided fields this (unresolved) config sets to something other than the preset's value.

        The run record lists them, so ``"preset": "robust"`` with other layers never reads as the robust set.
        """
        resolved = self.resolved()
        # The preset's own values, not checked: the user's fields may be what makes the run valid (swag_layers
        # with the swag the user chose, say), and a preset's plain values are valid by construction.
        plain = dataclasses.replace(self, swag_layers=None, **{name: None for name in PRESET_FIELDS})._filled()
        return [name for name in PRESET_FIELDS
                if getattr(self, name) is not None and getattr(resolved, name) != getattr(plain, name)]

    def blend_weights(self, count: int) -> list[float]:
        """Blend weights for ``count`` style images, normalised to sum to 1 (equal if not given)."""
        blend = list(self.style_blend) if self.style_blend else [1.0] * count
        if len(blend) != count:
            raise NstkitError(f"style_blend has {len(blend)} weights for {count} style image(s): give one per style")
        total = sum(blend)
        return [w / total for w in blend]

    def style_scales(self, count: int) -> list[float] | None:
        """One style-scale factor per style image (None: each style as loaded)."""
        if self.style_scale is None:
            return None
        scales = list(self.style_scale) if isinstance(self.style_scale, (list, tuple)) else [self.style_scale]
        if len(scales) == 1:
            return scales * count
        if len(scales) != count:
            raise NstkitError(f"style_scale has {len(scales)} factors for {count} style image(s): give one for "
                              "all, or one per style")
        return scales

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, newer: bool = False) -> "StyleConfig":
        """The config ``data`` describes (a record's, a hand-edited file's). An unknown field is refused in one
        line, so a typo never replays with the default; ``newer`` (a record a later nstkit wrote): one warning
        naming the fields this version does not know, and the rest replays."""
        unknown = [key for key in data if key not in FIELD_NAMES]
        if unknown and newer:
            warnings.warn(f"config fields {', '.join(unknown)} come from a newer nstkit and are ignored here: "
                          "upgrade nstkit to replay them", stacklevel=3)
        elif unknown:
            close = difflib.get_close_matches(unknown[0], FIELD_NAMES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise NstkitError(f"unknown config field '{unknown[0]}': {hint}the fields are those of "
                              "`nstkit stylize --help` (with _ for -)")
        config = cls(**{k: v for k, v in data.items() if k in FIELD_NAMES})
        return dataclasses.replace(config, swag=SWAG_RENAMED.get(config.swag, config.swag))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "StyleConfig":
        """The config a run record (`record.build_record`) replays: its names as this version reads them.

        Before record version 3, swag "softmax" meant what is now "softmax_relative"; before 5, optimizer
        "lbfgs" meant scipy's L-BFGS-B, now "lbfgsb".
        """
        data = dict(record["config"])
        version = record.get("record_version", 0)
        if version < 3 and data.get("swag") == "softmax":
            data["swag"] = "softmax_relative"
        if version < 5 and data.get("optimizer") == "lbfgs":
            data["optimizer"] = "lbfgsb"
        return cls.from_dict(data, newer=version > RECORD_VERSION)


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(StyleConfig))
OPTIONS = fields.options(StyleConfig)
# What may differ between the members of one batch: the loss weights, the layers (each member weighs the union
# of layers with its own weights, zero for layers it does not use), init and seed, colour mode and the images.
# Everything else shapes the compiled step or the optimiser, so a batch shares it.
BATCH_VARIES = tuple(name for name, (_, spec) in OPTIONS.items() if spec.batch)


# The file keras.applications.ResNet50(include_top=False, weights="imagenet") downloads (`network.backbone` has
# its origin and md5): the example the weights field's messages give.
IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


# Seeded random weights: Keras' default initialisation, and PyTorch's ResNet one (`network.backbone._init_random`).
RANDOM_WEIGHTS = ("random", "random-kaiming")


def parse_weights(weights: str, *, check_file: bool = True) -> tuple[str, int | str | None]:
    """Classify a weights string: ("imagenet", None), (a `RANDOM_WEIGHTS` kind, seed) or ("file", path). No
    TensorFlow.

    ``check_file=False`` takes a path as given, unchecked (a cluster's workers may see files this machine does not).
    """
    if weights == "imagenet":
        return "imagenet", None
    for kind in RANDOM_WEIGHTS:
        if weights == kind or weights.startswith(f"{kind}:"):
            seed_text = weights.partition(":")[2] or "0"
            if not seed_text.isdigit():
                raise NstkitError(f"weights '{weights}': the seed after '{kind}:' must be a whole number, "
                                  f"e.g. {kind}:1")
            return kind, int(seed_text)
    path = Path(weights).expanduser()
    if check_file and not path.is_file():
        raise NstkitError(f"weights file not found: {weights}: give imagenet, random, random-kaiming, or the path "
                          f"of a ResNet-50 notop .h5 file such as {IMAGENET_FILE}")
    return "file", str(path)


PRECISION_ENV = "NSTKIT_PRECISION"


def precision_from_environment() -> str | None:
    """``NSTKIT_PRECISION`` (the notebooks' and the panel's precision), None if unset; a bad value is one line."""
    value = os.environ.get(PRECISION_ENV) or None
    if value is not None and value not in (AUTO_PRECISION, *PRECISIONS):
        raise NstkitError(f"{PRECISION_ENV}={value}: use one of {', '.join((AUTO_PRECISION, *PRECISIONS))}")
    return value


def _first(*values):
    return next(v for v in values if v is not None)


def resolve_optimizer(config: "StyleConfig", *, batch: int = 1, video: bool = False,
                      shape: tuple[int, int] | None = None) -> tuple["StyleConfig", str | None]:
    """``config`` (as given, or as `StyleConfig.resolved` fills it) with optimizer "auto" replaced by what suits
    the run, and why (the run record's ``optimizer_chosen``); any optimizer given is kept, with None.

    L-BFGS (`optim.lbfgs.LBFGS`) wherever it applies: it reaches the seed's
    500-step loss in several times fewer evaluations than Adam takes steps, each
    about as cheap as an Adam step (BENCHMARKS.md, "Time to quality"). Adam
    where L-BFGS's line search needs what the run does not give: the same loss
    at every step (jitter and tiles change it), one image (a batch would share
    one search), no loss scaling (float16); where the user set any of Adam's
    own fields (`ADAM_FIELDS`: they ask for Adam; one at its default value does
    not); for bfloat16 (L-BFGS's line search stalled on its rounded losses:
    BENCHMARKS.md) unless ``float32_finish`` finishes it, and a Fourier spectrum (its first step there is not tuned);
    and for a video's frames, whose few warm-started steps each were tuned with
    Adam (`api.video`). With the image's ``shape`` (height, width), L-BFGS also
    gets `auto_coarse_level`'s coarse level on a large image.
    """
    if config.optimizer != AUTO_OPTIMIZER:
        return config, None
    # Adam's fields set to other than their defaults, as given or as `resolved` fills them in.
    filled = config.replace(**{name: OPTIONS[name][0].default for name in ADAM_FIELDS})._filled()
    adam_set = [name for name in ADAM_FIELDS
                if getattr(config, name) not in (OPTIONS[name][0].default, getattr(filled, name))]
    because = (f"a batch of {batch} (one line search would couple the members)" if batch > 1 else
               "video frames (a few warm-started steps each, tuned with Adam)" if video else
               "tiles (the moving windows change the loss every step)" if config.tile_size else
               "jitter (the loss changes every step)" if config.jitter else
               "precision float16 (L-BFGS's line search has no loss scaling)" if config.precision == "float16" else
               "precision bfloat16 (L-BFGS's line search stalls on its rounded losses)"
               if config.precision == "bfloat16" and not config.float32_finish else
               "param fourier (L-BFGS's first step in a spectrum is not tuned)" if config.param == "fourier" else
               " and ".join(config.sampled_losses()) + " (positions drawn anew each step)"
               if config.sampled_losses() else
               "normalize_gradients (its steps are not the loss's gradient, which L-BFGS's line search needs)"
               if config.normalize_gradients else
               f"{', '.join(adam_set)} given (Adam's own settings)" if adam_set else None)
    if because and config.float32_finish:
        raise NstkitError(f"float32_finish finishes an L-BFGS run, and optimizer auto takes adam for {because}: "
                          "drop float32_finish, or what asks for adam")
    if because:
        return config.replace(optimizer="adam"), f"auto: adam, for {because}"
    chosen, coarse = auto_coarse_level(config.replace(optimizer="lbfgs"), shape) if shape else (
        config.replace(optimizer="lbfgs"), None)
    return chosen, ("auto: lbfgs, for one whole image with the same loss every step (fewer evaluations than Adam "
                    "takes steps, each as cheap)" + (f", with {coarse}" if coarse else ""))


def auto_coarse_level(config: "StyleConfig", shape: tuple[int, int]) -> tuple["StyleConfig", str | None]:
    """Where "auto" chose L-BFGS (``config`` as `resolve_optimizer` returned it) for an image of ``shape`` with a
    long side of `AUTO_COARSE_MIN_SIDE` px or more, and no coarse level was asked for: one coarse level at half
    the size with `AUTO_COARSE_STEPS` evaluations (half of ``steps`` if that is fewer, as ``coarse_steps``
    defaults to, so a short preview stays short), and why; else ``config`` as it is, with None.

    Measured (chelsea x mosaic, random weights, 2-core AMD EPYC, to the seed loop's 500-step loss): at 512 px
    one level of 40 evaluations took L-BFGS from 14.5x to 18.2x the seed's loop (80 evaluations: 18.2x, two
    levels: slower); at 256 px the same level was slower (20.3x against 24.3x: each stage's compile costs
    about what the level saves), so smaller images start at full size. An optimizer given (even lbfgs) runs
    the schedule given.
    """
    if config.optimizer != "lbfgs" or config.coarse_levels or config.coarse_steps is not None \
            or config.coarse_factor != OPTIONS["coarse_factor"][0].default or max(shape) < AUTO_COARSE_MIN_SIDE:
        return config, None
    steps = min(AUTO_COARSE_STEPS, max(1, int(config.steps) // 2))  # a short run: half its steps, as coarse_steps
    return (config.replace(coarse_levels=1, coarse_steps=steps),
            f"one coarse level at half the size ({steps} evaluations) for a long side of "
            f"{AUTO_COARSE_MIN_SIDE} px or more")
