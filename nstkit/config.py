"""The run configuration: one dataclass, one source of defaults.

The Python API, the CLI, the widgets and the JSON run record all read and
write `StyleConfig`. Its defaults are the seed's settings (original-settings.md):
Adam(lr=20, beta_1=0.99, epsilon=0.1) in caffe-BGR pixel space, 512 px on
the long side, content weight 1e2, style weight 1e7, 1000 steps, the
``robust`` layer set.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import NstkitError
from .folding import PRECISIONS
from .layers import BACKBONES, get_preset, parse_layers

DEFAULT_CONTENT_WEIGHT = 1e2
DEFAULT_STYLE_WEIGHT = 1e7
INIT_CHOICES = ("content", "noise")  # or a path to an image
SWAG_VARIANTS = ("none", "softmax", "channel_softmax", "scale")
PARAMETERIZATIONS = ("pixel", "fourier")
COLOR_MODES = ("none", "luminance", "match")
# Adam's step in each parameterisation's own units: caffe pixels (the seed's 20), or Fourier coefficients
# scaled as in lucid (Mordvintsev et al. 2018 used 0.05).
DEFAULT_LEARNING_RATE = {"pixel": 20.0, "fourier": 0.05}


@dataclass
class StyleConfig:
    """Everything that decides a run's output, and nothing that does not.

    ``style_layers`` / ``content_layers`` override the preset's layers; the
    loss weights left as ``None`` come from the preset, else from the seed's
    defaults. `resolved()` fills them in, and the run record stores that form,
    so a record can be fed back to reproduce the run.
    """

    preset: str | None = None  # "robust" for ResNet-50, "vgg19" for VGG19
    style_layers: dict[str, float] | None = None
    content_layers: dict[str, float] | None = None
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float = 0.0
    learning_rate: float | None = None
    beta_1: float = 0.99
    beta_2: float = 0.999
    epsilon: float = 0.1
    steps: int = 1000
    max_dim: int = 512
    init: str = "content"
    seed: int = 0
    weights: str = "imagenet"
    backbone: str | None = None  # "resnet50" unless the preset says otherwise
    # Beyond the seed (issue #4): activation smoothing, image parameterisation, loss normalisation, colour.
    swag: str | None = None
    swag_temperature: float = 1.0
    swag_alpha: float = 1.0
    swag_layers: list[str] | None = None
    param: str = "pixel"
    jitter: int = 0
    normalize_style_layers: bool = False
    preserve_color: str = "none"
    coarse_levels: int = 0
    style_blend: list[float] | None = None
    # Speed (issue #5): the network's compute precision (the image and the losses stay float32), and XLA.
    precision: str = "float32"
    jit_compile: bool | None = None  # None: the device's measured default (off on CPUs, on on GPUs)
    # Huge images (issue "Huge images", nstkit/tiling.py): tiles of this many px, None = one pass.
    tile_size: int | None = None
    tile_overlap: int = 64  # context px each tile's window reaches past the tile on every side
    tile_start_dim: int = 1024  # one-pass start at this long side, then tiles at full size; 0 = no start
    tile_start_steps: int = 200

    def replace(self, **changes: Any) -> "StyleConfig":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise NstkitError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                              f"valid options are {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def resolved(self) -> "StyleConfig":
        """Validate, and fill layers and weights from the preset and the defaults."""
        if self.backbone is not None and self.backbone not in BACKBONES:
            raise NstkitError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        preset = get_preset(self.preset or ("vgg19" if self.backbone == "vgg19" else "robust"))
        backbone = self.backbone or preset.backbone
        if backbone != preset.backbone:
            raise NstkitError(f"preset '{preset.name}' is for {preset.backbone}, not {backbone}: "
                              f"use --preset {'vgg19' if backbone == 'vgg19' else 'robust'} or give the layers")
        style = (parse_layers(self.style_layers, "style layers", backbone) if self.style_layers
                 else dict(preset.style_layers))
        content = (parse_layers(self.content_layers, "content layers", backbone)
                   if self.content_layers else dict(preset.content_layers))
        content_weight = _first(self.content_weight, preset.content_weight, DEFAULT_CONTENT_WEIGHT)
        style_weight = _first(self.style_weight, preset.style_weight, DEFAULT_STYLE_WEIGHT)
        swag = _first(self.swag, preset.swag, "none")
        learning_rate = _first(self.learning_rate, DEFAULT_LEARNING_RATE.get(self.param, 20.0))
        swag_layers = self.swag_layers
        if swag != "none" and swag_layers is None:
            from .swag import default_swag_layers

            swag_layers = default_swag_layers(dict.fromkeys([*style, *content]), backbone)
        resolved = dataclasses.replace(self, preset=preset.name, backbone=backbone,
                                       style_layers=style, content_layers=content,
                                       content_weight=content_weight, style_weight=style_weight, swag=swag,
                                       learning_rate=learning_rate,
                                       swag_layers=list(parse_layers(swag_layers, "swag layers", backbone)) if swag_layers
                                       else [])
        resolved.validate()
        return resolved

    def validate(self) -> None:
        for name in ("content_weight", "style_weight", "tv_weight"):
            _check_number(name, getattr(self, name), allow_zero=True)
        if self.content_weight == 0 and self.style_weight == 0:
            raise NstkitError("content_weight and style_weight are both 0: nothing to optimise; "
                              "give at least one a positive value")
        for name in ("learning_rate", "epsilon"):
            _check_number(name, getattr(self, name), allow_zero=False)
        for name in ("beta_1", "beta_2"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise NstkitError(f"{name} must be in [0, 1), got {value!r}")
        for name, low in (("steps", 1), ("max_dim", 32), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise NstkitError(f"{name} must be a whole number >= {low}, got {value!r}")
        for name, value, choices in (("swag", self.swag, SWAG_VARIANTS), ("param", self.param, PARAMETERIZATIONS),
                                     ("preserve_color", self.preserve_color, COLOR_MODES),
                                     ("precision", self.precision, PRECISIONS)):
            if value not in choices:
                raise NstkitError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        for name in ("swag_temperature", "swag_alpha"):
            _check_number(name, getattr(self, name), allow_zero=False)
        for name in ("jitter", "coarse_levels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise NstkitError(f"{name} must be a whole number >= 0, got {value!r}")
        if self.jit_compile not in (None, True, False):
            raise NstkitError(f"jit_compile must be true, false or null (the device's default), got {self.jit_compile!r}")
        for name, low in (("tile_overlap", 0), ("tile_start_steps", 1), ("tile_start_dim", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise NstkitError(f"{name} must be a whole number >= {low}, got {value!r}")
        if 0 < self.tile_start_dim < 32:
            raise NstkitError(f"tile_start_dim must be 0 (no one-pass start) or >= 32 px, got {self.tile_start_dim}")
        if self.tile_size is not None:
            if isinstance(self.tile_size, bool) or not isinstance(self.tile_size, int) or self.tile_size < 32:
                raise NstkitError(f"tile_size must be a whole number of px >= 32 (ResNet-50's smallest input), "
                                  f"or none for one pass; got {self.tile_size!r}")
            unsupported = [f"{name}={value!r}" for name, value, ok in (
                ("param", self.param, self.param == "pixel"), ("swag", self.swag, self.swag in (None, "none")),
                ("jitter", self.jitter, self.jitter == 0), ("precision", self.precision, self.precision != "float16"))
                if not ok]
            if unsupported:
                raise NstkitError(f"tiled runs (tile_size) support param pixel, no swag, no jitter (the moving tiles "
                                  f"already shift each step) and precision float32 or bfloat16; got "
                                  f"{', '.join(unsupported)}: change it or drop tile_size")
        for weight in self.style_blend or ():
            _check_number("style_blend", weight, allow_zero=False)
        if not self.style_layers and self.style_weight:
            raise NstkitError("no style layers selected; choose a preset or pass style layers")
        if not self.content_layers and self.content_weight:
            raise NstkitError("no content layers selected; choose a preset or pass content layers")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StyleConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _first(*values):
    return next(v for v in values if v is not None)


def _check_number(name: str, value: Any, *, allow_zero: bool) -> None:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value)
    if bad or value < 0 or (value == 0 and not allow_zero):
        need = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise NstkitError(f"{name} must be {need}, got {value!r}")
