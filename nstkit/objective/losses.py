"""Loss terms, each a plain function of tensors (Gatys et al. 2016, as the seed wrote them).

All functions take batched activations ``(B, H, W, C)`` and return one
value per batch member, shape ``(B,)``, in float32 whatever the activations'
dtype, so mixed precision never reduces a loss in low precision. Members never mix:
a batch of B images optimises B independent problems (`api.stylize.stylize_batch`).
"""

from __future__ import annotations

from typing import Mapping

from ..network.quiet import import_tensorflow_quietly

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


def gram_loss(gram: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """One layer's Gram loss: the mean squared difference of two Grams (B, C, C), per member (B,).

    Every Gram style loss is this, weighted over layers: `style_loss` (and its tiled form's value), and the
    ``gram`` and ``histogram`` statistics of `style_stats`.
    """
    return _mean_per_member(tf.square(gram - target))


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
        (weight / total_weight) * gram_loss(grams[name], target_grams[name])
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


def moments(features: tf.Tensor, weights: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """The features' mean (B, C) and uncentred second moment ``E[f fᵀ]`` (B, C, C) over positions.

    ``weights`` (B, H, W), if given, weighs each position (a region's mask: its
    statistics over its own pixels, Gatys et al. 2017). Without weights the second moment is the Gram.
    Raw moments mix linearly, so a blend of styles is the blend of their moments.

    Its Gram is `gram_matrix`'s arithmetic in float32 (the same `_self_products`), written here on the one
    reshaped tensor the mean also reads: calling `gram_matrix` instead gives the features' gradient one
    more path, whose sum rounds differently (measured: mean_cov's and wasserstein's runs changed bytes).
    """
    features = tf.cast(features, tf.float32)
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], shape[1] * shape[2], shape[3]])
    if weights is None:
        count = tf.cast(shape[1] * shape[2], tf.float32)
        return tf.reduce_sum(flat, axis=1) / count, _self_products(flat) / count
    w = tf.reshape(tf.cast(weights, tf.float32), [shape[0], -1, 1])
    total = tf.reduce_sum(w, axis=1) + 1e-8  # (B, 1)
    root = tf.sqrt(w)
    return tf.reduce_sum(w * flat, axis=1) / total, _self_products(root * flat) / total[:, :, None]


def covariance(mean: tf.Tensor, second: tf.Tensor) -> tf.Tensor:
    """``E[f fᵀ] - μ μᵀ``, from `moments`."""
    return second - mean[:, :, None] * mean[:, None, :]


def sqrtm_newton_schulz(matrix: tf.Tensor, iterations: int = 20) -> tuple[tf.Tensor, tf.Tensor]:
    """``(A^½, A^-½)`` of symmetric positive semi-definite matrices (B, C, C), by the coupled Newton–Schulz iteration.

    Only matrix products: it runs on any device in any dtype, where an
    eigendecomposition is slow on CPUs and unsupported in XLA on some GPUs.
    A is scaled by its Frobenius norm first (the iteration converges for
    eigenvalues in (0, 1]); eigenvalues far below the largest converge
    slowly, which is why the callers add a small ridge.
    """
    matrix = tf.cast(matrix, tf.float32)
    norm = tf.sqrt(tf.reduce_sum(tf.square(matrix), axis=[1, 2], keepdims=True)) + 1e-12
    identity = tf.eye(tf.shape(matrix)[-1], batch_shape=[tf.shape(matrix)[0]])
    y, z = matrix / norm, identity
    for _ in range(iterations):
        t = 0.5 * (3.0 * identity - tf.matmul(z, y))
        y, z = tf.matmul(y, t), tf.matmul(t, z)
    return y * tf.sqrt(norm), z / tf.sqrt(norm)


@tf.custom_gradient
def trace_sqrt(matrix: tf.Tensor):
    """``tr(A^½)`` per member (B,), with its gradient ``½ A^-½`` from the same iteration.

    Differentiating through the iterations would cost twice their products
    again; the inverse square root the coupled iteration makes anyway is the
    exact gradient of the trace of the square root.
    """
    root, inverse_root = sqrtm_newton_schulz(matrix)

    def gradient(upstream):
        return upstream[:, None, None] * 0.5 * inverse_root

    return tf.linalg.trace(root), gradient


