"""SWAG's variants: each is the formula its source wrote, the preset is the paper's objective up to one constant,
and smoothing never happens where no loss looks."""

import numpy as np
import pytest
import tensorflow as tf

from nstkit.core.errors import NstkitError
from nstkit.network.swag import (
    default_swag_layers,
    scale,
    smoothing,
    softmax_all,
    softmax_channels,
)


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


def test_the_papers_variants_are_plain_softmaxes():
    """Eq. 11: over all C·H·W entries of each member's map, sum 1, no temperature, no rescaling; the first
    upload's nn.Softmax2d: over the channels at each pixel, T=1."""
    y = 3 * np.random.default_rng(3).normal(size=(2, 4, 4, 8)).astype(np.float32)
    np.testing.assert_allclose(smoothing("softmax")(y).numpy(),
                               _np_softmax(y.reshape(2, -1), axis=1).reshape(y.shape), rtol=1e-5)
    np.testing.assert_allclose(smoothing("softmax2d")(y).numpy(), _np_softmax(y, axis=-1), rtol=1e-5)
    assert smoothing("softmax", temperature=7.0)(y).numpy() == pytest.approx(smoothing("softmax")(y).numpy())


def test_nstkits_relative_variants_are_kept():
    x = np.ones((1, 2, 2, 3), np.float32)
    assert np.all(scale(x, 3.0).numpy() == 3.0)
    assert smoothing("none") is None
    np.testing.assert_allclose(smoothing("softmax2d_relative", temperature=1.0)(x).numpy(), 1.0, rtol=1e-6)
    y = np.random.default_rng(2).normal(size=(1, 4, 4, 8)).astype(np.float32)
    standardised = y / y.std()
    expected = _np_softmax(standardised.reshape(1, -1) / 2.0, axis=1).reshape(y.shape) * y.size
    np.testing.assert_allclose(smoothing("softmax_relative", temperature=2.0)(y).numpy(), expected, rtol=1e-4)
    assert smoothing("softmax_relative")(y).numpy().mean() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(smoothing("softmax2d_relative", temperature=0.5)(y).numpy(),
                               _np_softmax(standardised / 0.5, axis=-1) * 8, rtol=1e-4)
    # records before version 3 called the channel form channel_softmax
    np.testing.assert_array_equal(smoothing("channel_softmax", 0.5)(y).numpy(),
                                  smoothing("softmax2d_relative", 0.5)(y).numpy())


def test_default_layers_are_the_papers_stages_4_and_5():
    """The code smooths PyTorch's layer3 and layer4, Keras's conv4_x and conv5_x (peiwang062/swag issue #8)."""
    names = ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    assert default_swag_layers(names) == names[3:]


def test_swag_preset_is_the_papers_setup():
    from nstkit.core.config import StyleConfig

    config = StyleConfig(preset="swag").resolved()
    assert config.swag == "softmax"
    assert config.swag_layers == ["conv4_block6_out", "conv5_block3_out"]
    assert list(config.style_layers) == ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
                                         "conv5_block3_out"]
    assert list(config.content_layers) == ["conv4_block6_out"]
    assert StyleConfig(preset="robust").resolved().swag == "none"
    with pytest.raises(Exception, match="swag must be one of"):
        StyleConfig(swag="blur").resolved()


def _paper_objective(raw, raw_content, raw_style, smoothed):
    """The paper's loss from unsmoothed activations, in float64, written from resnet_swag.py's formulas:
    softmax over C·H·W on the smoothed layers, Gram FᵀF/(C·H·W), torch.mean of squared differences, content
    weight 1 on conv4_block6_out, style weight 1e17 on the sum over the five layers (weight 1 each)."""
    def prepared(features, name):
        f = np.asarray(features[name], np.float64)[0]
        if name in smoothed:
            f = _np_softmax(f.reshape(-1), axis=0).reshape(f.shape)
        return f

    def gram(f):
        flat = f.reshape(-1, f.shape[-1])
        return flat.T @ flat / f.size

    layers = ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    content = np.mean((prepared(raw, "conv4_block6_out") - prepared(raw_content, "conv4_block6_out")) ** 2)
    style = sum(np.mean((gram(prepared(raw, n)) - gram(prepared(raw_style, n))) ** 2) for n in layers)
    return 1.0 * content, 1e17 * style


def test_swag_preset_is_the_papers_objective_times_one_constant():
    """Only a rescaling: each weighted term is the paper's times SWAG_RESCALE, on images far apart."""
    from nst_helpers import smooth_image

    from nstkit.core.config import StyleConfig
    from nstkit.core.presets import SWAG_RESCALE
    from nstkit.media.images import preprocess
    from nstkit.objective.terms import Objective, StageInputs

    content, style = smooth_image(4, 64, 64), smooth_image(5, 64, 64)
    config = StyleConfig(preset="swag", weights="random:3", precision="float32", max_dim=64).resolved()
    objective = Objective([config])
    targets = objective.targets(StageInputs(content=preprocess(content), styles=[[style]], blends=[[1.0]]))
    raw = objective.extractor
    raw_content, raw_style = raw(tf.constant(preprocess(content))), raw(tf.constant(preprocess(style)))
    rng = np.random.default_rng(0)
    for image in (content + rng.normal(0, 20, content.shape), smooth_image(6, 64, 64)):
        x = tf.constant(preprocess(np.clip(image, 0, 255).astype(np.float32)))
        weighted = (objective.values(x, targets) * objective.weights()).numpy()[0]
        nst = dict(zip(objective.names, weighted))
        paper_content, paper_style = _paper_objective(raw(x), raw_content, raw_style, set(config.swag_layers))
        assert nst["content"] / paper_content == pytest.approx(SWAG_RESCALE, rel=2e-3)
        assert nst["style"] / paper_style == pytest.approx(SWAG_RESCALE, rel=2e-3)


def test_smoothing_must_reach_a_loss():
    from nstkit.core.config import StyleConfig

    with pytest.raises(NstkitError, match=r"swag layer\(s\) conv3_block4_out, conv4_block6_out feed no loss"):
        StyleConfig(swag="softmax", swag_layers=["conv3_block4_out", "conv4_block6_out"]).resolved()
    with pytest.raises(NstkitError, match="no style or content layer is in stages 4-5"):
        StyleConfig(preset="vanilla", style_layers=["conv1_relu"], content_layers=["conv2_block1_out"],
                    swag="softmax").resolved()
    with pytest.raises(NstkitError, match="has no temperature"):
        StyleConfig(preset="swag", swag_temperature=0.5).resolved()
    assert StyleConfig(preset="swag", swag="softmax_relative", swag_temperature=0.5).resolved().swag_temperature == 0.5


def test_old_records_replay_as_they_ran():
    from nstkit.core.config import StyleConfig

    old = {"record_version": 2, "config": {"preset": "swag", "swag": "softmax"}}
    assert StyleConfig.from_record(old).swag == "softmax_relative"
    assert StyleConfig.from_record({**old, "record_version": 3}).swag == "softmax"
    channel = {"record_version": 2, "config": {"preset": "robust", "swag": "channel_softmax"}}
    assert StyleConfig.from_record(channel).resolved().swag == "softmax2d_relative"


def test_help_names_each_variants_source():
    from nstkit.core.config import OPTIONS
    from nstkit.core.presets import SWAG_VARIANTS

    text = OPTIONS["swag"][1].help
    for name, source in SWAG_VARIANTS.items():
        if name != "none":
            assert f"{name}: {source}" in text
    assert "Eq. 11" in SWAG_VARIANTS["softmax"] and "144b487" in SWAG_VARIANTS["softmax2d"]
