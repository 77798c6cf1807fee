import numpy as np
import pytest
import tensorflow as tf

from nstkit.core.presets import SEED_ROBUST_STYLE_LIST, get_preset
from nstkit.objective.losses import (
    content_loss,
    cosine_distances,
    gram_matrix,
    moment_loss,
    mrf_loss,
    nearest_neighbour_loss,
    relaxed_emd_loss,
    self_similarity_loss,
    style_loss,
    total_variation_loss,
)


def test_gram_matrix_matches_numpy():
    features = np.random.default_rng(0).normal(size=(2, 5, 7, 4)).astype(np.float32)
    expected = np.stack([f.reshape(-1, 4).T @ f.reshape(-1, 4) / 35 for f in features])
    np.testing.assert_allclose(gram_matrix(tf.constant(features)).numpy(), expected, rtol=1e-5)


def test_gram_matrix_is_independent_of_image_size_for_a_repeated_pattern():
    tile = np.random.default_rng(1).normal(size=(1, 4, 4, 3)).astype(np.float32)
    big = np.tile(tile, (1, 3, 2, 1))
    np.testing.assert_allclose(gram_matrix(tile).numpy(), gram_matrix(big).numpy(), rtol=1e-5)


def test_content_loss_is_mean_squared_difference():
    a, b = np.ones((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2, 3), np.float32)
    b[0, 0, 0, 0] = 3.0
    assert content_loss(a, b).numpy() == pytest.approx(((3 - 1) ** 2 + 11 * 1) / 12)


def test_style_loss_with_weights_equals_the_seeds_duplicated_list():
    rng = np.random.default_rng(2)
    names = list(dict.fromkeys(SEED_ROBUST_STYLE_LIST))
    grams = {n: tf.constant(rng.normal(size=(1, 3, 3)), tf.float32) for n in names}
    targets = {n: tf.constant(rng.normal(size=(1, 3, 3)), tf.float32) for n in names}
    # The seed: every list entry weighted 1/len(list), repeats computed again.
    seed_loss = sum(np.mean((grams[n].numpy() - targets[n].numpy()) ** 2) / len(SEED_ROBUST_STYLE_LIST)
                    for n in SEED_ROBUST_STYLE_LIST)
    ours = style_loss(grams, targets, get_preset("robust").style_layers).numpy()
    assert ours == pytest.approx(seed_loss, rel=1e-5)


def test_total_variation_is_zero_for_flat_and_positive_for_edges():
    flat = np.full((1, 8, 8, 3), 5.0, np.float32)
    assert total_variation_loss(flat).numpy() == 0
    edge = flat.copy()
    edge[:, :, 4:, :] = 9.0
    # one vertical edge of height 4 crossing 8 rows: 8*3 differences of 4 among 8*7*3 horizontal pairs
    assert total_variation_loss(edge).numpy() == pytest.approx(16 * 8 * 3 / (8 * 7 * 3))


