import json
import math

import pytest

from nstkit.core.config import StyleConfig
from nstkit.core.errors import NstkitError


def test_defaults_are_the_seeds_settings():
    config = StyleConfig().resolved()
    assert (config.learning_rate, config.beta_1, config.epsilon) == (20.0, 0.99, 0.1)
    assert (config.content_weight, config.style_weight, config.steps, config.max_dim) == (1e2, 1e7, 1000, 512)
    assert config.preset == "robust" and config.init == "content" and config.weights == "imagenet"


def test_preset_weights_apply_unless_overridden():
    assert StyleConfig(preset="vanilla").resolved().style_weight == 1e6
    assert StyleConfig(preset="vanilla", style_weight=5.0).resolved().style_weight == 5.0


def test_the_vgg19_preset_carries_the_tutorials_adam_in_caffe_pixels_and_a_users_setting_wins():
    """The TF tutorial's Adam(0.02, epsilon 0.1) acts on 0-1 pixels; nstkit's pixels are x255: lr x255, eps /255."""
    vgg = StyleConfig(preset="vgg19").resolved()
    assert (vgg.learning_rate, vgg.epsilon) == pytest.approx((0.02 * 255, 0.1 / 255))
    assert StyleConfig(preset="vgg19", epsilon=0.5, learning_rate=3.0).resolved().epsilon == 0.5
    assert StyleConfig(preset="vgg19", epsilon=0.5).overridden_preset_fields() == ["epsilon"]
    assert StyleConfig(preset="vanilla").resolved().epsilon == 0.1
    assert StyleConfig(preset="vgg19", param="fourier").resolved().epsilon == 0.1  # a pixel recipe, not a spectrum's


def test_layer_overrides_replace_the_preset():
    config = StyleConfig(style_layers="conv1_relu,conv1_relu", content_layers=["conv2_block1_out"]).resolved()
    assert config.style_layers == {"conv1_relu": 2.0}
    assert config.content_layers == {"conv2_block1_out": 1.0}


def test_json_round_trip_reproduces_the_resolved_config():
    config = StyleConfig(preset="conv_relu:0.25", steps=7, seed=3).resolved()
    again = StyleConfig.from_dict(json.loads(config.to_json())).resolved()
    assert again == config


@pytest.mark.parametrize("field, value", [
    ("style_weight", math.nan), ("content_weight", -1.0), ("tv_weight", math.inf), ("learning_rate", 0.0),
    ("epsilon", -0.1), ("beta_1", 1.0), ("steps", 0), ("steps", -3), ("steps", 2.5), ("max_dim", 8),
    ("seed", -1), ("style_weight", "big"),
])
def test_bad_numbers_are_refused_with_the_field_name(field, value):
    with pytest.raises(NstkitError, match=field):
        StyleConfig(**{field: value}).resolved()


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(NstkitError, match="unknown option.*style_wieght.*valid options"):
        StyleConfig().replace(style_wieght=1)


def test_both_weights_zero_is_refused():
    with pytest.raises(NstkitError, match="nothing to optimise"):
        StyleConfig(content_weight=0, style_weight=0).resolved()


@pytest.mark.parametrize("preset", ["robust", "vanilla", "conv", "relu", "conv_relu:0.5"])
def test_the_fields_given_win_over_the_preset(preset):
    """swag and swag_layers given with a preset that has no swag: both kept (#24: "swag is none" before)."""
    layer = next(iter(StyleConfig(preset=preset).resolved().style_layers))  # one the preset's losses read
    config = StyleConfig(preset=preset, swag="softmax", swag_layers=layer)
    resolved = config.resolved()
    assert (resolved.swag, resolved.swag_layers) == ("softmax", [layer])
    assert config.overridden_preset_fields() == ["swag"]


def test_an_unknown_field_in_a_dict_is_refused_in_one_line():
    """A typo in a hand-edited config or record would replay with the default: refused, with the near name."""
    with pytest.raises(NstkitError, match="unknown config field 'style_wieght': did you mean style_weight?"):
        StyleConfig.from_dict({"style_wieght": 1e6})
    with pytest.raises(NstkitError, match="unknown config field 'zzz': the fields"):
        StyleConfig.from_record({"record_version": 4, "config": {"zzz": 1}})


def test_a_record_of_a_newer_nstkit_replays_with_one_warning():
    with pytest.warns(UserWarning, match="config fields palette come from a newer nstkit") as caught:
        config = StyleConfig.from_record({"record_version": 99, "config": {"steps": 5, "palette": "a.png"}})
    assert config.steps == 5 and len(caught) == 1


def test_color_from_picks_whose_colours_and_a_palette_takes_the_histogram_by_default():
    assert StyleConfig().resolved().color_transfer == "none"
    assert StyleConfig(color_from="palette.png").resolved().color_transfer == "histogram"
    assert StyleConfig(color_from="style", color_transfer="mean_cov").resolved().color_transfer == "mean_cov"
    with pytest.raises(NstkitError, match="preserve_color luminance sets the colours its own way: drop one"):
        StyleConfig(color_transfer="histogram", preserve_color="luminance").resolved()
    with pytest.raises(NstkitError, match="color_from style says whose colours .* and color_transfer is none"):
        StyleConfig(color_from="style", color_transfer="none").resolved()
    with pytest.raises(NstkitError, match="color_transfer"):
        StyleConfig(color_transfer="hist").resolved()
