"""SWAG: Smoothing With Activations on the Gram (Wang, Li & Vasconcelos, "Rethinking and Improving the
Robustness of Image Style Transfer", CVPR 2021; official code peiwang062/swag, resnet_swag.py).

Residual connections make deep ResNet activations peaky: a few large entries
dominate the Gram matrix and the style loss ignores the rest. Passing each
feature map through a smoothing function before the losses evens them out;
the paper found this fixes stylization for pretrained and random weights.

Variants, applied per layer to ``(B, H, W, C)`` activations:

- ``softmax``: softmax over all C·H·W entries of the map;
- ``channel_softmax``: softmax over the channels at each pixel, temperature T;
- ``scale``: plain multiplication by α (the paper's control).
"""

from __future__ import annotations

from typing import Iterable

import tensorflow as tf

from .layers import CATALOGS

SWAG_FIRST_STAGE = 3  # the paper smooths conv3_x .. conv5_x


def softmax_all(features: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    flat = tf.reshape(tf.cast(features, tf.float32), [tf.shape(features)[0], -1])
    return tf.reshape(tf.nn.softmax(flat / temperature, axis=-1), tf.shape(features))


def softmax_channels(features: tf.Tensor, temperature: float = 1.0) -> tf.Tensor:
    return tf.nn.softmax(tf.cast(features, tf.float32) / temperature, axis=-1)


def scale(features: tf.Tensor, alpha: float = 1.0) -> tf.Tensor:
    return tf.cast(features, tf.float32) * alpha


def smoothing(variant: str, temperature: float = 1.0, alpha: float = 1.0):
    """The per-layer transform for a variant name, or None for "none"."""
    if variant == "softmax":
        return lambda features: softmax_all(features, temperature)
    if variant == "channel_softmax":
        return lambda features: softmax_channels(features, temperature)
    if variant == "scale":
        return lambda features: scale(features, alpha)
    return None


def default_swag_layers(layer_names: Iterable[str], backbone: str = "resnet50") -> list[str]:
    """The layers the paper smooths: those in stages (VGG: blocks) 3 to 5."""
    return [name for name in layer_names if CATALOGS[backbone][name].stage >= SWAG_FIRST_STAGE]
