"""The seed's presets (`nstkit.core.presets`): their layers and weights as the original settings wrote them, the
conv/relu share, and a bad name or share in one line. (SWAG's preset is tests/network/test_swag.py's.)"""

import pytest

from nstkit.core.catalog import CATALOG
from nstkit.core.errors import NstkitError
from nstkit.core.presets import SEED_ROBUST_STYLE_LIST, get_preset


def test_robust_preset_keeps_the_seeds_duplicates_as_weights():
    preset = get_preset("robust")
    assert len(SEED_ROBUST_STYLE_LIST) == 15
    assert sum(preset.style_layers.values()) == 15
    assert preset.style_layers["conv2_block2_1_relu"] == 4
    assert preset.style_layers["conv2_block3_3_conv"] == 2
    assert preset.style_layers["conv2_block2_2_relu"] == 2
    assert preset.style_layers["conv1_relu"] == 1
    assert list(preset.style_layers)[:3] == ["conv1_relu", "conv2_block1_1_conv", "conv2_block2_1_relu"]
    assert preset.content_layers == {"conv4_block2_2_conv": 1.0}


def test_seed_trial_presets_match_the_original_settings():
    conv, relu = get_preset("conv"), get_preset("relu")
    assert list(conv.style_layers) == ["conv2_block2_1_bn", "conv3_block1_3_bn", "conv3_block1_0_conv",
                                       "conv4_block4_2_bn"]
    assert list(conv.content_layers) == ["conv1_conv"]
    assert list(relu.style_layers) == ["conv2_block2_2_relu", "conv3_block4_2_relu", "conv4_block6_1_relu",
                                       "conv5_block3_2_relu"]
    assert {CATALOG[n].stage for n in relu.style_layers} == {2, 3, 4, 5}
    vanilla = get_preset("vanilla")
    assert (vanilla.content_weight, vanilla.style_weight) == (1.0, 1e6)


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_conv_relu_share_splits_the_style_weight(share):
    preset = get_preset(f"conv_relu:{share}")
    relu = sum(w for n, w in preset.style_layers.items() if n in get_preset("relu").style_layers)
    conv = sum(w for n, w in preset.style_layers.items() if n in get_preset("conv").style_layers)
    assert relu == pytest.approx(share)
    assert conv == pytest.approx(1 - share)
    assert all(w > 0 for w in preset.style_layers.values())


def test_unknown_preset_and_bad_share():
    with pytest.raises(NstkitError, match="did you mean robust"):
        get_preset("robst")
    with pytest.raises(NstkitError, match="outside"):
        get_preset("conv_relu:1.5")
