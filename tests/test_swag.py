import numpy as np
import pytest
import tensorflow as tf

from nstkit.swag import default_swag_layers, scale, smoothing, softmax_all, softmax_channels


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_softmax_over_all_entries_matches_numpy():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    expected = _np_softmax((x / 2.0).reshape(2, -1), axis=1).reshape(x.shape)
    np.testing.assert_allclose(softmax_all(tf.constant(x), 2.0).numpy(), expected, rtol=1e-5)
    assert np.allclose(softmax_all(x).numpy().reshape(2, -1).sum(1), 1.0)


def test_softmax_over_channels_matches_numpy():
    x = np.random.default_rng(1).normal(size=(1, 3, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(softmax_channels(x, 0.5).numpy(), _np_softmax(x / 0.5, axis=-1), rtol=1e-5)


def test_scale_and_variant_lookup():
    x = np.ones((1, 2, 2, 3), np.float32)
    assert np.all(scale(x, 3.0).numpy() == 3.0)
    assert smoothing("none") is None
    # the loop's smoothing is the softmax scaled to unit mean (a constant factor: see softmax_all)
    np.testing.assert_allclose(smoothing("channel_softmax", temperature=1.0)(x).numpy(), 1.0, rtol=1e-6)
    y = np.random.default_rng(2).normal(size=(1, 4, 4, 8)).astype(np.float32)
    standardised = y / y.std()
    expected = _np_softmax(standardised.reshape(1, -1) / 2.0, axis=1).reshape(y.shape) * y.size
    np.testing.assert_allclose(smoothing("softmax", temperature=2.0)(y).numpy(), expected, rtol=1e-4)
    assert smoothing("softmax")(y).numpy().mean() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(smoothing("channel_softmax", temperature=0.5)(y).numpy(),
                               _np_softmax(standardised / 0.5, axis=-1) * 8, rtol=1e-4)


def test_default_layers_are_stages_3_to_5():
    names = ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    assert default_swag_layers(names) == names[2:]


def test_swag_preset_resolves_with_smoothing():
    from nstkit.config import StyleConfig

    config = StyleConfig(preset="swag").resolved()
    assert config.swag == "softmax"
    assert config.swag_layers == ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    assert list(config.content_layers) == ["conv4_block6_out"]
    assert StyleConfig(preset="robust").resolved().swag == "none"
    with pytest.raises(Exception, match="swag must be one of"):
        StyleConfig(swag="blur").resolved()
