"""The seed's layer presets and SWAG's objective: named layer selections with the loss weights they ran with.

A preset is data, not code: `StyleConfig` resolves one into layers and weights, and every field the user
gives wins over it. SWAG's variants and paper weights live here because the `swag` preset is made of them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable

from .catalog import CATALOGS, parse_layers
from .errors import NstkitError

# Each variant and where it comes from, in one line (the CLI's --help and the README show these).
SWAG_VARIANTS: dict[str, str] = {
    "none": "no smoothing",
    "softmax": "the paper's Eq. 11: a softmax over all C*H*W entries of the map, no temperature",
    "softmax2d": "the code's first upload (peiwang062/swag 144b487): nn.Softmax2d, over the channels at each "
                 "pixel, T=1",
    "softmax_relative": "nstkit's own, its 'softmax' until record version 3: over C*H*W of the map divided by "
                        "its standard deviation, temperature T, times C*H*W",
    "softmax2d_relative": "nstkit's own, 'channel_softmax' until record version 3: over the channels of the map "
                          "divided by its standard deviation, temperature T, times C",
    "scale": "the code today (peiwang062/swag 2eec0cc): alpha*x with alpha 0.001 there; a control, not smoothing",
}
# The variants with a temperature: the paper's two have none (T=1).
SWAG_TEMPERED = ("softmax_relative", "softmax2d_relative")
# Names records wrote before record version 3 (the meaning is unchanged).
SWAG_RENAMED = {"channel_softmax": "softmax2d_relative"}

# The SWAG code smooths PyTorch's layer3 and layer4 (the author, peiwang062/swag issue #8: "conv3_0-5 and
# conv4_0-2"), which Keras names conv4_block1..6 and conv5_block1..3: stages 4 and 5 here.
SWAG_FIRST_STAGE = 4


def default_swag_layers(layer_names: Iterable[str], backbone: str = "resnet50") -> list[str]:
    """The layers SWAG smooths by default (Wang et al. 2021): those of ``layer_names`` in stages 4 and 5."""
    return [name for name in layer_names if CATALOGS[backbone][name].stage >= SWAG_FIRST_STAGE]


# The SWAG paper's objective (peiwang062/swag, resnet_swag.py): content weight 1 on the mean squared feature
# difference, style weight 1e17 on the sum over layers of the mean squared difference of Grams FᵀF/(C·H·W).
SWAG_PAPER_CONTENT_WEIGHT, SWAG_PAPER_STYLE_WEIGHT = 1.0, 1e17
SWAG_STYLE = ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
# nstkit's Gram divides by H·W, not C·H·W, so layer l's style loss is C_l² times the paper's: weights (64/C_l)²
# give the layers the paper's shares. Both weights are then multiplied by one constant, so the objective is the
# paper's times SWAG_RESCALE: the same minimiser (tests/network/test_swag.py checks the ratio on two images). 1e-7 puts
# the total and its pixel gradient where the robust preset's are (6e9 and ~4e3 per pixel at 256 px, random
# weights), so Adam's lr 20 and ε 0.1 mean what they mean for the seed. The paper's weights themselves leave
# its content term 3e-32 of the total and its two smoothed layers 4e-17 of the style term there (conv1_relu
# 99%): the unsmoothed shallow layers and the content start decide its result (BENCHMARKS.md, "SWAG").
SWAG_RESCALE = 1e-7
SWAG_LAYER_WEIGHTS = {name: (64 / CATALOGS["resnet50"][name].channels) ** 2 for name in SWAG_STYLE}


def swag_paper_weights() -> tuple[float, float]:
    """(content_weight, style_weight) that make nstkit's objective the paper's times `SWAG_RESCALE`.

    nstkit's style term averages its layers, weighted: Σ w_l·L_l / Σ w_l, and L_l = C_l²·(the paper's
    layer loss); with w_l = (64/C_l)² that is 64²/Σw times the paper's sum.
    """
    total = sum(SWAG_LAYER_WEIGHTS.values())
    return (SWAG_RESCALE * SWAG_PAPER_CONTENT_WEIGHT,
            SWAG_RESCALE * SWAG_PAPER_STYLE_WEIGHT * total / 64 ** 2)




@dataclass(frozen=True)
class Preset:
    """A named layer selection, optionally with the loss weights it was run with."""

    name: str
    description: str
    style_layers: dict[str, float]
    content_layers: dict[str, float]
    content_weight: float | None = None
    style_weight: float | None = None
    swag: str | None = None
    learning_rate: float | None = None  # for pixel runs; None: the seed's 20
    epsilon: float | None = None  # Adam's, for pixel runs; None: the seed's 0.1
    backbone: str = "resnet50"
    source: str = field(default="", compare=False)


# The seed's final style list, duplicates included (write-up, "Improvements to model robustness").
SEED_ROBUST_STYLE_LIST = [
    "conv1_relu", "conv2_block1_1_conv",
    "conv2_block2_1_relu", "conv2_block2_1_relu",
    "conv2_block3_3_conv", "conv2_block2_2_relu",
    "conv4_block2_1_conv", "conv2_block2_1_relu",
    "conv2_block2_1_relu", "conv2_block3_3_conv",
    "conv2_block2_2_relu", "conv4_block2_1_relu",
    "conv4_block2_2_conv", "conv4_block2_2_relu",
    "conv4_block2_3_conv",
]

_CONV_STYLE = ["conv2_block2_1_bn", "conv3_block1_3_bn", "conv3_block1_0_conv", "conv4_block4_2_bn"]
_RELU_STYLE = ["conv2_block2_2_relu", "conv3_block4_2_relu", "conv4_block6_1_relu", "conv5_block3_2_relu"]
_ROBUST_CONTENT = ["conv4_block2_2_conv"]

_PRESETS = {
    p.name: p
    for p in [
        Preset(
            "vanilla",
            "the standard recipe the seed started from: one layer per stage, content 1, style 1e6",
            parse_layers(["conv1_relu", "conv2_block1_out", "conv3_block1_out",
                          "conv4_block1_out", "conv5_block1_out"]),
            parse_layers(["conv5_block2_out"]),
            content_weight=1.0,
            style_weight=1e6,
            source="the Kaggle ResNet-50 notebook's weights (original-settings.md); the seed does not "
                   "record its vanilla layers, so these mirror the VGG recipe: the first block of each "
                   "stage for style, a late block for content",
        ),
        Preset(
            "conv",
            "the seed's conv trial: conv/bn layers of block 2, block 3 (x2) and block 4",
            parse_layers(_CONV_STYLE),
            parse_layers(["conv1_conv"]),
            source="original-settings.md, trial 'conv only'",
        ),
        Preset(
            "relu",
            "the seed's ReLU trial: ReLU layers of stages 2, 3, 4 and 5",
            parse_layers(_RELU_STYLE),
            parse_layers(["conv4_block6_1_relu"]),
            source="original-settings.md, trial 'relu only'",
        ),
        Preset(
            "robust",
            "the seed's final conv+relu list: 10 of its 15 entries in stages 1-2, 5 in stage 4's second block "
            "(a layer listed k times weighs k/15)",
            parse_layers(SEED_ROBUST_STYLE_LIST),
            parse_layers(_ROBUST_CONTENT),
            source="write-up, 'Improvements to model robustness'",
        ),
        Preset(
            "swag",
            "Wang et al. 2021 as their code ran it: one output per stage, Eq. 11's softmax on stages 4-5, "
            "the paper's loss weights (rescaled)",
            dict(SWAG_LAYER_WEIGHTS),
            parse_layers(["conv4_block6_out"]),
            content_weight=swag_paper_weights()[0],
            style_weight=swag_paper_weights()[1],
            swag="softmax",
            source="Wang, Li & Vasconcelos, CVPR 2021; layers and weights from peiwang062/swag resnet_swag.py, "
                   "smoothed layers from its issue #8",
        ),
        Preset(
            "vgg19",
            "the VGG19 baseline: the TensorFlow style-transfer tutorial's layers, weights and Adam",
            parse_layers([f"block{b}_conv1" for b in range(1, 6)], backbone="vgg19"),
            parse_layers(["block5_conv2"], backbone="vgg19"),
            content_weight=1e4,
            style_weight=1e-2,
            # The tutorial's Adam(0.02, beta_1 0.99, epsilon 0.1) acts on pixels in [0, 1]; nstkit's on caffe
            # pixels (x 255), where the same steps are lr x 255 and epsilon / 255. Under the seed's lr 20 and
            # epsilon 0.1 these loss weights' gradients sit far under epsilon and the image never moves.
            learning_rate=0.02 * 255,
            epsilon=0.1 / 255,
            backbone="vgg19",
            source="tensorflow.org/tutorials/generative/style_transfer",
        ),
    ]
}


def conv_relu_preset(relu_share: float) -> Preset:
    """Blend the seed's conv and ReLU style sets: ``relu_share`` of the style weight goes to ReLU layers.

    0 is the pure conv set, 1 the pure ReLU set (the write-up's "weighted ratio
    of Conv to ReLu layers"). The content layer stays the seed's final one, so a
    sweep over the share changes only the style side.
    """
    if not 0.0 <= relu_share <= 1.0:
        raise NstkitError(f"conv_relu share {relu_share} is outside [0, 1]; "
                          "write e.g. conv_relu:0.25 for 25% of the style weight on ReLU layers")
    style: dict[str, float] = {}
    for names, share in ((_CONV_STYLE, 1.0 - relu_share), (_RELU_STYLE, relu_share)):
        for name in names:
            if share > 0:
                style[name] = style.get(name, 0.0) + share / len(names)
    return Preset(
        f"conv_relu:{relu_share:g}",
        f"conv and ReLU style layers blended {1 - relu_share:g}:{relu_share:g}",
        style,
        parse_layers(_ROBUST_CONTENT),
        source="write-up, 'Experiments with weighted ratio of Conv to ReLu layers'",
    )


PRESET_NAMES = (*_PRESETS, "conv_relu")


def get_preset(name: str) -> Preset:
    """Resolve ``robust``, ``conv_relu:0.25`` and the like."""
    base, _, arg = name.partition(":")
    if base == "conv_relu":
        try:
            share = float(arg) if arg else 0.5
        except ValueError:
            raise NstkitError(f"preset '{name}': the share after ':' must be a number, "
                              "e.g. conv_relu:0.25") from None
        return conv_relu_preset(share)
    if name in _PRESETS:
        return _PRESETS[name]
    close = difflib.get_close_matches(name, PRESET_NAMES, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise NstkitError(f"unknown preset '{name}': {hint}choose one of {', '.join(PRESET_NAMES)}")


def all_presets() -> list[Preset]:
    return [*_PRESETS.values(), conv_relu_preset(0.5)]
