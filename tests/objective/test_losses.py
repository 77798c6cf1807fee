import numpy as np
import pytest
import tensorflow as tf

from nstkit.core.presets import SEED_ROBUST_STYLE_LIST, get_preset
from nstkit.objective.losses import (
    content_loss,
    gram_matrix,
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
