"""Style statistics (`nstkit.objective.style_stats`, #14): each small function against an independent reference;
each statistic 0 for the style's own features and positive otherwise, on known small cases; a blend's target is the
mixture's statistics; a layer's loss over mask regions and normalised parts."""

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from nstkit.objective.losses import (
    covariance,
    histogram_loss,
    moments,
    sqrtm_newton_schulz,
    trace_sqrt,
    wasserstein_loss,
)
from nstkit.objective.style_stats import STATISTICS, layer_loss, quantile_functions


def _spd(rng, channels, condition=50.0):
    q, _ = np.linalg.qr(rng.normal(size=(channels, channels)))
    return (q * np.geomspace(1.0, 1.0 / condition, channels)) @ q.T


def test_newton_schulz_square_root_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    matrices = np.stack([_spd(rng, 16), 3.0 * _spd(rng, 16, condition=10)]).astype(np.float32)
    root, inverse_root = sqrtm_newton_schulz(tf.constant(matrices))
    for matrix, ours, ours_inverse in zip(matrices, root.numpy(), inverse_root.numpy()):
        reference = scipy.linalg.sqrtm(matrix.astype(np.float64)).real
        np.testing.assert_allclose(ours, reference, rtol=0, atol=2e-4 * np.abs(reference).max())
        np.testing.assert_allclose(ours_inverse @ reference, np.eye(16), atol=2e-3)