def test_gram_gradient_matches_autodiff_of_the_einsum():
    """The one-matmul gradient F(dG + dGᵀ) equals what autodiff of FᵀF gives (a non-symmetric upstream too)."""
    rng = np.random.default_rng(5)
    features = tf.constant(rng.normal(size=(2, 6, 5, 4)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(2, 4, 4)).astype(np.float32))  # not symmetric
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        ours = tf.reduce_sum(weights * gram_matrix(features))
        autodiff = tf.reduce_sum(weights * tf.einsum("bijc,bijd->bcd", features, features) / 30)
    np.testing.assert_allclose(tape.gradient(ours, features).numpy(), tape.gradient(autodiff, features).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_bfloat16_gram_sums_in_float32_and_returns_float32():
    """4096 positions of 1.0: a bfloat16 running sum stalls at 256 (256 + 1 rounds back), float32 reaches 4096."""
    ones = tf.ones((1, 64, 64, 3), tf.bfloat16)
    gram = gram_matrix(ones)
    assert gram.dtype == tf.float32
    np.testing.assert_array_equal(gram.numpy(), np.ones((1, 3, 3), np.float32))


def test_bfloat16_gram_is_within_rounding_of_the_exact_one():
    values = tf.cast(tf.constant(np.random.default_rng(6).normal(size=(1, 32, 32, 8)).astype(np.float32)),
                     tf.bfloat16)
    exact = np.einsum("bijc,bijd->bcd", *[values.numpy().astype(np.float64)] * 2) / 1024
    largest = np.abs(exact).max()
    assert np.abs(gram_matrix(values).numpy() - exact).max() <= 2 ** -8 * largest


# ------------------------------------------------------------------ STROTSS (Kolkin et al. 2019)

def _on_circle(*angles):
    """Unit vectors in the plane at these angles, one set (1, N, 2): their cosine distance is 1 - cos(Δangle)."""
    return tf.constant(np.stack([np.cos(angles), np.sin(angles)], axis=1)[None].astype(np.float32))


def test_the_relaxed_emd_of_equal_sets_and_of_a_permutation_is_zero():
    points = np.random.default_rng(0).normal(size=(2, 30, 8)).astype(np.float32)
    shuffled = points[:, np.random.default_rng(1).permutation(30)]
    np.testing.assert_allclose(relaxed_emd_loss(points, points).numpy(), 0, atol=1e-6)
    np.testing.assert_allclose(relaxed_emd_loss(points, shuffled).numpy(), 0, atol=1e-6)
    assert np.all(relaxed_emd_loss(points, points[::-1]).numpy() > 0.1)  # each member against the other's


def test_the_relaxed_emd_is_the_larger_of_its_two_nearest_neighbour_bounds_on_known_angles():
    one, three = _on_circle(0.0), _on_circle(0.0, np.pi / 2, np.pi)
    # One point inside the other set: every point of it has a match (0), but the set's other two points are at
    # distance 1 and 2 from it, a mean of 1: the maximum keeps the second bound.
    assert relaxed_emd_loss(one, three).numpy()[0] == pytest.approx(1.0, abs=1e-6)
    assert relaxed_emd_loss(three, one).numpy()[0] == pytest.approx(1.0, abs=1e-6)  # symmetric
    # Two sets a rotation apart: every nearest neighbour is at that angle.
    turned = _on_circle(0.3, np.pi / 2 + 0.3, np.pi + 0.3)
    assert relaxed_emd_loss(three, turned).numpy()[0] == pytest.approx(1 - np.cos(0.3), abs=1e-6)


def test_the_relaxed_emd_is_a_lower_bound_of_the_exact_emd():
    """With equal set sizes and uniform masses the exact EMD is an assignment (scipy's Hungarian solver)."""
    from scipy.optimize import linear_sum_assignment

    for seed in range(5):
        rng = np.random.default_rng(seed)
        a, b = (rng.normal(size=(1, 12, 4)).astype(np.float32) for _ in range(2))
        cost = cosine_distances(a, b).numpy()[0]
        rows, columns = linear_sum_assignment(cost)
        exact = cost[rows, columns].mean()
        relaxed = relaxed_emd_loss(a, b).numpy()[0]
        assert 0 < relaxed <= exact + 1e-6, seed


def test_the_moment_term_is_the_mean_absolute_difference_of_means_and_covariances():
    mean, target_mean = np.array([[1.0, 2.0]], np.float32), np.array([[0.0, 0.0]], np.float32)
    cov, target_cov = np.eye(2, dtype=np.float32)[None], np.zeros((1, 2, 2), np.float32)
    assert moment_loss(mean, cov, target_mean, target_cov).numpy()[0] == pytest.approx(1.5 + 0.5)
    assert moment_loss(mean, cov, mean, cov).numpy()[0] == 0


def test_the_self_similarity_loss_ignores_a_global_colour_shift_and_scale_but_not_a_new_layout():
    """Pixels as features (an RGB image's positions): the same picture with a colour cast and a brightness
    change reads 0; the same colours in another arrangement do not."""
    rgb = np.random.default_rng(2).uniform(0, 255, size=(1, 64, 3)).astype(np.float32)
    cast = 1.7 * (rgb + np.array([40.0, -25.0, 10.0], np.float32))
    np.testing.assert_allclose(self_similarity_loss(rgb, cast).numpy(), 0, atol=1e-5)
    rearranged = rgb[:, np.random.default_rng(3).permutation(64)]
    assert self_similarity_loss(rgb, rearranged).numpy()[0] > 0.1
    # Its scale does not depend on how many positions are sampled.
    more = np.random.default_rng(4).uniform(0, 255, size=(1, 256, 3)).astype(np.float32)
    few, many = (self_similarity_loss(x, x[:, np.random.default_rng(5).permutation(len(x[0]))]).numpy()[0]
                 for x in (rgb, more))
    assert 0.5 < many / few < 2


def test_nearest_neighbours_need_a_match_for_every_image_feature_not_for_every_style_feature():
    one, three = _on_circle(0.0), _on_circle(0.0, np.pi / 2, np.pi)
    assert nearest_neighbour_loss(one, three).numpy()[0] == pytest.approx(0, abs=1e-6)  # where remd reads 1
    assert nearest_neighbour_loss(three, one).numpy()[0] == pytest.approx((0 + 1 + 2) / 3, abs=1e-6)
    points = np.random.default_rng(6).normal(size=(1, 20, 5)).astype(np.float32)
    np.testing.assert_allclose(nearest_neighbour_loss(points, points[:, ::-1]).numpy(), 0, atol=1e-6)


def test_mrf_matches_by_correlation_and_pulls_by_squared_difference():
    patch = tf.constant([[[1.0, 0.0]]])
    # By correlation the first style patch matches (cosine 0.9998 against 0.71), though the second is nearer.
    style = tf.constant([[[5.0, 0.1], [0.9, 0.9]]])
    assert mrf_loss(patch, style).numpy()[0] == pytest.approx(((1 - 5) ** 2 + 0.1 ** 2) / 2, rel=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(patch)
        loss = mrf_loss(patch, style)
    np.testing.assert_allclose(tape.gradient(loss, patch).numpy(), [[[2 * (1 - 5) / 2, 2 * (0 - 0.1) / 2]]],
                               rtol=1e-5)  # towards the match, which is held fixed
