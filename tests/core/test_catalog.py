"""The layer catalog (`nstkit.core.catalog`) against the real Keras model, and layer names and specs as users write them."""

import pytest

from nstkit.core.catalog import (
    CATALOG,
    MIN_IMAGE_SIDE,
    deepest,
    layers_to_spec,
    parse_layers,
)
from nstkit.core.errors import NstkitError
from nstkit.core.presets import get_preset


def test_catalog_matches_the_keras_model():
    from nstkit.network.backbone import load_resnet50

    model, _ = load_resnet50("random")
    usable = {layer.name for layer in model.layers[1:] if not layer.name.endswith("_pad")}  # [0] is the input
    assert set(CATALOG) == usable
    for name, info in CATALOG.items():
        assert model.get_layer(name).output.shape[-1] == info.channels, name


def test_catalog_strides_match_feature_map_sizes():
    import numpy as np

    from nstkit.network.backbone import FeatureExtractor, load_resnet50

    model, _ = load_resnet50("random")
    names = ["conv1_relu", "pool1_pool", "conv2_block3_out", "conv3_block1_1_conv", "conv4_block2_2_conv",
             "conv5_block3_out"]
    features = FeatureExtractor(model, names)(np.zeros((1, 64, 96, 3), np.float32))
    for name in names:
        stride = CATALOG[name].stride
        assert tuple(features[name].shape[1:3]) == (64 // stride, 96 // stride), name
    assert MIN_IMAGE_SIDE == max(info.stride for info in CATALOG.values())


def test_parse_layers_adds_repeats_and_reads_weights():
    assert parse_layers("conv1_relu, conv2_block1_out:2.5,conv1_relu") == {"conv1_relu": 2.0,
                                                                           "conv2_block1_out": 2.5}
    assert parse_layers(["a" * 0 + "conv1_relu"] * 3) == {"conv1_relu": 3.0}
    assert layers_to_spec({"conv1_relu": 1.0, "conv2_block1_out": 2.5}) == "conv1_relu,conv2_block1_out:2.5"


def test_unknown_layer_suggests_the_closest_names():
    with pytest.raises(NstkitError, match=r"unknown ResNet-50 layer 'conv4_block2_2_rellu'.*conv4_block2_2_relu"):
        parse_layers("conv4_block2_2_rellu")


@pytest.mark.parametrize("spec, problem", [("conv1_relu:0", "positive"), ("conv1_relu:-1", "positive"),
                                           ("conv1_relu:nan", "positive"), ("conv1_relu:x", "not a number")])
def test_bad_layer_weights_are_refused(spec, problem):
    with pytest.raises(NstkitError, match=problem):
        parse_layers(spec)


def test_deepest_layer_follows_forward_order():
    assert deepest(get_preset("robust").style_layers).name == "conv4_block2_3_conv"
    assert deepest(["conv5_block1_out", "conv1_relu"]).name == "conv5_block1_out"
