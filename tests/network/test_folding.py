"""BatchNorm folding and reduced precision: same features, fewer ops."""

import keras
import numpy as np
import pytest
from nst_helpers import smooth_image
from skimage.metrics import structural_similarity

import nstkit
from nstkit.core.errors import NstkitError
from nstkit.core.presets import get_preset
from nstkit.network.backbone import FeatureExtractor, load_resnet50
from nstkit.network.folding import fold_batchnorm

ROBUST = get_preset("robust")
LAYERS = [*ROBUST.style_layers, *ROBUST.content_layers, "conv2_block1_1_bn", "conv3_block1_out"]


@pytest.fixture(scope="module")
def trained_like_model():
    """Random weights with non-trivial BatchNorm statistics, so folding has something to fold."""
    model = keras.models.clone_model(load_resnet50("random:4")[0])
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c),
                               rng.uniform(0.5, 2.0, c)])
        elif layer.weights:
            layer.set_weights(load_resnet50("random:4")[0].get_layer(layer.name).get_weights())
    return model


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(1).uniform(-120, 120, (1, 64, 48, 3)).astype(np.float32)


def test_folded_features_equal_the_original(trained_like_model, image):
    reference = FeatureExtractor(trained_like_model, LAYERS, fold=False)(image)
    folded = FeatureExtractor(trained_like_model, LAYERS)(image)
    for name in LAYERS:
        expected = reference[name].numpy()
        np.testing.assert_allclose(folded[name].numpy(), expected, atol=1e-4 * np.abs(expected).max(), err_msg=name)


def test_folding_removes_batchnorm_but_keeps_tapped_convs_exact(trained_like_model):
    folded = fold_batchnorm(trained_like_model, keep={"conv2_block1_1_conv"})
    kinds = {layer.name: type(layer).__name__ for layer in folded.layers}
    assert "BatchNormalization" not in kinds.values()
    assert kinds["conv2_block1_1_bn"] == "ChannelAffine"  # its conv is a tap: not folded
    assert kinds["conv2_block1_2_bn"] == "PassThrough"  # folded into conv2_block1_2_conv
    original = trained_like_model.get_layer("conv2_block1_1_conv").get_weights()[0]
    np.testing.assert_array_equal(folded.get_layer("conv2_block1_1_conv").get_weights()[0], original)
    assert not np.allclose(folded.get_layer("conv2_block1_2_conv").get_weights()[0],
                           trained_like_model.get_layer("conv2_block1_2_conv").get_weights()[0])


@pytest.mark.parametrize("precision, tolerance", [("bfloat16", 0.05), ("float16", 0.01)])
def test_low_precision_features_are_close_and_come_back_as_float32(trained_like_model, image, precision,
                                                                   tolerance):
    reference = FeatureExtractor(trained_like_model, LAYERS)(image)
    low = FeatureExtractor(trained_like_model, LAYERS, precision=precision)
    assert low.model.layers[1].compute_dtype == precision
    features = low(image)
    for name in LAYERS:
        assert features[name].dtype == "float32"
        expected = reference[name].numpy()
        error = np.abs(features[name].numpy() - expected).max() / np.abs(expected).max()
        assert error < tolerance, (name, error)


def test_unknown_precision_is_one_clear_error(trained_like_model):
    with pytest.raises(NstkitError, match="precision must be one of float32, bfloat16, float16"):
        FeatureExtractor(trained_like_model, LAYERS, precision="float8")
    with pytest.raises(NstkitError, match="precision must be one of"):
        nstkit.StyleConfig(precision="half").resolved()
    with pytest.raises(NstkitError, match="jit_compile must be"):
        nstkit.StyleConfig(jit_compile="yes").resolved()


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_low_precision_run_follows_the_float32_run(precision):
    """Same trajectory within a few percent; float16 survives the 1e7 style weight thanks to loss scaling."""
    content, style = smooth_image(1), smooth_image(2, 40, 40)
    options = dict(weights="random", max_dim=64, steps=8, optimizer="adam")  # float16's "auto" is Adam: compare it
    full = nstkit.stylize(content, style, **options)
    low = nstkit.stylize(content, style, precision=precision, **options)
    assert low.record["config"]["precision"] == precision
    assert np.isfinite(low.history["total"]).all()
    np.testing.assert_allclose(low.history["total"], full.history["total"], rtol=0.05)
    # Adam at lr 20 amplifies rounding into per-pixel differences; the picture stays the same one
    # (the content itself scores ~0.4 against the float32 output after 8 steps).
    assert structural_similarity(low.image, full.image, channel_axis=2, data_range=255) > 0.8


def test_jit_compile_default_and_override_are_recorded():
    content, style = smooth_image(1, 32, 32), smooth_image(2, 32, 32)
    default = nstkit.stylize(content, style, weights="random", max_dim=32, steps=2)
    assert default.record["jit_compile"] is False  # the CPU default: XLA measured no faster here
    forced = nstkit.stylize(content, style, weights="random", max_dim=32, steps=2, jit_compile=True)
    assert forced.record["jit_compile"] is True
    np.testing.assert_allclose(forced.history["total"], default.history["total"], rtol=1e-3)


@pytest.mark.slow
def test_bfloat16_step_compiles_with_xla():
    """The GPU default is bfloat16-capable XLA; its step (bfloat16 Gram, custom gradient, cond) must compile."""
    content, style = smooth_image(1, 32, 32), smooth_image(2, 32, 32)
    options = dict(weights="random", max_dim=32, steps=3, precision="bfloat16")
    without_xla = nstkit.stylize(content, style, jit_compile=False, **options)
    with_xla = nstkit.stylize(content, style, jit_compile=True, **options)
    assert with_xla.record["jit_compile"] is True
    np.testing.assert_allclose(with_xla.history["total"], without_xla.history["total"], rtol=0.05)