def wasserstein_loss(features, target_mean, target_cov, target_root, weights=None) -> tf.Tensor:
    """The squared 2-Wasserstein distance between Gaussians fitted to the features and to the style's, / C.

    ``‖μ - μₜ‖² + tr Σ + tr Σₜ - 2 tr (Σₜ^½ Σ Σₜ^½)^½`` (crowsonkb/style-transfer's style loss).
    ``target_root`` is Σₜ^½, computed once per stage; ``weights`` (B, H, W) a region's mask.

    With ``M = diag(√p) (F - μ) Σₜ^½`` (p: each position's share), ``Σₜ^½ Σ Σₜ^½ = MᵀM``, whose square
    root has the trace of ``(MMᵀ)^½``: the square root is taken of the smaller of the two, N×N where a deep
    layer has fewer positions N than channels C (1024 channels on 16 positions at 64 px: 4000x fewer
    products). A ridge of 1e-5 of the mean eigenvalue keeps its gradient finite where the matrix is
    singular (random networks have many dead channels).
    """
    mean, second = moments(features, weights)
    cov = covariance(mean, second)
    shape = tf.shape(features)
    flat = tf.reshape(tf.cast(features, tf.float32), [shape[0], shape[1] * shape[2], shape[3]])
    share = (tf.ones_like(flat[:, :, :1]) if weights is None
             else tf.reshape(tf.cast(weights, tf.float32), [shape[0], -1, 1]))
    share = share / (tf.reduce_sum(share, axis=1, keepdims=True) + 1e-8)
    m = tf.matmul((flat - mean[:, None, :]) * tf.sqrt(share), target_root)  # (B, N, C)
    height, width, channels = features.shape[1:4]  # static in a compiled step of one stage
    positions = height * width if height is not None and width is not None else None
    small = (tf.matmul(m, m, transpose_b=True) if positions is not None and positions < channels
             else tf.matmul(m, m, transpose_a=True))
    size = tf.cast(tf.shape(small)[-1], tf.float32)
    ridge = 1e-5 * tf.linalg.trace(small)[:, None, None] / size + 1e-12
    small = 0.5 * (small + tf.transpose(small, [0, 2, 1])) + ridge * tf.eye(tf.shape(small)[-1])
    distance = (tf.reduce_sum(tf.square(mean - target_mean), axis=1) + tf.linalg.trace(cov)
                + tf.linalg.trace(target_cov) - 2.0 * trace_sqrt(small))
    return tf.maximum(distance, 0.0) / tf.cast(shape[3], tf.float32)


def histogram_loss(features: tf.Tensor, target_quantiles: tf.Tensor) -> tf.Tensor:
    """Squared distance of each channel's activations to their histogram-matched selves (Risser et al. 2017).

    Each activation is replaced by the style's value at the same rank (its
    channel's quantile function, ``target_quantiles`` (B, C, Q), sorted), and
    the loss pulls the activations towards that remapped map, held fixed: its
    gradient moves every channel's histogram towards the style's.
    """
    features = tf.cast(features, tf.float32)
    shape = tf.shape(features)
    flat = tf.transpose(tf.reshape(features, [shape[0], -1, shape[3]]), [0, 2, 1])  # (B, C, N)
    count = tf.shape(flat)[2]
    ranks = tf.cast(tf.argsort(tf.argsort(flat, axis=-1, stable=True), axis=-1, stable=True), tf.int64)
    quantiles = tf.cast(tf.shape(target_quantiles)[2], tf.int64)
    index = (2 * ranks + 1) * quantiles // (2 * tf.cast(count, tf.int64))  # the rank's quantile, mid-bin (int64:
    # 2·rank·Q passes 2³¹ past ~2M positions)
    matched = tf.gather(target_quantiles, index, axis=2, batch_dims=2)
    return _mean_per_member(tf.square(flat - tf.stop_gradient(matched)))


