"""The layers of ResNet-50 and VGG19 by name: stage, kind, channels, stride, depth.

The catalog is written out from the architecture (He et al. 2016, Keras
`ResNet50` v1 naming) instead of being read off a built model, so that
`nstkit layers`, preset resolution and input validation answer in
milliseconds without importing TensorFlow. `tests/core/test_catalog.py` checks it
against the real Keras model.

A layer selection is an ordered ``{name: weight}`` dict. The seed listed some
style layers twice and weighted every entry ``1/len(style_layers)``; counting
a repeated name as weight 2 reproduces that weighting exactly without
computing the same Gram matrix twice.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

from .errors import NstkitError

# Blocks per stage of ResNet-50 and the bottleneck widths (He et al. 2016, table 1).
BLOCKS_PER_STAGE = {2: 3, 3: 4, 4: 6, 5: 3}
BOTTLENECK_CHANNELS = {2: 64, 3: 128, 4: 256, 5: 512}
STAGE_STRIDE = {2: 4, 3: 8, 4: 16, 5: 32}

# The smallest image side nstkit accepts: ResNet-50 downsamples 32x, so a
# thinner image leaves stage 5 (and the Gram statistics) without a spatial extent.
MIN_IMAGE_SIDE = 32
MAX_STYLE_SIDE = 8192  # a style scaled past this long side is refused: its activations alone would fill memory


@dataclass(frozen=True)
class LayerInfo:
    """One ResNet-50 layer whose output can be used as a content or style feature."""

    name: str
    stage: int
    block: int  # 0 for the stem (conv1_*, pool1_pool)
    kind: str  # conv | bn | relu | add | out | pool
    channels: int
    stride: int  # input pixels per feature-map pixel
    depth: int  # position in forward order; larger means computed later


def _build_catalog() -> dict[str, LayerInfo]:
    rows: list[tuple[str, int, int, str, int, int]] = [
        ("conv1_conv", 1, 0, "conv", 64, 2),
        ("conv1_bn", 1, 0, "bn", 64, 2),
        ("conv1_relu", 1, 0, "relu", 64, 2),
        ("pool1_pool", 1, 0, "pool", 64, 4),
    ]
    for stage, blocks in BLOCKS_PER_STAGE.items():
        width = BOTTLENECK_CHANNELS[stage]
        stride = STAGE_STRIDE[stage]
        for block in range(1, blocks + 1):
            prefix = f"conv{stage}_block{block}"
            if block == 1:  # projection shortcut
                rows += [(f"{prefix}_0_conv", stage, block, "conv", 4 * width, stride),
                         (f"{prefix}_0_bn", stage, block, "bn", 4 * width, stride)]
            for k, channels in ((1, width), (2, width), (3, 4 * width)):
                rows += [(f"{prefix}_{k}_conv", stage, block, "conv", channels, stride),
                         (f"{prefix}_{k}_bn", stage, block, "bn", channels, stride)]
                if k < 3:
                    rows.append((f"{prefix}_{k}_relu", stage, block, "relu", channels, stride))
            rows += [(f"{prefix}_add", stage, block, "add", 4 * width, stride),
                     (f"{prefix}_out", stage, block, "out", 4 * width, stride)]
    return {name: LayerInfo(name, stage, block, kind, channels, stride, depth)
            for depth, (name, stage, block, kind, channels, stride) in enumerate(rows)}


def _build_vgg19_catalog() -> dict[str, LayerInfo]:
    """VGG19 (Simonyan & Zisserman 2015): 5 blocks of 3x3 convs (each with its ReLU inside) and a pool."""
    rows = []
    for block, (convs, channels) in enumerate(((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)), start=1):
        rows += [(f"block{block}_conv{k}", block, block, "conv", channels, 2 ** (block - 1))
                 for k in range(1, convs + 1)]
        rows.append((f"block{block}_pool", block, block, "pool", channels, 2 ** block))
    return {name: LayerInfo(name, stage, block, kind, channels, stride, depth)
            for depth, (name, stage, block, kind, channels, stride) in enumerate(rows)}


CATALOG: dict[str, LayerInfo] = _build_catalog()
VGG19_CATALOG: dict[str, LayerInfo] = _build_vgg19_catalog()
CATALOGS = {"resnet50": CATALOG, "vgg19": VGG19_CATALOG}
BACKBONES = tuple(CATALOGS)
LAYER_KINDS = ("conv", "bn", "relu", "add", "out", "pool")

LayerSpec = Union[str, Iterable[str], Mapping[str, float], None]


def check_layer_name(name: str, backbone: str = "resnet50") -> LayerInfo:
    """Return the catalog entry, or fail with the closest real names."""
    catalog = CATALOGS[backbone]
    if name in catalog:
        return catalog[name]
    close = difflib.get_close_matches(name, list(catalog), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"run `nstkit layers --backbone {backbone}` to list them."
    label = "ResNet-50" if backbone == "resnet50" else "VGG19"
    raise NstkitError(f"unknown {label} layer '{name}': {hint}")


def parse_layers(spec: LayerSpec, what: str = "layers", backbone: str = "resnet50") -> dict[str, float]:
    """Turn a user's layer selection into an ordered ``{name: weight}`` dict.

    Accepts ``"a,b:2,a"`` (a CLI string; ``:w`` gives a weight), a list
    (a repeated name adds its weight again, as in the seed's lists) or a dict.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        entries = [(str(k), v) for k, v in spec.items()]
    else:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        entries = []
        for item in items:
            item = str(item).strip()
            if not item:
                continue
            name, _, weight = item.partition(":")
            entries.append((name.strip(), weight.strip() or 1.0))
    layers: dict[str, float] = {}
    for name, weight in entries:
        check_layer_name(name, backbone)
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise NstkitError(f"{what}: weight '{weight}' of layer {name} is not a number; "
                              f"write it as {name}:2") from None
        if not weight > 0 or weight == float("inf"):
            raise NstkitError(f"{what}: layer {name} has weight {weight}; "
                              "layer weights must be positive and finite")
        layers[name] = layers.get(name, 0.0) + weight
    return layers


def layers_to_spec(layers: Mapping[str, float]) -> str:
    """The inverse of `parse_layers` for a dict: ``"a,b:2"``."""
    return ",".join(name if weight == 1 else f"{name}:{weight:g}" for name, weight in layers.items())


def deepest(layer_names: Iterable[str], backbone: str = "resnet50") -> LayerInfo:
    """The layer computed last: the feature extractor stops there."""
    return max((CATALOGS[backbone][n] for n in layer_names), key=lambda info: info.depth)