def test_trace_sqrt_gradient_is_half_the_inverse_root():
    rng = np.random.default_rng(1)
    matrix = tf.constant(_spd(rng, 8, condition=5)[None].astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(matrix)
        value = tf.reduce_sum(trace_sqrt(matrix))
    gradient = tape.gradient(value, matrix).numpy()[0]
    # d tr(A^½) / dA = ½ A^-½ (A symmetric): check against a central finite difference along a symmetric direction
    direction = rng.normal(size=(8, 8))
    direction = (direction + direction.T) / 2
    step = 1e-3
    reference = (np.trace(scipy.linalg.sqrtm(matrix.numpy()[0] + step * direction)).real
                 - np.trace(scipy.linalg.sqrtm(matrix.numpy()[0] - step * direction)).real) / (2 * step)
    assert np.sum(gradient * direction) == pytest.approx(reference, rel=2e-3)


def test_moments_match_numpy_with_and_without_weights():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    weights = rng.uniform(size=(2, 5, 6)).astype(np.float32)
    mean, second = moments(tf.constant(features))
    flat = features.reshape(2, -1, 3)
    np.testing.assert_allclose(mean.numpy(), flat.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(second.numpy(), np.einsum("bnc,bnd->bcd", flat, flat) / 30, rtol=1e-5)
    mean, second = moments(tf.constant(features), tf.constant(weights))
    w = weights.reshape(2, -1, 1)
    np.testing.assert_allclose(mean.numpy(), (w * flat).sum(1) / w.sum(1), rtol=1e-5)
    np.testing.assert_allclose(second.numpy(), np.einsum("bnc,bnd->bcd", w * flat, flat) / w.sum(1)[:, :, None],
                               rtol=1e-4)


@pytest.mark.parametrize("height, width", [(8, 10), (2, 2)])  # more positions than channels, and fewer
def test_wasserstein_loss_is_the_gaussians_closed_form(height, width):
    rng = np.random.default_rng(3)
    channels = 6
    features = (rng.normal(size=(1, height, width, channels)) @ rng.normal(size=(channels, channels))
                + rng.normal(size=channels))
    flat = features.reshape(-1, channels)
    mean, cov = flat.mean(axis=0), np.cov(flat.T, bias=True)
    target_mean, target_cov = rng.normal(size=channels), _spd(rng, channels, 8)
    root = scipy.linalg.sqrtm(target_cov).real
    expected = (np.sum((mean - target_mean) ** 2) + np.trace(cov) + np.trace(target_cov)
                - 2 * np.trace(scipy.linalg.sqrtm(root @ cov @ root).real)) / channels
    f32 = lambda a: tf.constant(np.asarray(a, np.float32))  # noqa: E731
    ours = wasserstein_loss(f32(features), f32(target_mean[None]), f32(target_cov[None]), f32(root[None]))
    assert ours.numpy()[0] == pytest.approx(expected, rel=2e-3)
    own_root = scipy.linalg.sqrtm(cov).real
    same = wasserstein_loss(f32(features), f32(mean[None]), f32(cov[None]), f32(own_root[None]))
    assert abs(same.numpy()[0]) < 2e-3 * expected


def test_wasserstein_loss_of_a_region_is_that_of_its_pixels():
    rng = np.random.default_rng(8)
    features = rng.normal(size=(1, 6, 8, 4)).astype(np.float32)
    weights = np.zeros((1, 6, 8), np.float32)
    weights[:, :, :3] = 1.0
    target_mean, target_cov = rng.normal(size=(1, 4)), _spd(rng, 4, 4)[None]
    root = scipy.linalg.sqrtm(target_cov[0]).real[None]
    f32 = lambda a: tf.constant(np.asarray(a, np.float32))  # noqa: E731
    region = wasserstein_loss(f32(features), f32(target_mean), f32(target_cov), f32(root), f32(weights))
    cropped = wasserstein_loss(f32(features[:, :, :3]), f32(target_mean), f32(target_cov), f32(root))
    assert region.numpy()[0] == pytest.approx(cropped.numpy()[0], rel=1e-4)


def test_mean_cov_parts_are_zero_at_the_target_and_count_means_and_covariances():
    rng = np.random.default_rng(4)
    features = tf.constant(rng.normal(size=(1, 8, 8, 4)).astype(np.float32))
    mean, second = moments(features)
    cov = covariance(mean, second)
    parts = STATISTICS["mean_cov"].parts

    def total(target_mean, target_cov):
        return sum(float(p.numpy()[0]) for p in parts(features, {"mean": target_mean, "cov": target_cov}, None))

    assert total(mean, cov) == pytest.approx(0, abs=1e-10)
    assert total(mean + 1.0, cov) == pytest.approx(1.0, rel=1e-5)
    assert total(mean, cov + 2.0) == pytest.approx(4.0, rel=1e-5)


def test_histogram_loss_is_zero_for_the_same_distribution_and_pulls_towards_the_targets():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(1, 16, 16, 3)).astype(np.float32)
    target = np.sort(values.reshape(-1, 3).T, axis=1)[None]  # (1, C, N): the same values, any layout
    shuffled = values.reshape(-1, 3)[rng.permutation(256)].reshape(1, 16, 16, 3)
    assert histogram_loss(tf.constant(shuffled), tf.constant(target)).numpy()[0] == pytest.approx(0, abs=1e-12)
    # Against a target twice as spread, each value is pulled to twice itself: the loss is mean(x²).
    loss = histogram_loss(tf.constant(values), tf.constant(2 * target)).numpy()[0]
    assert loss == pytest.approx(np.mean(values ** 2), rel=1e-5)
    moved = tf.Variable(values)
    with tf.GradientTape() as tape:
        value = histogram_loss(moved, tf.constant(2 * target))
    moved.assign_sub(0.25 * tape.gradient(value, moved) * values.size)
    assert np.std(moved.numpy()) > 1.2 * np.std(values)  # spread towards the target's


def test_quantile_function_of_a_blend_is_that_of_the_mixture():
    rng = np.random.default_rng(6)
    a, b = np.sort(rng.normal(0, 1, (2, 4000)), axis=1), np.sort(rng.normal(5, 1, (2, 2000)), axis=1)
    ours = quantile_functions([a, b], [0.5, 0.5], 64)
    levels = (np.arange(64) + 0.5) / 64
    # The mixture with equal shares: b's samples weigh twice a's (it has half as many).
    mixture = np.concatenate([a, np.repeat(b, 2, axis=1)], axis=1)
    reference = np.quantile(mixture, levels, axis=1).T
    np.testing.assert_allclose(ours, reference, atol=0.05)
    assert ours[:, :28].max() < 2.5 and ours[:, 36:].min() > 2.5  # half the mass in each mode


def test_every_statistic_has_zero_loss_at_its_own_target():
    rng = np.random.default_rng(7)
    features = rng.normal(size=(12, 12, 5)).astype(np.float32) ** 2  # ReLU-like, non-negative
    for statistic in STATISTICS.values():
        target = statistic.target([statistic.summarise(features)], [1.0])
        parts = statistic.parts(tf.constant(features[None]), {k: tf.constant(v[None]) for k, v in target.items()},
                                None)
        # Other magnitudes and other directions (nn compares directions only: a scale alone reads 0 there).
        other = statistic.parts(tf.constant(1.5 * features[None] ** 1.5), {k: tf.constant(v[None]) for k, v in
                                                                         target.items()}, None)
        assert sum(float(p.numpy()[0]) for p in parts) < 1e-4 * sum(float(p.numpy()[0]) for p in other), statistic.name


def _parts(name, features, *styles, shares=None, weights=None) -> list[float]:
    """A statistic's loss parts for ``features`` (H, W, C) against the target of ``styles`` (each (H, W, C))."""
    statistic = STATISTICS[name]
    target = statistic.target([statistic.summarise(np.asarray(s, np.float32)) for s in styles],
                              shares or [1.0 / len(styles)] * len(styles))
    tensors = {key: tf.constant(value[None]) for key, value in target.items()}
    parts = statistic.parts(tf.constant(np.asarray(features, np.float32)[None]), tensors, weights)
    return [float(part.numpy()[0]) for part in parts]


def _column(*values, height=2):
    """One channel, ``values`` along the width, repeated over ``height`` rows: (height, len(values), 1)."""
    return np.tile(np.asarray(values, np.float32)[None, :, None], (height, 1, 1))


def test_the_statistics_are_the_documented_ones_and_only_the_gram_keeps_its_raw_scale():
    assert list(STATISTICS) == ["gram", "mean_cov", "wasserstein", "histogram", "remd", "nn", "mrf"]
    assert [s.name for s in STATISTICS.values()] == list(STATISTICS)
    assert [name for name, s in STATISTICS.items() if not s.normalised] == ["gram"]


@pytest.mark.parametrize("name", list(STATISTICS))
def test_every_part_is_zero_for_the_styles_own_features_wherever_they_are_and_positive_otherwise(name):
    rng = np.random.default_rng(9)
    style = rng.gamma(2.0, size=(10, 12, 4)).astype(np.float32)
    rearranged = style.reshape(-1, 4)[rng.permutation(120)].reshape(10, 12, 4)  # statistics have no layout
    other = rng.normal(1.0, 0.5, size=(10, 12, 4)).astype(np.float32) ** 2
    differs = _parts(name, other, style)
    assert len(differs) == {"mean_cov": 2, "histogram": 2, "remd": 2}.get(name, 1)
    assert all(part > 1e-3 for part in differs), differs
    # The histogram's target is 512 points of the quantile function: each rank reads it between two samples.
    # remd: its relaxed EMD differs by only 0.009 here, and its moment part's float32 covariances round at 1e-6.
    tolerance = {"histogram": 1e-3, "remd": 1e-3}.get(name, 1e-5)
    # mrf matches 3x3 patches, which carry local layout: only the style itself reads 0 there.
    for same in (_parts(name, style, style), *([] if name == "mrf" else [_parts(name, rearranged, style)])):
        assert all(abs(part) < tolerance * min(differs) for part in same), (same, differs)


# One channel: values 0, 2 (mean 1, variance 1) against the style's 3, 5 (mean 4, variance 1), and so on.
@pytest.mark.parametrize("name, features, style, expected", [
    ("gram", _column(1, 1), _column(3, 3), [(1 - 9) ** 2]),
    ("gram", _column(0, 2), _column(3, 5), [(2 - 17) ** 2]),  # E[x²]: 2 and 17
    ("mean_cov", _column(0, 2), _column(3, 5), [(1 - 4) ** 2, 0.0]),  # same spread: only the means differ
    ("mean_cov", _column(0, 2), _column(-1, 3), [0.0, (1 - 4) ** 2]),  # same mean, variance 1 against 4
    ("wasserstein", _column(0, 2), _column(3, 5), [(1 - 4) ** 2]),  # W2² of N(1, 1) and N(4, 1)
    ("wasserstein", _column(0, 2), _column(-1, 3), [(1 - 2) ** 2]),  # of N(1, 1) and N(1, 4): (σ - σₜ)²
    ("histogram", _column(1, 2, 3, 4), _column(2, 3, 4, 5), [(7.5 - 13.5) ** 2, 1.0]),  # each value one below its rank's
    # One channel: every positive value points the same way (cosine distance 0), a zero points nowhere (1 from
    # all): the 0s have no match (half the image, 0.5), every style value has the 2s (0); moments |1 - 4| + 0.
    ("remd", _column(0, 2), _column(3, 5), [0.5, 3.0]),
    ("nn", _column(0, 2), _column(3, 5), [0.5]),  # the same nearest neighbours, without the moments
], ids=lambda v: v if isinstance(v, str) else None)
def test_known_small_cases(name, features, style, expected):
    assert _parts(name, features, style) == pytest.approx(expected, rel=1e-2, abs=1e-4)


def test_a_blend_of_styles_targets_the_mixtures_statistics_not_the_average_of_theirs():
    zeros, twos = _column(0, 0), _column(2, 2)  # each style alone: no spread at all
    # Half and half: the mixture has mean 1 and variance 1 (not the styles' average variance, 0).
    assert _parts("mean_cov", _column(0, 2), zeros, twos, shares=[0.5, 0.5]) == pytest.approx([0, 0], abs=1e-6)
    assert _parts("mean_cov", _column(1, 1), zeros, twos, shares=[0.5, 0.5]) == pytest.approx([0, 1], abs=1e-6)
    assert _parts("wasserstein", _column(0, 2), zeros, twos, shares=[0.5, 0.5]) == pytest.approx([0], abs=1e-4)
    # Raw second moments mix linearly: 0.25 * 1 + 0.75 * 9 = 7.
    assert _parts("gram", _column(7 ** 0.5, 7 ** 0.5), _column(1, 1), _column(3, 3),
                  shares=[0.25, 0.75]) == pytest.approx([0], abs=1e-5)
    # A share of 0 leaves a style out; the histogram's quantiles are the mixture's too (mrf's 3x3 patches need
    # more than these 2x2 columns).
    for name in set(STATISTICS) - {"mrf"}:
        assert _parts(name, _column(0, 2), _column(3, 5), twos, shares=[1.0, 0.0]) == pytest.approx(
            _parts(name, _column(0, 2), _column(3, 5)), rel=1e-5, abs=1e-6), name
    assert _parts("histogram", _column(0, 0, 2, 2), zeros, twos, shares=[0.5, 0.5])[1] == pytest.approx(0, abs=1e-4)


def test_a_layers_loss_is_each_regions_own_pixels_weighed_by_its_area():
    # Left half of the image 1, right half 3; two regions (the halves), their targets constant 1 and 3.
    features = tf.constant(np.concatenate([np.ones((1, 4, 2, 1)), np.full((1, 4, 2, 1), 3.0)], axis=2), tf.float32)
    masks = np.zeros((1, 4, 4, 2), np.float32)
    masks[:, :, :2, 0], masks[:, :, 2:, 1] = 1, 1
    areas = tf.constant([[0.5, 0.5]])
    gram = STATISTICS["gram"]
    one, three = ({"second": tf.constant([[[value]]], tf.float32)} for value in (1.0, 9.0))
    matched = layer_loss(gram, features, [one, three], tf.constant(masks), areas, None)
    swapped = layer_loss(gram, features, [three, one], tf.constant(masks), areas, None)
    assert float(matched.numpy()[0]) == pytest.approx(0, abs=1e-5)
    assert float(swapped.numpy()[0]) == pytest.approx(0.5 * 64 + 0.5 * 64, rel=1e-5)
    whole = layer_loss(gram, features, [three], None, None, None)  # no mask: the whole image, E[x²] = 5
    assert float(whole.numpy()[0]) == pytest.approx((5 - 9) ** 2, rel=1e-5)


def test_normalised_parts_read_1_at_the_image_they_were_measured_on():
    rng = np.random.default_rng(10)
    features = tf.constant(rng.gamma(2.0, size=(1, 6, 6, 3)), tf.float32)
    style = rng.normal(2.0, 1.0, size=(6, 6, 3)).astype(np.float32) ** 2
    for name in ("mean_cov", "wasserstein", "histogram"):
        statistic = STATISTICS[name]
        target = {k: tf.constant(v[None]) for k, v in statistic.target([statistic.summarise(style)], [1.0]).items()}
        norms = tf.stack(statistic.parts(features, target, None), axis=1)[:, None, :]  # (B, K=1, P)
        assert float(layer_loss(statistic, features, [target], None, None, norms).numpy()[0]) == pytest.approx(
            1.0, rel=1e-5), name
        doubled = layer_loss(statistic, features, [target], None, None, norms / 2)
        assert float(doubled.numpy()[0]) == pytest.approx(2.0, rel=1e-5), name


def test_remds_target_draws_from_each_style_in_proportion_to_its_share():
    from nstkit.objective.style_stats import REMD_STYLE_POINTS

    statistic = STATISTICS["remd"]
    ones, threes = np.ones((40, 40, 2), np.float32), np.full((40, 40, 2), 3.0, np.float32)
    points = statistic.target([statistic.summarise(ones), statistic.summarise(threes)], [0.75, 0.25])["points"]
    assert points.shape == (REMD_STYLE_POINTS, 2)
    assert (points[:, 0] == 1).mean() == pytest.approx(0.75, abs=1 / REMD_STYLE_POINTS)


def test_remd_draws_its_positions_from_the_seed_and_only_where_there_are_more_than_it_takes(monkeypatch):
    import nstkit.objective.style_stats as style_stats

    rng = np.random.default_rng(11)
    features = tf.constant(rng.gamma(2.0, size=(1, 8, 8, 3)), tf.float32)
    style = rng.normal(2.0, 1.0, size=(8, 8, 3)).astype(np.float32) ** 2
    statistic = STATISTICS["remd"]
    target = {k: tf.constant(v[None]) for k, v in statistic.target([statistic.summarise(style)], [1.0]).items()}

    def remd(seed):
        return float(statistic.parts(features, target, None, tf.constant(seed, tf.int64))[0].numpy()[0])

    assert remd([0, 1]) == remd([0, 2])  # 64 positions, fewer than it samples: all of them, whatever the seed
    monkeypatch.setattr(style_stats, "REMD_SAMPLES", 16)
    assert remd([0, 1]) == remd([0, 1]) != remd([0, 2])  # 16 of 64, drawn by the seed


def test_mrfs_style_patches_line_up_with_tensorflows_image_patches():
    from nstkit.objective.style_stats import _patch_rows

    features = np.random.default_rng(12).normal(size=(5, 6, 3)).astype(np.float32)
    ours = _patch_rows(features)
    theirs = tf.image.extract_patches(features[None], [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
    np.testing.assert_array_equal(ours, theirs.numpy().reshape(-1, 27))


@pytest.mark.parametrize("height, width", [(1, 1), (2, 2), (1, 5), (2, 4)])
def test_mrf_holds_on_maps_under_its_patch_mirroring_both_sides_alike(height, width):
    # A small image's deepest layers are 1-2 px: CNNMRF's 3x3 patches found none there (a crash at 64 px).
    # Both sides mirror to 3 px alike, so the style itself reads 0 and another map does not.
    rng = np.random.default_rng(13)
    style = rng.gamma(2.0, size=(height, width, 4)).astype(np.float32)
    other = rng.normal(1.0, 0.5, size=(height, width, 4)).astype(np.float32) ** 2
    differs = _parts("mrf", other, style)[0]
    assert np.isfinite(differs) and differs > 1e-3
    assert abs(_parts("mrf", style, style)[0]) < 1e-5 * differs
