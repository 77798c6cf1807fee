"""The backbone as an inference graph: BatchNorm folded into the convs, in the chosen precision.

NST only ever runs the network in inference mode, where a BatchNorm layer is a
fixed per-channel affine map, ``y = x * scale + shift``. Folding it into the
conv before it (kernel × scale, bias × scale + shift) removes 53 full-size
elementwise passes from every forward and backward step of ResNet-50, and
lets oneDNN run conv + bias + ReLU as one fused kernel.

It also explains why bf16 helps ResNet-50 much less than VGG19 out of the
box: Keras' BatchNormalization casts bf16 inputs up to float32 and back
(for training stability), so an unfolded mixed-precision ResNet spends its
time converting between dtypes around every conv. Folded, the whole trunk
stays in bf16 (measured in BENCHMARKS.md).

A conv whose own output is a requested feature (the seed's ``*_conv``
layers are pre-BN activations) keeps its weights; its BatchNorm becomes a
`ChannelAffine` layer so the tap still sees the pre-BN values exactly.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

# Keras dtype policies: variables stay float32, compute runs in the low precision.
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def dtype_policy(precision: str) -> str:
    return _POLICIES[precision]


def bn_as_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) with ``bn(x) == x * scale + shift`` in inference mode."""
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    mean, variance = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    scale = (gamma / np.sqrt(variance + bn.epsilon)).astype(np.float32)
    return scale, (beta - mean * scale).astype(np.float32)


def _layer_classes():
    import keras

    class PassThrough(keras.layers.Layer):
        """Stands where a folded BatchNorm was, so layer names (and taps on ``*_bn``) keep working."""

        def call(self, inputs, training=None, mask=None):
            return inputs

    class ChannelAffine(keras.layers.Layer):
        """An inference-mode BatchNorm that computes in the layer's own dtype (no float32 round trip)."""

        def __init__(self, scale=None, shift=None, **kwargs):
            super().__init__(**kwargs)
            self._initial = (scale, shift)

        def build(self, input_shape):
            channels = input_shape[-1]
            self.scale = self.add_weight(shape=(channels,), initializer="ones", trainable=False, name="scale")
            self.shift = self.add_weight(shape=(channels,), initializer="zeros", trainable=False, name="shift")
            if self._initial[0] is not None:
                self.scale.assign(self._initial[0])
                self.shift.assign(self._initial[1])

        def call(self, inputs, training=None, mask=None):
            return inputs * self.scale + self.shift

    return PassThrough, ChannelAffine


def fold_batchnorm(model, keep: Iterable[str] = (), precision: str = "float32", pooling: str = "max"):
    """A copy of ``model`` with each ``X_conv`` -> ``X_bn`` pair folded, computing in ``precision``.

    ``pooling="avg"`` makes each max pool an average pool of the same window,
    stride and padding (Gatys et al. 2016; ResNet-50 has one, after conv1).

    ``keep``: layer names whose exact outputs must survive; a kept conv is not
    folded (its BN becomes a `ChannelAffine`). Every layer keeps its name, so
    `model.get_layer(name)` means the same activation as in the original.
    """
    import keras

    PassThrough, ChannelAffine = _layer_classes()
    policy = dtype_policy(precision)
    names = {layer.name for layer in model.layers}
    keep = set(keep)

    def folded_bn_of(conv_name: str):
        if not conv_name.endswith("_conv") or conv_name in keep:
            return None
        bn_name = conv_name[: -len("_conv")] + "_bn"
        return model.get_layer(bn_name) if bn_name in names else None

    folded_bns = {layer.name for layer in model.layers
                  if isinstance(layer, keras.layers.Conv2D) and folded_bn_of(layer.name) is not None}
    folded_bns = {name[: -len("_conv")] + "_bn" for name in folded_bns}

    def clone(layer):
        config = {**layer.get_config(), "dtype": policy}
        if pooling == "avg" and isinstance(layer, keras.layers.MaxPooling2D):
            return keras.layers.AveragePooling2D(pool_size=config["pool_size"], strides=config["strides"],
                                                 padding=config["padding"], name=layer.name, dtype=policy)
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.name in folded_bns:
                return PassThrough(name=layer.name, dtype=policy)
            scale, shift = bn_as_affine(layer)
            return ChannelAffine(scale, shift, name=layer.name, dtype=policy)
        bn = folded_bn_of(layer.name) if isinstance(layer, keras.layers.Conv2D) else None
        weights = layer.get_weights()
        if bn is not None:
            scale, shift = bn_as_affine(bn)
            kernel = weights[0] * scale  # scale each output channel
            bias = (weights[1] if layer.use_bias else 0.0) * scale + shift
            config["use_bias"] = True
            weights = [kernel.astype(np.float32), np.asarray(bias, np.float32)]
        copy = layer.__class__.from_config(config)
        if weights:
            copy.build(layer.input.shape)
            copy.set_weights(weights)
        return copy

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.trainable = False
    return copy
