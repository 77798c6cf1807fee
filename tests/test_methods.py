"""Each beyond-the-seed method runs and lowers its own loss (tiny images, random weights)."""

import numpy as np
import pytest
from nst_helpers import smooth_image

import nstkit
from nstkit.media.color import rgb_to_yiq

CONTENT, STYLE = smooth_image(1), smooth_image(2, 40, 40)
TINY = dict(weights="random", max_dim=64, steps=15)


def _fell(result, term="total"):
    values = result.history[term]
    return min(values[1:]) < values[0]


_RUNS: dict = {}


def _run(**options):
    """A 15-step run, once per set of options in this module (a method's run is also another's baseline)."""
    key = tuple(sorted(options.items()))
    if key not in _RUNS:
        _RUNS[key] = nstkit.stylize(CONTENT, STYLE, **TINY, **options)
    return _RUNS[key]


# Each method, and the run it must change: the same options without the method's own.
METHODS = [
    (dict(preset="swag"), dict()),
    (dict(preset="swag", swag="softmax2d"), dict(preset="swag")),
    (dict(preset="swag", optimizer="lbfgs"), dict(preset="swag", optimizer="adam")),
    # nstkit's relative softmax makes the loss steep: at the seed's lr of 20 the first step overshoots by 1e4x.
    (dict(preset="swag", swag="softmax_relative", learning_rate=5.0), dict(preset="swag", learning_rate=5.0)),
    (dict(swag="softmax2d_relative", swag_temperature=0.5), dict()),
    (dict(swag="scale", swag_alpha=0.1), dict()),
    (dict(param="fourier"), dict()),
    (dict(param="fourier", jitter=2, preset="swag"), dict(preset="swag")),
    (dict(normalize_style_layers=True), dict()),
    (dict(preserve_color="match"), dict()),
    (dict(normalize_gradients=True), dict(content_weight=5.0, style_weight=100.0, optimizer="adam")),
]


@pytest.mark.parametrize("options, without", METHODS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_method_lowers_its_loss(options, without):
    result = _run(**options)
    assert _fell(result), result.history["total"]
    assert result.record["step_traces"] == 1
    # The method takes effect: the same run without it (the same bytes, were the method ignored) minimises another
    # loss, or moves another way. At 64 px with random weights SWAG's smoothed layers (stages 4-5) carry little of
    # the loss: its variants differ from each other in the 7th digit of the total, and 10x in the content term.
    baseline = _run(**without)
    assert result.history != baseline.history, options


def test_fourier_starts_from_the_content_image():
    starts = []
    result = nstkit.stylize(CONTENT, STYLE, param="fourier", weights="random", max_dim=64, steps=1,
                            content_weight=1.0, style_weight=0.0,
                            callbacks=[lambda p: starts.append(p.best_image(as_float=True))])
    # The first step scores the start image, the best so far: spectrum_of(content) reproduces the content.
    assert len(starts) == 1 and np.abs(starts[0] - CONTENT).max() < 0.5
    assert result.history["content"][0] < 1e-4


def test_luminance_only_keeps_the_content_colours():
    # From noise: started from the (grey) content, the seed's lr of 20 first overshoots a loss that is already small.
    result = nstkit.stylize(CONTENT, STYLE, preserve_color="luminance", init="noise", **TINY)
    assert _fell(result)
    out_iq, content_iq = rgb_to_yiq(result.image)[..., 1:], rgb_to_yiq(CONTENT)[..., 1:]
    assert np.abs(out_iq - content_iq).mean() < 3.0


def test_normalised_layers_change_the_scale_of_the_style_term():
    plain = nstkit.stylize(CONTENT, STYLE, weights="random", max_dim=64, steps=1)
    normalised = nstkit.stylize(CONTENT, STYLE, weights="random", max_dim=64, steps=1, normalize_style_layers=True)
    assert plain.history["style"][0] != pytest.approx(normalised.history["style"][0], rel=0.1)


def test_coarse_to_fine_runs_each_level_and_returns_full_size():
    result = nstkit.stylize(smooth_image(1, 96, 128), STYLE, weights="random", max_dim=128, steps=6,
                            coarse_levels=1)
    assert [(s["size"], s["steps"], s["steps_run"]) for s in result.record["stages"]] == [([48, 64], 3, 3),
                                                                                         ([96, 128], 6, 6)]
    assert result.record["steps_run"] == 9 and len(result.history["total"]) == 9
    assert result.image.shape == (96, 128, 3)


def test_coarse_levels_stop_at_the_smallest_usable_size():
    result = nstkit.stylize(CONTENT, STYLE, weights="random", max_dim=64, steps=2, coarse_levels=3)
    assert [stage["size"] for stage in result.record["stages"]] == [[48, 64]]  # 48 px content: no room to halve


def test_two_styles_blend_their_gram_targets():
    other = smooth_image(7, 40, 40)
    only_a = nstkit.stylize(CONTENT, STYLE, weights="random", max_dim=64, steps=1)
    only_b = nstkit.stylize(CONTENT, other, weights="random", max_dim=64, steps=1)
    mostly_a = nstkit.stylize(CONTENT, [STYLE, other], style_blend=[0.9, 0.1], weights="random", max_dim=64,
                              steps=1)
    assert mostly_a.record["style_blend"] == pytest.approx([0.9, 0.1])
    assert set(mostly_a.record["inputs"]) == {"content", "style_1", "style_2"}
    first = [r.history["style"][0] for r in (only_a, mostly_a, only_b)]
    assert abs(first[1] - first[0]) < abs(first[1] - first[2])  # closer to the style it weighs 0.9
    with pytest.raises(nstkit.NstkitError, match="one per style"):
        nstkit.stylize(CONTENT, [STYLE, other], style_blend=[1.0], weights="random", max_dim=64, steps=1)


def test_vgg19_baseline_through_the_same_api():
    result = nstkit.stylize(CONTENT, STYLE, backbone="vgg19", **TINY)
    assert result.config.preset == "vgg19" and result.config.backbone == "vgg19"
    assert list(result.config.style_layers) == [f"block{b}_conv1" for b in range(1, 6)]
    assert _fell(result, "style")
    with pytest.raises(nstkit.NstkitError, match="is for resnet50, not vgg19"):
        nstkit.StyleConfig(backbone="vgg19", preset="robust").resolved()
    with pytest.raises(nstkit.NstkitError, match="unknown VGG19 layer"):
        nstkit.StyleConfig(backbone="vgg19", style_layers="conv1_relu").resolved()
