"""stylize_batch: several variants in one compiled step, each as if run alone."""

import numpy as np
import pytest
from nst_helpers import smooth_image

import nstkit
from nstkit.core.errors import NstkitError

TINY = dict(weights="random", max_dim=48, steps=4, optimizer="adam")  # a batch runs Adam; so its members alone
CONTENT, STYLE, OTHER_STYLE = smooth_image(1), smooth_image(2, 40, 40), smooth_image(3, 32, 48)
VARIANTS = [{"style_weight": 1e6}, {"style_weight": 1e8, "content_weight": 10.0},
            {"preset": "conv_relu:0.75"}, {"style": OTHER_STYLE, "init": "noise", "seed": 2}]


@pytest.fixture(scope="module")
def batch():
    seen = []
    results = nstkit.stylize_batch(CONTENT, STYLE, VARIANTS, callbacks=[lambda p: seen.append((p.step, p.member))],
                                   **TINY)
    return results, seen


@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_each_member_matches_its_own_run(batch, index):
    variant = dict(VARIANTS[index])
    alone = nstkit.stylize(CONTENT, variant.pop("style", STYLE), **variant, **TINY)
    member = batch[0][index]
    assert member.config == alone.config
    for term in ("total", "content", "style"):
        np.testing.assert_allclose(member.history[term], alone.history[term], rtol=2e-3, err_msg=term)
    assert np.abs(member.image.astype(int) - alone.image.astype(int)).mean() < 1.0


def test_members_differ_and_records_say_batch(batch):
    results, _ = batch
    assert len({r.image.tobytes() for r in results}) == len(VARIANTS)
    assert [r.record["batch"] for r in results] == [{"size": 4, "member": i} for i in range(4)]
    assert {r.record["step_traces"] for r in results} == {1}  # one compiled step for the whole batch
    assert results[3].record["inputs"]["style"]["array_shape"] == list(OTHER_STYLE.shape)


def test_callbacks_run_per_member_per_step(batch):
    _, seen = batch
    assert seen == [(step, member) for step in range(1, 5) for member in range(4)]


def test_a_variant_that_changes_the_step_is_refused():
    with pytest.raises(NstkitError, match="variant 2 changes learning_rate, which a batch must share"):
        nstkit.stylize_batch(CONTENT, STYLE, [{}, {"learning_rate": 5.0}], **TINY)
    with pytest.raises(NstkitError, match="a batch needs one size"):
        nstkit.stylize_batch(CONTENT, STYLE, [{}, {"content": smooth_image(4, 40, 40)}], **TINY)
    with pytest.raises(NstkitError, match="variant 2 changes seed, but the batch shares one sequence of tile offsets"):
        nstkit.stylize_batch(CONTENT, STYLE, [{}, {"seed": 1}], tile_size=32, tile_start_dim=0, **TINY)
    with pytest.raises(NstkitError, match="at least one variant"):
        nstkit.stylize_batch(CONTENT, STYLE, [], **TINY)


def test_best_images_are_kept_per_member():
    import tensorflow as tf

    from nstkit.run.state import kept_images

    images, best = tf.ones((3, 2, 2, 3)), tf.zeros((3, 2, 2, 3))
    mixed = kept_images(tf.constant([True, False, True]), images, best).numpy()
    assert mixed[:, 0, 0, 0].tolist() == [1.0, 0.0, 1.0]
    assert kept_images(tf.constant([True] * 3), images, best).numpy().min() == 1.0
    assert kept_images(tf.constant([False] * 3), images, best).numpy().max() == 0.0
