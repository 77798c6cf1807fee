"""The style statistics beyond the Gram (#14): each small function against an independent reference."""

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
from nstkit.objective.style_stats import STATISTICS, quantile_functions


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
        other = statistic.parts(tf.constant(features[None] * 1.5), {k: tf.constant(v[None]) for k, v in target.items()},
                                None)
        assert sum(float(p.numpy()[0]) for p in parts) < 1e-4 * sum(float(p.numpy()[0]) for p in other), statistic.name
