"""The optimisers (`nstkit.optim.optimizers`) on the run engine.

Adam's schedules (warm-up, decay), the image's moving average, and multi-scale stages by a factor (L-BFGS is
tests/optim/test_lbfgs.py's).
"""

from __future__ import annotations

import numpy as np
import pytest
from nst_helpers import smooth_image

import nstkit
from nstkit.core.errors import NstkitError
from nstkit.media.images import preprocess
from nstkit.optim.optimizers import LearningRate

STYLE = smooth_image(2, 40, 40)

# Adam's schedules: a 72x96 content, run end to end (slow: the oldest-TF CI phase skips them, Makefile).
WIDE = smooth_image(1, 72, 96)
WIDE_TINY = dict(max_dim=96, weights="random", preset="vanilla", optimizer="adam")  # the tests of Adam


# Adam: its schedules and the image's moving average

def test_learning_rate_warms_up_linearly_then_decays_geometrically_to_its_share():
    rate = LearningRate(20.0, warmup=4, decay=0.1, total=24)
    assert [rate.numpy_at(k) for k in range(4)] == pytest.approx([5.0, 10.0, 15.0, 20.0])
    assert rate.numpy_at(23) == pytest.approx(2.0)  # the last update: 20 * 0.1
    middle = rate.numpy_at(3 + 10)  # half way through the decay: 20 * 0.1 ** 0.5
    assert middle == pytest.approx(20.0 * 0.1 ** 0.5, rel=1e-5)
    assert LearningRate(20.0).constant and not rate.constant


def _first_update_size(**options) -> float:
    images = []
    nstkit.stylize(WIDE, STYLE, steps=1, callbacks=[lambda p: images.append(p.image(as_float=True))],
                   **WIDE_TINY, **options)
    return float(np.abs(preprocess(images[0]) - preprocess(WIDE.astype(np.float32))).max())


@pytest.mark.slow
def test_warm_up_shrinks_the_first_step_by_its_length():
    # Adam's first step moves each pixel by about the learning rate (m / sqrt(v) is ±1 after one gradient).
    plain, warmed = _first_update_size(), _first_update_size(warmup_steps=10)
    assert plain == pytest.approx(20.0, rel=0.05)
    assert warmed == pytest.approx(2.0, rel=0.05)


@pytest.mark.slow
def test_the_default_schedule_is_the_seeds_update():
    """The seed's loop, written out independently: `keras.optimizers.Adam(lr=20, beta_1=0.99, epsilon=0.1)` on the
    caffe-BGR pixels, clipped after every update (original-settings.md). A default run follows it step for step:
    no warm-up, no decay and no moving average unless asked for."""
    import keras
    import tensorflow as tf

    from nstkit.media.images import deprocess, pixel_bounds
    from nstkit.objective.terms import Objective, StageInputs

    images = []
    run = nstkit.stylize(WIDE, STYLE, steps=6, precision="float32",
                         callbacks=[lambda p: images.append(p.image(as_float=True))], **WIDE_TINY)
    objective = Objective([run.config])
    start = preprocess(WIDE.astype(np.float32))
    targets = objective.targets(StageInputs(content=start, styles=[[STYLE]], blends=[[1.0]]))
    weights = tf.constant(objective.weights(), tf.float32)
    pixels, (low, high) = tf.Variable(start), pixel_bounds()
    adam = keras.optimizers.Adam(learning_rate=20.0, beta_1=0.99, beta_2=0.999, epsilon=0.1)
    losses, seed_images = [], []
    for _ in range(6):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(weights * objective.values(pixels, targets))
        adam.apply_gradients([(tape.gradient(loss, pixels), pixels)])
        pixels.assign(tf.clip_by_value(pixels, low, high))
        losses.append(float(loss))
        seed_images.append(deprocess(pixels.numpy()))
    np.testing.assert_allclose(run.history["total"], losses, rtol=1e-5)
    for step, (image, seed_image) in enumerate(zip(images, seed_images), 1):
        assert np.abs(image - seed_image).max() < 0.05, step  # float32 round-off, not a different update
    assert "ema_kept" not in run.record["stages"][-1]


@pytest.mark.slow
def test_the_moving_average_is_kept_when_it_beats_every_step():
    # From noise, at a learning rate too high, the iterates bounce around the way down; their average
    # moves steadily, and wins.
    from nstkit.media.images import deprocess, to_uint8

    after_updates = []
    decay = 0.8
    result = nstkit.stylize(WIDE, STYLE, steps=15, learning_rate=80.0, ema=decay, init="noise",
                            callbacks=[lambda p: after_updates.append(preprocess(p.image(as_float=True)))], **WIDE_TINY)
    assert result.record["stages"][-1]["ema_kept"] is True
    assert result.record["best_loss"] < min(result.history["total"])  # better than any step's image
    start = np.random.default_rng(0).uniform(0, 255, WIDE.shape).astype(np.float32)  # init "noise", seed 0
    average = preprocess(start)
    for image in after_updates:
        average = decay * average + (1 - decay) * image
    expected = to_uint8(deprocess(average[None])[0])
    assert np.abs(result.image.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.slow
def test_no_average_no_ema_entry_and_lbfgs_refuses_adam_schedules():
    assert "ema_kept" not in nstkit.stylize(WIDE, STYLE, steps=2, **WIDE_TINY).record["stages"][-1]
    with pytest.raises(NstkitError, match="lr_decay=0.5"):
        nstkit.stylize(WIDE, STYLE, steps=2, lr_decay=0.5, **{**WIDE_TINY, "optimizer": "lbfgs"})


@pytest.mark.slow
def test_multi_scale_by_a_root_two_factor_with_its_own_steps():
    result = nstkit.stylize(WIDE, STYLE, steps=6, coarse_levels=2, coarse_factor=2 ** 0.5, coarse_steps=3, **WIDE_TINY)
    stages = result.record["stages"]
    assert [stage["size"] for stage in stages] == [[36, 48], [51, 68], [72, 96]]
    assert [stage["steps_run"] for stage in stages] == [3, 3, 6]
    with pytest.raises(NstkitError, match="above 1"):
        nstkit.stylize(WIDE, STYLE, steps=2, coarse_levels=1, coarse_factor=1.0, **WIDE_TINY)
    with pytest.raises(NstkitError, match="coarse_levels is 0"):  # never silently ignored
        nstkit.stylize(WIDE, STYLE, steps=2, coarse_steps=3, **WIDE_TINY)


@pytest.mark.slow
def test_batch_members_keep_their_own_warm_up():
    # preserve_color may vary in a batch, and it decides the default warm-up: each member follows its own.
    variants = [{"preserve_color": "luminance"}, {"preserve_color": "none"}]
    batch = nstkit.stylize_batch(WIDE, STYLE, variants, steps=4, **WIDE_TINY)
    assert [r.config.warmup_steps for r in batch] == [10, 0]
    for variant, member in zip(variants, batch):
        alone = nstkit.stylize(WIDE, STYLE, steps=4, **WIDE_TINY, **variant)
        np.testing.assert_allclose(member.history["total"], alone.history["total"], rtol=1e-4)
