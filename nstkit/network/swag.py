"""SWAG: Smoothing With Activations on the Gram (Wang, Li & Vasconcelos, "Rethinking and Improving the
Robustness of Image Style Transfer", CVPR 2021; official code peiwang062/swag, resnet_swag.py).

Residual connections make deep ResNet activations peaky: a few large entries
dominate the Gram matrix and the style loss ignores the rest. Passing each
feature map through a smoothing function before the losses evens them out.

The paper and its code disagree, and nstkit used a third form, so each variant
is kept under its own name with its source (`layers.SWAG_VARIANTS`). All act per layer on
``(B, H, W, C)`` activations, before the Gram and the content loss alike.
"""

from __future__ import annotations

from .quiet import import_tensorflow_quietly

tf, _ = import_tensorflow_quietly()  # TF's C++ start-up lines kept off the user's stderr

from ..core.presets import SWAG_RENAMED, default_swag_layers  # noqa: F401  (default_swag_layers: where the layers are chosen)


def softmax_all(features: tf.Tensor, temperature: float = 1.0, *, unit_mean: bool = False,
                relative: bool = False) -> tf.Tensor:
    """Softmax over all C·H·W entries (Eq. 11 with the defaults). ``unit_mean`` multiplies by C·H·W.

    The exact softmax is what the paper wrote; in float32 it is fine: its
    entries (~1e-6) and Gram entries (~1e-12) are far above float32's
    smallest normal number (1e-38), and the paper-sized loss weights carry
    the magnitudes back (`layers.SWAG_RESCALE`).

    ``relative`` divides the map by its standard deviation first, so the
    temperature is in units of the layer's own spread, and ``unit_mean``
    scales the result to mean 1: nstkit's earlier form (``softmax_relative``).
    With raw activations and a fixed T below 1 the softmax saturated into a
    one-hot map within a few steps here, because activation scales differ
    between layers and between random and ImageNet weights.
    """
    flat = tf.reshape(tf.cast(features, tf.float32), [tf.shape(features)[0], -1])
    flat = flat / (tf.math.reduce_std(flat, axis=-1, keepdims=True) + 1e-12) if relative else flat
    smoothed = tf.nn.softmax(flat / temperature, axis=-1)
    if unit_mean:
        smoothed = smoothed * tf.cast(tf.shape(flat)[1], tf.float32)
    return tf.reshape(smoothed, tf.shape(features))


def softmax_channels(features: tf.Tensor, temperature: float = 1.0, *, unit_mean: bool = False,
                     relative: bool = False) -> tf.Tensor:
    """Softmax over the channels at each pixel (PyTorch's nn.Softmax2d with the defaults).

    ``unit_mean`` multiplies by C, ``relative`` as in `softmax_all`.
    """
    features = tf.cast(features, tf.float32)
    if relative:
        features = features / (tf.math.reduce_std(features, axis=[1, 2, 3], keepdims=True) + 1e-12)
    smoothed = tf.nn.softmax(features / temperature, axis=-1)
    return smoothed * tf.cast(tf.shape(features)[-1], tf.float32) if unit_mean else smoothed


def scale(features: tf.Tensor, alpha: float = 1.0) -> tf.Tensor:
    return tf.cast(features, tf.float32) * alpha


def smoothing(variant: str, temperature: float = 1.0, alpha: float = 1.0):
    """The per-layer transform for a variant name (see `layers.SWAG_VARIANTS`), or None for "none"."""
    variant = SWAG_RENAMED.get(variant, variant)
    if variant == "softmax":
        return softmax_all
    if variant == "softmax2d":
        return softmax_channels
    if variant == "softmax_relative":
        return lambda features: softmax_all(features, temperature, unit_mean=True, relative=True)
    if variant == "softmax2d_relative":
        return lambda features: softmax_channels(features, temperature, unit_mean=True, relative=True)
    if variant == "scale":
        return lambda features: scale(features, alpha)
    return None
