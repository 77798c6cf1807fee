"""SWAG: Smoothing With Activations on the Gram (Wang, Li & Vasconcelos, "Rethinking and Improving the
Robustness of Image Style Transfer", CVPR 2021; official code peiwang062/swag, resnet_swag.py).

Residual connections make deep ResNet activations peaky: a few large entries
dominate the Gram matrix and the style loss ignores the rest. Passing each
feature map through a smoothing function before the losses evens them out;
the paper found this fixes stylization for pretrained and random weights.

Variants, applied per layer to ``(B, H, W, C)`` activations, with temperature T in units of each
map's standard deviation and the result scaled to mean 1 (see `softmax_all` for why):

- ``softmax``: softmax over all C·H·W entries of the map;
- ``channel_softmax``: softmax over the channels at each pixel;
- ``scale``: plain multiplication by α (the paper's control).
"""

from __future__ import annotations

from .quiet import import_tensorflow_quietly

tf, _ = import_tensorflow_quietly()  # TF's C++ start-up lines kept off the user's stderr

from .layers import default_swag_layers  # noqa: F401  (where the paper's layers are chosen)



def softmax_all(features: tf.Tensor, temperature: float = 1.0, *, unit_mean: bool = False,
                relative: bool = False) -> tf.Tensor:
    """Softmax over all C·H·W entries. ``unit_mean`` multiplies by C·H·W so the entries average 1.

    A plain softmax of a 512×32×32 map has entries near 2e-6; its Gram entries
    (~1e-12) and their squared differences underflow float32's useful range,
    so the layer's gradient is noise. The constant factor changes nothing but
    the scale, and keeps the loss well conditioned.

    ``relative`` divides the map by its standard deviation first, so the
    temperature is in units of the layer's own spread. With raw activations a
    fixed T saturated the softmax into a one-hot map within a few steps here
    (the style loss then froze), because activation scales differ wildly
    between layers and between random and ImageNet weights. This is our
    deviation from the paper, which tuned T on pretrained activations.
    """
    flat = tf.reshape(tf.cast(features, tf.float32), [tf.shape(features)[0], -1])
    flat = flat / (tf.math.reduce_std(flat, axis=-1, keepdims=True) + 1e-12) if relative else flat
    smoothed = tf.nn.softmax(flat / temperature, axis=-1)
    if unit_mean:
        smoothed = smoothed * tf.cast(tf.shape(flat)[1], tf.float32)
    return tf.reshape(smoothed, tf.shape(features))


def softmax_channels(features: tf.Tensor, temperature: float = 1.0, *, unit_mean: bool = False,
                     relative: bool = False) -> tf.Tensor:
    """Softmax over the channels at each pixel; ``unit_mean`` multiplies by C, ``relative`` as in `softmax_all`."""
    features = tf.cast(features, tf.float32)
    if relative:
        features = features / (tf.math.reduce_std(features, axis=[1, 2, 3], keepdims=True) + 1e-12)
    smoothed = tf.nn.softmax(features / temperature, axis=-1)
    return smoothed * tf.cast(tf.shape(features)[-1], tf.float32) if unit_mean else smoothed


def scale(features: tf.Tensor, alpha: float = 1.0) -> tf.Tensor:
    return tf.cast(features, tf.float32) * alpha


def smoothing(variant: str, temperature: float = 1.0, alpha: float = 1.0):
    """The per-layer transform for a variant name, or None for "none"."""
    if variant == "softmax":
        return lambda features: softmax_all(features, temperature, unit_mean=True, relative=True)
    if variant == "channel_softmax":
        return lambda features: softmax_channels(features, temperature, unit_mean=True, relative=True)
    if variant == "scale":
        return lambda features: scale(features, alpha)
    return None
