"""The optimisers (`nstkit.optim.optimizers`) on the run engine.

Adam's schedules (warm-up, decay), the image's moving average, and multi-scale stages by a factor; L-BFGS-B: a
known minimum, the box, the real objective against Adam, and what it refuses.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from nst_helpers import run_cli, smooth_image

import nstkit
from nstkit.core.errors import NstkitError
from nstkit.media.images import preprocess
from nstkit.optim.optimizers import LBFGSB, LearningRate

CONTENT, STYLE = smooth_image(1), smooth_image(2, 40, 40)
TINY = dict(max_dim=64, weights="random", preset="vanilla", precision="float32")  # the same on every CPU

# Adam's schedules: a 72x96 content, run end to end (slow: the oldest-TF CI phase skips them, Makefile).
WIDE = smooth_image(1, 72, 96)
WIDE_TINY = dict(max_dim=96, weights="random", preset="vanilla")


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
        nstkit.stylize(WIDE, STYLE, steps=2, optimizer="lbfgs", lr_decay=0.5, **WIDE_TINY)


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


# L-BFGS-B


def _minimise(x0, bounds, value_and_gradient, evaluations):
    """Drive `LBFGSB` as the engine does: take its point, answer with the loss and gradient there."""
    driver = LBFGSB(x0, bounds, evaluations)
    points = []
    try:
        for _ in range(evaluations):
            point = driver.next_point()
            if point is None:
                break
            points.append(point)
            driver.answer(*value_and_gradient(point.astype(np.float64)))
    finally:
        driver.close()
    return driver, points


def test_reaches_a_known_minimum_inside_the_box_and_on_its_edge():
    # f(x) = sum(w * (x - t)^2): its minimum is t, except where t lies outside the box [-1, 1]: there, the edge.
    rng = np.random.default_rng(0)
    target = rng.uniform(-2, 2, (2, 5, 3)).astype(np.float32)
    weights = rng.uniform(0.5, 20, target.shape)
    bounds = (np.full(target.shape, -1.0), np.full(target.shape, 1.0))

    def quadratic(x):
        return float(np.sum(weights * (x - target) ** 2)), 2 * weights * (x - target)

    driver, points = _minimise(np.zeros_like(target), bounds, quadratic, 200)
    best = min(points, key=lambda x: quadratic(x)[0])
    np.testing.assert_allclose(best, np.clip(target, -1, 1), atol=1e-4)
    assert all(p.min() >= -1 and p.max() <= 1 for p in points)  # every point asked for is inside the box
    assert not driver._thread.is_alive()


def test_close_ends_the_driver_thread_mid_run():
    driver = LBFGSB(np.ones(4, np.float32), None, 1000)
    point = driver.next_point()
    driver.answer(float(np.sum(point ** 2)), 2 * point)
    driver.next_point()  # scipy now waits for this point's answer
    driver.close()
    assert not driver._thread.is_alive()


def test_beats_adam_at_an_equal_number_of_evaluations_on_the_real_objective():
    adam = nstkit.stylize(CONTENT, STYLE, steps=30, **TINY)
    lbfgs = nstkit.stylize(CONTENT, STYLE, steps=30, optimizer="lbfgs", **TINY)
    assert lbfgs.record["steps_run"] == 30 and not lbfgs.stopped_early
    assert lbfgs.record["config"]["optimizer"] == "lbfgs"
    assert lbfgs.record["best_loss"] < 0.7 * adam.record["best_loss"], (lbfgs.record["best_loss"],
                                                                         adam.record["best_loss"])
    # The first evaluation is the start image, scored as Adam's first step scores it.
    assert lbfgs.history["total"][0] == pytest.approx(adam.history["total"][0], rel=1e-5)


def test_pixels_stay_in_range_and_the_best_evaluation_is_kept():
    seen = []
    result = nstkit.stylize(CONTENT, STYLE, steps=25, optimizer="lbfgs", callbacks=[
        lambda p: seen.append((p.losses["total"], p.image(as_float=True)))], **TINY)
    for _, rgb in seen:
        assert rgb.min() >= -1e-3 and rgb.max() <= 255 + 1e-3
    totals = [total for total, _ in seen]
    best = int(np.argmin(totals))
    assert result.record["best_loss"] == pytest.approx(totals[best], rel=1e-6)
    assert result.record["best_step"] == best  # evaluations before the best one
    np.testing.assert_array_equal(result.image, np.clip(np.rint(seen[best][1]), 0, 255).astype(np.uint8))


def test_same_seed_same_bytes():
    first = nstkit.stylize(CONTENT, STYLE, steps=12, optimizer="lbfgs", **TINY)
    second = nstkit.stylize(CONTENT, STYLE, steps=12, optimizer="lbfgs", **TINY)
    np.testing.assert_array_equal(first.image, second.image)


def test_a_stop_ends_the_run_and_its_driver():
    stop = threading.Event()
    result = nstkit.stylize(CONTENT, STYLE, steps=200, optimizer="lbfgs", stop_event=stop,
                            callbacks=[lambda p: p.step == 5 and stop.set()], **TINY)
    assert result.stopped_early and result.record["steps_run"] == 5
    assert not [t for t in threading.enumerate() if t.name == "nstkit-lbfgs"]


def test_coarse_levels_restart_lbfgs_at_each_stage():
    result = nstkit.stylize(smooth_image(1, 72, 96), STYLE, steps=12, coarse_levels=1, optimizer="lbfgs",
                            **{**TINY, "max_dim": 96})
    assert [stage["steps_run"] for stage in result.record["stages"]] == [6, 12]
    assert result.record["best_stage"] == 1


def test_resume_after_a_checkpoint_finishes_the_run(tmp_path):
    checkpoint = tmp_path / "out.checkpoint.npz"
    stop = threading.Event()
    stopped = nstkit.stylize(CONTENT, STYLE, steps=20, optimizer="lbfgs", stop_event=stop, checkpoint=checkpoint,
                             checkpoint_every=4, callbacks=[lambda p: p.step == 10 and stop.set()], **TINY)
    assert stopped.stopped_early and checkpoint.exists()
    resumed = nstkit.stylize(CONTENT, STYLE, steps=20, optimizer="lbfgs", checkpoint=checkpoint, resume=True, **TINY)
    assert resumed.record["resumed_at_step"] == 10 and resumed.record["steps_run"] == 20
    assert resumed.record["best_loss"] <= stopped.record["best_loss"]
    assert 10 in resumed.record["stages"][-1]["lbfgs_restarts"]  # the record says its memory restarted there
    # It restarted from the best image so far, not from a line-search trial: its first loss is that best.
    assert resumed.history["total"][10] == pytest.approx(stopped.record["best_loss"], rel=1e-6)
    assert not checkpoint.exists()


@pytest.mark.parametrize("options, words", [
    (dict(jitter=2), "jitter"),
    (dict(precision="float16"), "float16"),
    (dict(tile_size=32), "optimizer adam"),
])
def test_refuses_what_it_cannot_do_in_one_line(options, words):
    with pytest.raises(NstkitError, match=words):
        nstkit.stylize(CONTENT, STYLE, steps=2, optimizer="lbfgs", **{**TINY, **options})


def test_refuses_batches():
    with pytest.raises(NstkitError, match="one image at a time"):
        nstkit.stylize_batch(CONTENT, STYLE, [{"style_weight": 1e6}, {"style_weight": 1e8}], steps=2,
                             optimizer="lbfgs", **TINY)


def test_cli_flag_and_choices(tiny_pair, tmp_path):
    content, style = tiny_pair
    out = tmp_path / "out.png"
    done = run_cli("stylize", content, style, "-o", out, "--weights", "random", "--max-dim", "48", "--steps", "4",
                   "--optimizer", "lbfgs", "-q")
    assert done.returncode == 0, done.stderr
    bad = run_cli("stylize", content, style, "-o", tmp_path / "b.png", "--optimizer", "sgd")
    assert bad.returncode == 2 and "lbfgs" in bad.stderr and "Traceback" not in bad.stderr
