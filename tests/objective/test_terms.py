"""The objective's named terms (`nstkit.objective.terms`): one weight per batch member, layers the union of the
members' (0 where one does not use a layer), unused terms read 0 without being computed, members never mix, and each
term's targets. Random weights at 48x64 px."""

import numpy as np
import pytest
from nst_helpers import smooth_image

import nstkit
from nstkit.core.errors import NstkitError
from nstkit.media.images import preprocess
from nstkit.objective.terms import (
    HISTORY_KEYS,
    TERM_NAMES,
    Objective,
    StageInputs,
    build_terms,
)

CONTENT, STYLE = smooth_image(1), smooth_image(2, 40, 40)
BASE = dict(weights="random", precision="float32", max_dim=64)


def _config(**options):
    return nstkit.StyleConfig(**BASE, **options).resolved()


def _inputs(members: int, image=CONTENT) -> StageInputs:
    return StageInputs(content=np.repeat(preprocess(image), members, axis=0), styles=[[STYLE]] * members,
                       blends=[[1.0]] * members)


@pytest.fixture(scope="module")
def pair():
    """Two members that differ in every weight and in their style layers."""
    configs = [_config(content_weight=100.0, style_weight=1e6, style_layers="conv1_relu"),
               _config(content_weight=10.0, style_weight=0.0, tv_weight=5.0,
                       style_layers={"conv1_relu": 0.25, "conv2_block1_out": 0.5})]
    return configs, Objective(configs)


def test_the_terms_are_named_once_in_the_order_everything_shows_them():
    assert TERM_NAMES == ("content", "style", "tv", "temporal")
    assert HISTORY_KEYS == ("total", *TERM_NAMES)
    assert [term.name for term in build_terms([_config()])] == list(TERM_NAMES)


def test_each_member_has_its_own_weights_and_layers(pair):
    configs, objective = pair
    assert objective.names == TERM_NAMES
    expected = np.array([[100.0, 1e6, 0.0, 0.0], [10.0, 0.0, 5.0, 0.0]], np.float32)
    np.testing.assert_array_equal(objective.weights(), expected)  # (members, terms)
    terms = {term.name: term for term in objective.terms}
    assert {name: weights.tolist() for name, weights in terms["style"].layers.items()} == {
        "conv1_relu": [1.0, 0.25], "conv2_block1_out": [0.0, 0.5]}  # the union; 0 where a member has none
    assert terms["tv"].layers == {} and terms["temporal"].layers == {}
    assert [terms[name].used for name in TERM_NAMES] == [True, True, True, False]


def test_unused_terms_read_0_and_a_weight_of_0_contributes_0(pair):
    import tensorflow as tf

    configs, objective = pair
    targets = objective.targets(_inputs(2))
    assert set(targets) == {"content", "style"}  # tv has no targets; temporal is unused, so none are computed
    image = tf.constant(np.concatenate([preprocess(smooth_image(5)), preprocess(smooth_image(6))]))
    values = objective.values(image, targets).numpy()  # (members, terms), unweighted
    assert values.shape == (2, 4) and (values[:, :3] > 0).all()
    assert (values[:, 3] == 0).all()  # temporal: weight 0 for every member, never computed
    weighted = objective.weights() * values
    assert weighted[1, 1] == 0 and weighted[0, 2] == 0  # the second member's style, the first's tv
    assert weighted[0, 1] > 0 and weighted[1, 2] > 0


def test_members_never_mix():
    import tensorflow as tf

    configs = [_config(style_weight=1e6, tv_weight=1.0, style_layers="conv1_relu"),
               _config(content_weight=10.0, style_weight=1e8, tv_weight=5.0,
                       style_layers={"conv1_relu": 0.25, "conv2_block1_out": 0.5})]
    objective = Objective(configs)
    image = tf.constant(np.concatenate([preprocess(smooth_image(5)), preprocess(smooth_image(6))]))
    contents, styles = [CONTENT, smooth_image(7)], [STYLE, smooth_image(3, 32, 48)]  # each member its own

    def inputs(members):
        return StageInputs(content=np.concatenate([preprocess(contents[m]) for m in members]),
                           styles=[[styles[m]] for m in members], blends=[[1.0]] * len(members))

    together = objective.weights() * objective.values(image, objective.targets(inputs([0, 1]))).numpy()
    for member, config in enumerate(configs):
        alone = Objective([config])
        value = alone.weights()[0] * alone.values(image[member:member + 1], alone.targets(inputs([member]))).numpy()[0]
        np.testing.assert_allclose(together[member], value, rtol=1e-5, atol=1e-12, err_msg=str(member))


