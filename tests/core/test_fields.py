"""Config fields that describe themselves: one declaration makes the CLI flag, the grid's parser and the checks."""

import dataclasses

import pytest

from nstkit.core import fields
from nstkit.core.config import BATCH_VARIES, OPTIONS, StyleConfig
from nstkit.core.errors import NstkitError
from nstkit.sweep import parse_grid
from nstkit.ui.cli import build_parser


def _flags(command: str) -> dict[str, object]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {option: action for action in sub._actions for option in action.option_strings}


def test_every_field_has_a_described_flag_whose_help_gives_the_real_default():
    flags = _flags("stylize")
    for field in dataclasses.fields(StyleConfig):
        spec = field.metadata["option"]
        flag = fields.flag_of(field.name, spec)
        assert flag in flags, field.name
        assert flags[flag].default is None  # "not given": the config's own default applies
        default = fields.default_text(field, spec)
        if default is not None:
            assert f"(default: {default})" in flags[flag].help.replace("%%", "%"), field.name
    # The real defaults, not copies of them.
    assert "(default: 1000)" in flags["--steps"].help and "(default: the preset's, else 0.1" in flags["--epsilon"].help


def test_sweep_takes_every_field_and_estimate_the_memory_ones():
    sweep, estimate = _flags("sweep"), _flags("estimate")
    assert all(fields.flag_of(name, spec) in sweep for name, (_, spec) in OPTIONS.items())
    assert {"--max-dim", "--preset", "--precision"} <= set(estimate) and "--steps" not in estimate


@pytest.mark.parametrize("name, text, value", [
    ("steps", "1e3", 1000), ("steps", "1000.0", 1000), ("style_weight", "1e7", 1e7), ("normalize_style_layers", "yes", True),
    ("style_blend", "0.7,0.3", [0.7, 0.3]), ("swag_layers", "conv4_block6_out, conv3_block4_out",
                                             ["conv4_block6_out", "conv3_block4_out"]),
    ("tile_size", "none", None), ("style_layers", "conv1_relu:2", "conv1_relu:2"),
])
def test_text_takes_the_fields_own_type(name, text, value):
    parsed = fields.parse(name, OPTIONS[name][1], text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("name, text, message", [
    ("steps", "2.5", "--steps must be a whole number, got 2.5"), ("steps", "lots", "--steps: 'lots' is not a number"),
    ("normalize_style_layers", "maybe", "is not true or false"), ("style_blend", "0.7;x", "numbers separated by commas"),
])
def test_bad_text_is_one_line_naming_the_flag(name, text, message):
    with pytest.raises(NstkitError, match=message):
        fields.parse(name, OPTIONS[name][1], text, source=fields.flag_of(name, OPTIONS[name][1]))


def test_the_whole_number_rule_is_one_rule_for_text_and_for_values():
    """The CLI, the grid and Python values refuse 2.5 steps with the same words."""
    with pytest.raises(NstkitError, match="steps must be a whole number"):
        parse_grid(["steps=2.5"])
    with pytest.raises(NstkitError, match="steps must be a whole number"):
        StyleConfig(steps=2.5).resolved()


def test_what_a_batch_may_vary_and_a_grid_separates_with_semicolons_come_from_the_fields():
    assert set(BATCH_VARIES) == {"preset", "style_layers", "content_layers", "content_weight", "style_weight",
                                 "tv_weight", "init", "seed", "preserve_color", "style_blend", "warmup_steps",
                                 "style_scale"}
    listed = {name for name, (_, spec) in OPTIONS.items() if spec.listed}
    assert listed == {"style_layers", "content_layers", "swag_layers", "style_blend", "style_scale"}
    assert parse_grid(["style_blend=0.5,0.5;0.9,0.1"]) == {"style_blend": [[0.5, 0.5], [0.9, 0.1]]}


def test_resolution_runs_preset_then_layers_then_defaults_then_validation(monkeypatch):
    import dataclasses

    from nstkit.core import presets

    monkeypatch.setitem(presets._PRESETS, "swag", dataclasses.replace(presets.get_preset("swag"), learning_rate=5.0))
    config = StyleConfig(preset="vanilla", style_layers="conv1_relu:2,conv1_relu", learning_rate=None)
    resolved = config.resolved()
    assert resolved.style_layers == {"conv1_relu": 3.0}  # layers: the override, parsed
    assert resolved.content_layers == {"conv5_block2_out": 1.0}  # the preset's
    assert (resolved.content_weight, resolved.style_weight, resolved.learning_rate) == (1.0, 1e6, 20.0)
    assert StyleConfig(preset="swag").resolved().learning_rate == 5.0  # the preset's own
    assert StyleConfig(preset="swag", param="fourier").resolved().learning_rate == 0.05
    with pytest.raises(NstkitError, match="unknown ResNet-50 layer"):
        StyleConfig(style_layers="conv9").resolved()


def test_the_record_names_what_overrides_the_preset():
    assert StyleConfig(preset="robust").overridden_preset_fields() == []
    assert StyleConfig(preset="robust", learning_rate=20.0).overridden_preset_fields() == []  # the preset's value
    assert StyleConfig(preset="robust", style_layers="conv1_relu", style_weight=1e9).overridden_preset_fields() == [
        "style_layers", "style_weight"]
