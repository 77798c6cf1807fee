"""Style statistics: what of the style's features the style loss matches (``style_loss``), one entry each.

A statistic has three parts: the **summary** of one style image's features
at one layer (numpy, computed once per style and stage size), how the
summaries of several blended styles make one **target** (the mixture's
statistics, not an average of losses), and the **loss** of the image's
features against it, as a list of parts, each a small function in `losses`.

- ``gram`` (the seed's): the Gram matrix, raw scale.
- ``mean_cov``: the feature means and covariances.
- ``wasserstein``: the 2-Wasserstein distance between Gaussians fitted to the
  features (crowsonkb/style-transfer's loss); the target's square root is
  taken once per stage by an eigendecomposition in float64.
- ``histogram`` (Risser, Wilmot & Barnes 2017): the Gram loss plus each
  channel's histogram matched to the style's. The Gram alone leaves the
  activations' spread free, which is where its instabilities come from; the
  paper adds the histogram loss to it, as here.
- ``remd`` (STROTSS, Kolkin, Salavon & Shakhnarovich 2019): the relaxed earth
  mover's distance between the image's features at `REMD_SAMPLES` positions
  drawn anew each step (the paper's sampling; the draw is seeded by the run's
  seed and update count, so a run and its resume draw the same) and a fixed
  set of `REMD_STYLE_POINTS` of the style's, plus the moment term (means and
  covariances, ℓ1). The first matches which feature vectors occur, wherever
  they occur; the second keeps their magnitudes. Per layer, not on the
  paper's hypercolumns of upsampled layers: each layer is its own set.
- ``nn`` (NNST, Kolkin et al. 2022): each drawn feature pulled towards its
  nearest style feature by cosine distance, the match found anew each step.
- ``mrf`` (CNNMRF, Li & Wand 2016): 3x3 patches of features, each drawn
  patch matched to the style patch of the highest normalised cross-correlation
  and pulled towards it (squared difference).

The parts of every statistic but ``gram`` are divided, per layer and region,
by their value at the content image (`Objective.statistic_targets`) and
averaged, so the term reads 1 there whatever the network (less a mask's
unstyled share): a style weight then means the same pull for any of them
(config.NORMALISED_STYLE_WEIGHT). ``gram`` keeps the seed's scale.

A region's weights (a mask, `nstkit.masks`) make the image's statistics
those of its own pixels; the style's are always its whole image's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..network.quiet import import_tensorflow_quietly
from .losses import (
    covariance,
    gram_loss,
    histogram_loss,
    moment_loss,
    moments,
    mrf_loss,
    nearest_neighbour_loss,
    relaxed_emd_loss,
    wasserstein_loss,
)

tf, _ = import_tensorflow_quietly()

HISTOGRAM_QUANTILES = 512  # points of each channel's quantile function kept as the histogram target
REMD_SAMPLES = 1024  # the image's positions per layer and step (STROTSS samples 1024)
REMD_STYLE_POINTS = 2048  # the style's feature vectors kept per layer: a fixed random subset (all, if fewer)


@dataclass(frozen=True)
class Statistic:
    name: str
    summarise: Callable[[np.ndarray], dict]  # (H, W, C) float32 features of one style image -> summary
    target: Callable[[list[dict], list[float]], dict]  # summaries and blend shares -> the target (numpy)
    parts: Callable[..., list]  # (features, target tensors, weights, seed) -> [(B,)]; seed: a draw's (2,) int64
    normalised: bool = True


def _raw_moments(features: np.ndarray) -> dict:
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return {"mean": flat.mean(axis=0), "second": flat.T @ flat / len(flat)}


def _blend(summaries: list[dict], shares: list[float], key: str) -> np.ndarray:
    return sum(share * summary[key] for summary, share in zip(summaries, shares))


def _gram_target(summaries, shares):
    return {"second": _blend(summaries, shares, "second").astype(np.float32)}


def _gram_parts(features, target, weights, seed=None):
    _, second = moments(features, weights)
    return [gram_loss(second, target["second"])]


def _gaussian_target(summaries, shares, root: bool = False):
    mean = _blend(summaries, shares, "mean")
    cov = _blend(summaries, shares, "second") - np.outer(mean, mean)
    target = {"mean": mean.astype(np.float32), "cov": cov.astype(np.float32)}
    if root:
        values, vectors = np.linalg.eigh(0.5 * (cov + cov.T))
        target["root"] = ((vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T).astype(np.float32)
    return target


def _mean_cov_parts(features, target, weights, seed=None):
    mean, second = moments(features, weights)
    return [tf.reduce_mean(tf.square(mean - target["mean"]), axis=1),
            tf.reduce_mean(tf.square(covariance(mean, second) - target["cov"]), axis=[1, 2])]


def _wasserstein_parts(features, target, weights, seed=None):
    return [wasserstein_loss(features, target["mean"], target["cov"], target["root"], weights)]


def _histogram_summary(features: np.ndarray) -> dict:
    flat = features.reshape(-1, features.shape[-1])
    return {**_raw_moments(features), "values": np.sort(flat.T.astype(np.float32), axis=1)}


def _histogram_target(summaries, shares):
    return {**_gram_target(summaries, shares), "quantiles": quantile_functions(
        [s["values"] for s in summaries], shares, HISTOGRAM_QUANTILES)}


def _histogram_parts(features, target, weights, seed=None):
    return [*_gram_parts(features, target, weights), histogram_loss(features, target["quantiles"])]


def _remd_summary(features: np.ndarray) -> dict:
    return {**_raw_moments(features), "points": _style_points(features.reshape(-1, features.shape[-1]))}


def _style_points(rows: np.ndarray) -> np.ndarray:
    """`REMD_STYLE_POINTS` of a style's feature vectors (or patches): a fixed random subset, drawn with
    replacement only where there are fewer (the same subset for the same style in every run)."""
    picked = np.random.default_rng(0).choice(len(rows), REMD_STYLE_POINTS, replace=len(rows) < REMD_STYLE_POINTS)
    return rows[np.sort(picked)].astype(np.float32)


def _patch_padding(height: int, width: int) -> list[tuple[int, int]]:
    """The mirror padding that brings a feature map under 3 px on a side (a small image's deepest layers) to
    3, so that it still has a 3x3 patch: CNNMRF's patches assume maps larger than themselves."""
    return [(max(0, 3 - side) // 2, max(0, 3 - side) - max(0, 3 - side) // 2) for side in (height, width)]


def _patch_rows(features: np.ndarray) -> np.ndarray:
    """(H, W, C) -> ((H-2)(W-2), 9C): every 3x3 patch, in `tf.image.extract_patches`' order (row, column,
    channel), so the style's patches and the image's line up."""
    features = np.pad(features, [*_patch_padding(*features.shape[:2]), (0, 0)], mode="symmetric")
    windows = np.lib.stride_tricks.sliding_window_view(features, (3, 3), axis=(0, 1))  # (H-2, W-2, C, 3, 3)
    return windows.transpose(0, 1, 3, 4, 2).reshape(-1, 9 * features.shape[-1])


def _points_target(summaries, shares) -> dict:
    """`REMD_STYLE_POINTS` points drawn from each style in proportion to its share (largest remainders)."""
    counts = np.floor(np.asarray(shares) * REMD_STYLE_POINTS).astype(int)
    counts[np.argsort(-(np.asarray(shares) * REMD_STYLE_POINTS - counts))[:REMD_STYLE_POINTS - counts.sum()]] += 1
    return {"points": np.concatenate([summary["points"][:count] for summary, count in zip(summaries, counts)])}


def _nn_parts(features, target, weights, seed=None):
    return [nearest_neighbour_loss(sample_positions(features, REMD_SAMPLES, seed), target["points"])]


def _mrf_parts(features, target, weights, seed=None):
    padding = _patch_padding(features.shape[1], features.shape[2])
    if any(sum(side) for side in padding):
        features = tf.pad(features, [(0, 0), *padding, (0, 0)], mode="SYMMETRIC")
    patches = tf.image.extract_patches(features, [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
    return [mrf_loss(sample_positions(patches, REMD_SAMPLES, seed), target["points"])]


def _remd_target(summaries, shares):
    """The styles' moments mixed, and their points (`_points_target`)."""
    return {**_gaussian_target(summaries, shares), **_points_target(summaries, shares)}


def _remd_parts(features, target, weights, seed=None):
    mean, second = moments(features, weights)
    drawn = sample_positions(features, REMD_SAMPLES, seed)
    return [relaxed_emd_loss(drawn, target["points"]),
            moment_loss(mean, covariance(mean, second), target["mean"], target["cov"])]


def sample_positions(features, count: int, seed) -> tf.Tensor:
    """(B, H, W, C) -> (B, n, C): the features at ``count`` positions drawn uniformly (with replacement) by the
    stateless generator from ``seed`` (a (2,) int64: the same seed, the same positions; None: (0, 0), for a
    statistic's value outside a run's step), or at every position if there are no more than ``count``."""
    flat = tf.reshape(features, [tf.shape(features)[0], -1, features.shape[-1]])
    positions = features.shape[1] * features.shape[2] if features.shape[1] and features.shape[2] else None
    if positions is not None and positions <= count:
        return flat
    seed = tf.zeros([2], tf.int64) if seed is None else seed
    drawn = tf.random.stateless_uniform([count], seed, minval=0, maxval=tf.shape(flat)[1], dtype=tf.int32)
    return tf.gather(flat, drawn, axis=1)


def quantile_functions(values: list[np.ndarray], shares: list[float], points: int) -> np.ndarray:
    """Each channel's quantile function at ``points`` centred levels, of the styles' mixture, (C, points).

    ``values``: one (C, N_i) array per style, each row sorted; a style's
    samples weigh its share over its count, so a blend mixes the styles'
    distributions (not their sorted values).
    """
    levels = (np.arange(points) + 0.5) / points
    if len(values) == 1:
        count = values[0].shape[1]
        return np.stack([np.interp(levels, (np.arange(count) + 0.5) / count, row) for row in values[0]]).astype(np.float32)
    joined = np.concatenate(values, axis=1)
    weights = np.concatenate([np.full(v.shape[1], share / v.shape[1]) for v, share in zip(values, shares)])
    out = np.empty((joined.shape[0], points), np.float32)
    for channel, row in enumerate(joined):
        order = np.argsort(row, kind="stable")
        cumulative = np.cumsum(weights[order]) - 0.5 * weights[order]
        out[channel] = np.interp(levels, cumulative / weights.sum(), row[order])
    return out


STATISTICS = {
    "gram": Statistic("gram", _raw_moments, _gram_target, _gram_parts, normalised=False),
    "mean_cov": Statistic("mean_cov", _raw_moments, _gaussian_target, _mean_cov_parts),
    "wasserstein": Statistic("wasserstein", _raw_moments, lambda s, w: _gaussian_target(s, w, root=True),
                             _wasserstein_parts),
    "histogram": Statistic("histogram", _histogram_summary, _histogram_target, _histogram_parts),
    "remd": Statistic("remd", _remd_summary, _remd_target, _remd_parts),
    "nn": Statistic("nn", lambda f: {"points": _style_points(f.reshape(-1, f.shape[-1]))}, _points_target,
                    _nn_parts),
    "mrf": Statistic("mrf", lambda f: {"points": _style_points(_patch_rows(f))}, _points_target, _mrf_parts),
}


def layer_loss(statistic: Statistic, features, regions: list[dict], masks, areas, norms, seed=None):
    """One layer's style loss, (B,): each region's parts (over its own pixels), / their value at the content.

    ``regions``: one target (dict of tensors) per region; ``masks`` (B, h, w, K)
    at this layer's resolution, or None (one region: the whole image);
    ``areas`` (B, K) each region's share of the image, by which it counts;
    ``norms`` (B, K, P) or None (raw scale); ``seed``: this step's draw for a
    sampled statistic (`sample_positions`).
    """
    total = 0.0
    for k, target in enumerate(regions):
        parts = statistic.parts(features, target, None if masks is None else masks[..., k], seed)
        if norms is None:
            value = tf.add_n(parts)
        else:  # each part reads 1 at the content, and so does their mean
            value = tf.add_n([part / norms[:, k, i] for i, part in enumerate(parts)]) / len(parts)
        total += value if masks is None else areas[:, k] * value
    return total
