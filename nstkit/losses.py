"""Loss terms, each a plain function of tensors (Gatys et al. 2016, as the seed wrote them).

All functions take batched activations ``(B, H, W, C)`` and return one
value per batch member, shape ``(B,)``, in float32 whatever the activations'
dtype, so mixed precision never reduces a loss in low precision. Members never mix:
a batch of B images optimises B independent problems (`optimize.stylize_batch`).
"""

from __future__ import annotations

from typing import Mapping

from .quiet import import_tensorflow_quietly

tf, _ = import_tensorflow_quietly()  # TF's C++ start-up lines kept off the user's stderr


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Channel co-activation statistics ``FᵀF / (H·W)``, shape (B, C, C).

    Dividing by the number of positions (not by C·H·W) is the seed's choice;
    it makes the Gram independent of image size, so a style image of any size
    gives comparable targets.

    bfloat16 activations are multiplied in bfloat16: the matmul accumulates
    its products in float32 (oneDNN on CPUs, cuBLAS on GPUs; a test checks
    it) and rounds only the C×C result (≤ 2⁻⁸ relative), and the Gram
    products, a fifth of a step's FLOPs, run 2-3× faster than in float32.
    float16 would overflow (sums of squares pass 65504), so it, like
    float32, computes in float32. The result is float32 either way: the loss
    reduces in float32.
    """
    if features.dtype != tf.bfloat16:
        features = tf.cast(features, tf.float32)
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], shape[1] * shape[2], shape[3]])
    return tf.cast(_self_products(flat), tf.float32) / tf.cast(shape[1] * shape[2], tf.float32)


@tf.custom_gradient
def _self_products(flat: tf.Tensor):
    """``FᵀF`` for F of shape (B, N, C), with a one-matmul gradient.

    The gradient of FᵀF is ``F (dG + dGᵀ)``: one (N×C)(C×C) product where
    autodiff of the einsum does two. The Gram's backward pass is two thirds
    of its cost, so this saves a third of it.
    """
    def gradient(upstream):
        return tf.matmul(flat, upstream + tf.transpose(upstream, [0, 2, 1]))

    return tf.matmul(flat, flat, transpose_a=True), gradient


def content_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of activations: keeps the content image's layout."""
    return _mean_per_member(tf.square(tf.cast(features, tf.float32) - tf.cast(target, tf.float32)))


def style_loss(grams: Mapping[str, tf.Tensor], target_grams: Mapping[str, tf.Tensor],
               layer_weights: Mapping[str, float], layer_scales: Mapping[str, tf.Tensor] | None = None) -> tf.Tensor:
    """Weighted mean over layers of the mean squared Gram difference.

    Weights are normalised to sum to 1, so a layer the seed listed twice
    (weight 2 of 15) counts exactly as in the seed's ``1/len(style_layers)``.
    ``layer_scales`` divides each layer's term (per-layer normalisation, He et al. 2016).
    A weight may be a ``(B,)`` tensor: one weight per batch member.
    """
    total_weight = sum(layer_weights.values())
    return tf.add_n([
        (weight / total_weight) * _mean_per_member(tf.square(grams[name] - target_grams[name]))
        / (layer_scales[name] if layer_scales else 1.0)
        for name, weight in layer_weights.items()
    ])


def linearised_style_loss(grams: Mapping[str, tf.Tensor], mismatch: Mapping[str, tf.Tensor],
                          layer_weights: Mapping[str, float],
                          layer_scales: Mapping[str, tf.Tensor] | None = None) -> tf.Tensor:
    """A window's share of the whole image's style loss: its gradient, not its value, is what counts.

    The style loss is ``mean((G - T)²)`` of the whole image's Gram ``G``, so
    its gradient is ``mean(2 (G - T) ⊙ dG/dx)``. With the whole image's
    ``mismatch = G - T`` held fixed, the gradient of ``mean(2 · mismatch ⊙ G_window)``
    is that gradient as it flows through one window's Gram. Layers are
    weighted and scaled as in `style_loss`.
    """
    total_weight = sum(layer_weights.values())
    return tf.add_n([
        (weight / total_weight) * _mean_per_member(2.0 * tf.stop_gradient(mismatch[name]) * grams[name])
        / (layer_scales[name] if layer_scales else 1.0)
        for name, weight in layer_weights.items()
    ])


def style_layer_scales(target_grams: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Each style layer's target scale, the mean squared Gram entry, per batch member (``layer_scales`` above).

    He, Wang & Hopcroft 2016: dividing each layer's loss by it keeps any one layer from dominating.
    """
    return {name: tf.reduce_mean(tf.square(gram), axis=[1, 2]) + 1e-12 for name, gram in target_grams.items()}


def total_variation_loss(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between neighbouring pixels: discourages high-frequency noise."""
    image = tf.cast(image, tf.float32)
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return _mean_per_member(tf.square(dy)) + _mean_per_member(tf.square(dx))


def mean_over_layers(per_layer: Mapping[str, tf.Tensor], layer_weights: Mapping[str, float]) -> tf.Tensor:
    """Weighted mean of per-layer scalars (content loss over several content layers)."""
    total_weight = sum(layer_weights.values())
    return tf.add_n([(w / total_weight) * per_layer[name] for name, w in layer_weights.items()])


def _mean_per_member(values: tf.Tensor) -> tf.Tensor:
    """Mean over every axis but the batch axis: (B, ...) -> (B,)."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)