@pytest.mark.parametrize("style_loss, content_loss", [("gram", "mse"), ("mean_cov", "mse"), ("wasserstein", "mse"),
                                                       ("histogram", "mse"), ("remd", "self_similarity"),
                                                       ("nn", "mse"), ("mrf", "mse")])
def test_the_content_and_the_style_read_0_at_their_own_images(style_loss, content_loss):
    import tensorflow as tf

    objective = Objective([_config(style_loss=style_loss, content_loss=content_loss)])
    at_content = objective.values(tf.constant(preprocess(CONTENT)), objective.targets(_inputs(1))).numpy()[0]
    assert at_content[0] == pytest.approx(0, abs=1e-6) and at_content[1] > 0
    if style_loss != "gram":  # the others' parts are divided by their value at the content: there, they read 1
        assert at_content[1] == pytest.approx(1.0, rel=1e-4)
    # The style image itself (another size: no content term, whose targets are the content's features).
    style_only = Objective([_config(style_loss=style_loss, content_weight=0.0)])
    at_style = style_only.values(tf.constant(preprocess(STYLE)), style_only.targets(_inputs(1))).numpy()[0]
    assert at_style[0] == 0  # unused
    # The style's own statistics: 0 up to the histogram's 512-point quantile function and float32 round-off.
    assert at_style[1] < 1e-3 * at_content[1], (at_style[1], at_content[1])
    terms = {term.name: term for term in objective.terms}
    assert (terms["style"].tiled is not None) == (style_loss == "gram")  # only the Gram has a tiled form


def test_a_temporal_weight_without_a_previous_frame_is_one_line():
    objective = Objective([_config(temporal_weight=1e3)])
    with pytest.raises(NstkitError, match="temporal_weight ties a video frame to the previous one, and this run "
                                          "has none: use nstkit video"):
        objective.targets(_inputs(1))


@pytest.fixture
def draws_few(monkeypatch):
    """16 positions a step, so a 64 px run samples at every layer (it takes every position where it has 1024)."""
    import nstkit.objective.style_stats as style_stats

    monkeypatch.setattr(style_stats, "REMD_SAMPLES", 16)


SAMPLED = dict(BASE, style_loss="remd", content_loss="self_similarity", steps=6)


def test_sampled_losses_draw_by_the_seed_and_the_step_and_a_resume_draws_the_same(draws_few, tmp_path):
    import threading

    whole = nstkit.stylize(CONTENT, STYLE, **SAMPLED)
    assert whole.record["optimizer_chosen"].startswith("auto: adam, for style_loss remd and content_loss "
                                                       "self_similarity (positions drawn anew each step)")
    other = nstkit.stylize(CONTENT, STYLE, **SAMPLED, seed=1)
    assert other.history["style"][1:] != whole.history["style"][1:]  # another seed, other positions
    # Each step draws anew: one image scored at two steps reads two values, at one step the same.
    import tensorflow as tf

    objective = Objective([_config(style_loss="remd", content_loss="self_similarity")])
    image, targets = tf.constant(preprocess(smooth_image(7))), objective.targets(_inputs(1))
    at = {step: objective.values(image, targets, draw=tf.constant(step, tf.int64)).numpy()[0] for step in (1, 2)}
    assert list(objective.values(image, targets, draw=tf.constant(1, tf.int64)).numpy()[0]) == list(at[1])
    assert at[1][1] != at[2][1]
    checkpoint, stop = tmp_path / "out.checkpoint.npz", threading.Event()
    nstkit.stylize(CONTENT, STYLE, **SAMPLED, stop_event=stop, checkpoint=checkpoint,
                   callbacks=[lambda p: p.step == 3 and stop.set()])
    resumed = nstkit.stylize(CONTENT, STYLE, **SAMPLED, checkpoint=checkpoint, resume=True)
    assert resumed.record["resumed_at_step"] == 3 and resumed.history["total"] == whole.history["total"]
    np.testing.assert_array_equal(resumed.image, whole.image)