def cosine_distances(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """(B, N, M): 1 - cos of the angle between each row of ``a`` (B, N, C) and each row of ``b`` (B, M, C).

    STROTSS's ground cost (Kolkin, Salavon & Shakhnarovich 2019, §3.1): it compares what a feature vector
    says (its direction), not how strongly the network responds (its length). A zero vector is at distance 1
    from every vector (an epsilon keeps its gradient finite).
    """
    a, b = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    a = a / (tf.norm(a, axis=-1, keepdims=True) + 1e-8)
    b = b / (tf.norm(b, axis=-1, keepdims=True) + 1e-8)
    return 1.0 - tf.matmul(a, b, transpose_b=True)


def relaxed_emd_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """The relaxed earth mover's distance between two sets of feature vectors (B, N, C) and (B, M, C), (B,).

    Kolkin et al. 2019, eq. 5 (after Kusner et al. 2015): the exact EMD with
    uniform masses is an assignment problem, too costly in a step; dropping
    one of its two marginal constraints at a time gives two lower bounds, in
    which each point simply moves to its nearest neighbour in the other set
    (cost: `cosine_distances`), and the larger of the two is kept. Each bound
    alone can be cheated (every output feature at one style feature is 0 for
    the first); the maximum cannot: it is 0 exactly when each set lies within
    the other, so equal sets, or one set and any permutation of it, read 0.
    """
    cost = cosine_distances(features, target)
    return tf.maximum(tf.reduce_mean(tf.reduce_min(cost, axis=2), axis=1),
                      tf.reduce_mean(tf.reduce_min(cost, axis=1), axis=1))


def nearest_neighbour_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """NNST's core (Kolkin, Kucera, Paris, Sykora, Shechtman & Shakhnarovich 2022, §3): each of the image's
    feature vectors (B, N, C) is pulled towards its nearest style feature (B, M, C) by cosine distance, found
    anew at every evaluation; (B,) the mean distance. Unlike the relaxed EMD it never asks that every style
    feature be used: a style can be matched by a few of its features, which keeps the content's own
    structure where a close style feature exists."""
    return tf.reduce_mean(tf.reduce_min(cosine_distances(features, target), axis=2), axis=1)


def mrf_loss(patches: tf.Tensor, target_patches: tf.Tensor) -> tf.Tensor:
    """CNNMRF's patch loss (Li & Wand 2016, eqs. 2-3): each of the image's feature patches (B, N, D) is matched
    to the style patch (B, M, D) of the highest normalised cross-correlation (the largest cosine), and the loss
    is the mean squared difference to its match, the match held fixed (a step moves the patch, not the
    choice); (B,)."""
    match = tf.argmin(cosine_distances(patches, target_patches), axis=2)
    matched = tf.gather(tf.cast(target_patches, tf.float32), match, batch_dims=1)
    return tf.reduce_mean(tf.square(tf.cast(patches, tf.float32) - tf.stop_gradient(matched)), axis=[1, 2])


def moment_loss(mean: tf.Tensor, cov: tf.Tensor, target_mean: tf.Tensor, target_cov: tf.Tensor) -> tf.Tensor:
    """STROTSS's moment term (Kolkin et al. 2019, eq. 6): the mean absolute difference of the feature means
    (B, C) and of the covariances (B, C, C), ℓ1 over C and C² entries, so both read per channel. The relaxed
    EMD compares directions only; this keeps the magnitudes (and so the contrast) of the style's features."""
    return (tf.reduce_mean(tf.abs(mean - target_mean), axis=1)
            + tf.reduce_mean(tf.abs(cov - target_cov), axis=[1, 2]))


def self_similarity_loss(features: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """STROTSS's content loss (Kolkin et al. 2019, eq. 7), for two sets of features at the same N positions,
    (B, N, C) each, (B,): the content is what the positions say about each other, not what they say.

    Each set's matrix of `cosine_distances` between its own positions, each
    column divided by its sum (so only the relative pattern counts), and the
    mean absolute difference of the two matrices, times N (so the value does
    not shrink as more positions are sampled). Features are centred on their
    own mean over the positions first: a shift shared by every position (a
    global colour cast at the pixel level) then changes nothing, and neither
    does a positive scale (the cosine's own invariance).
    """
    def pattern(points):
        points = tf.cast(points, tf.float32)
        distances = cosine_distances(*(2 * [points - tf.reduce_mean(points, axis=1, keepdims=True)]))
        return distances / (tf.reduce_sum(distances, axis=1, keepdims=True) + 1e-8)

    count = tf.cast(tf.shape(features)[1], tf.float32)
    return count * tf.reduce_mean(tf.abs(pattern(features) - pattern(target)), axis=[1, 2])


def total_variation_loss(image: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between neighbouring pixels: discourages high-frequency noise."""
    image = tf.cast(image, tf.float32)
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return _mean_per_member(tf.square(dy)) + _mean_per_member(tf.square(dx))


def temporal_loss(image: tf.Tensor, previous: tf.Tensor, reliable: tf.Tensor) -> tf.Tensor:
    """Ruder et al. 2016: the mean over pixels of c * (x - warp(x_prev))², c = 1 where the flow holds."""
    image = tf.cast(image, tf.float32)
    return _mean_per_member(reliable * tf.square(image - previous))


def mean_over_layers(per_layer: Mapping[str, tf.Tensor], layer_weights: Mapping[str, float]) -> tf.Tensor:
    """Weighted mean of per-layer scalars (content loss over several content layers)."""
    total_weight = sum(layer_weights.values())
    return tf.add_n([(w / total_weight) * per_layer[name] for name, w in layer_weights.items()])


def _mean_per_member(values: tf.Tensor) -> tf.Tensor:
    """Mean over every axis but the batch axis: (B, ...) -> (B,)."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)