def test_sampled_losses_refuse_lbfgs_a_mask_and_tiles_in_one_line():
    for options, words in ((dict(optimizer="lbfgs"), "style_loss remd draws new positions every step, and "
                                                     "optimizer lbfgs needs the same loss at every evaluation"),
                           (dict(mask="mask.png"), "style_loss remd draws its positions from the whole image"),
                           (dict(tile_size=64), "style_loss gram")):
        with pytest.raises(NstkitError, match=words):
            nstkit.StyleConfig(style_loss="remd", **options).resolved()
    with pytest.raises(NstkitError, match="content_loss mse"):
        nstkit.StyleConfig(content_loss="self_similarity", tile_size=64).resolved()
    assert nstkit.StyleConfig(content_loss="self_similarity").resolved().content_weight == 1e4


def test_normalize_gradients_gives_each_layer_a_pull_of_its_weight_whatever_the_scale():
    """After neural-style's -normalize_gradients: what reaches each layer of a term has a mean absolute value of the
    term's weight times the layer's share, per member; the loss values are the loss's own."""
    import tensorflow as tf

    layers = {"conv1_relu": 1.0, "conv2_block1_out": 3.0}  # style only there, content elsewhere: no layer shared
    configs = [_config(normalize_gradients=True, style_layers=layers, content_layers="conv3_block1_out",
                       style_weight=style_weight) for style_weight in (100.0, 7.0)]
    objective = Objective(configs)
    targets = objective.targets(_inputs(2))
    image = tf.constant(np.concatenate([preprocess(smooth_image(5)), preprocess(smooth_image(6))]))
    features = objective.features(image, native=True)
    style = next(term for term in objective.terms if term.name == "style")
    with tf.GradientTape() as tape:
        tape.watch(features)
        value = style.loss(objective.term_features(features, style), image, targets["style"])
        total = tf.reduce_sum(1e9 * value)  # any scale upstream is divided out
    gradients = tape.gradient(total, features)
    for name, weight in layers.items():
        pulls = tf.reduce_mean(tf.abs(gradients[name]), axis=[1, 2, 3]).numpy()
        np.testing.assert_allclose(pulls, [100.0 * weight / 4, 7.0 * weight / 4], rtol=1e-4)
    plain = Objective([_config(style_layers=layers, content_layers="conv3_block1_out", style_weight=100.0)])
    np.testing.assert_allclose(value.numpy()[:1], plain.values(image[:1], plain.targets(_inputs(1))).numpy()[:, 1],
                               rtol=1e-5)  # the value is untouched


def test_normalize_gradients_takes_its_own_default_weights_and_adam_and_refuses_what_it_breaks():
    from nstkit.core.config import GRADIENT_NORMALIZED_WEIGHTS, resolve_optimizer

    config = nstkit.StyleConfig(normalize_gradients=True, preset="vanilla").resolved()
    assert (config.content_weight, config.style_weight) == GRADIENT_NORMALIZED_WEIGHTS  # not the preset's 1e6
    chosen, why = resolve_optimizer(nstkit.StyleConfig(normalize_gradients=True))
    assert chosen.optimizer == "adam" and "normalize_gradients" in why
    for options, said in ((dict(optimizer="lbfgs"), "line search needs the loss's"),
                          (dict(precision="float16", optimizer="adam"), "divides out the loss scaling"),
                          (dict(normalize_style_layers=True), "drop one"),
                          (dict(tile_size=64, optimizer="adam"), "no normalize_gradients"),
                          (dict(temporal_weight=1.0, optimizer="adam"), "temporal loss .* keeps its raw scale")):
        with pytest.raises(NstkitError, match=said):
            nstkit.StyleConfig(normalize_gradients=True, **options).resolved()
