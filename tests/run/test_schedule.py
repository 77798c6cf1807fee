"""A run's plan: coarse-to-fine levels below the full size, a tiled run's start then its tiles, and a word
when fewer levels run than were asked for (#24: it was silent); and bfloat16 evaluations with a float32 finish
(``float32_finish``, #25 item 3): the stages it plans, the hand-over (where the loss stops falling, from the best
image, with L-BFGS's memory), the shared step budget, resume across it, and what it refuses."""

import threading
import warnings

import numpy as np
import pytest
from nst_helpers import smooth_image

import nstkit
import nstkit.run.loop
from nstkit import StyleConfig
from nstkit.core.config import resolve_optimizer
from nstkit.core.errors import NstkitError, NstkitWarning
from nstkit.run.loop import _flat
from nstkit.run.schedule import planned_steps, schedule

CONTENT, STYLE = smooth_image(1), smooth_image(2, 40, 40)


def test_coarse_levels_come_first_each_a_factor_smaller():
    config = StyleConfig(steps=10, coarse_levels=2).resolved()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NstkitWarning)  # all levels fit: no word
        stages = schedule(config, (256, 384))
    assert [stage.size for stage in stages] == [(64, 96), (128, 192), (256, 384)]
    assert [stage.steps for stage in stages] == [5, 5, 10] and stages[-1].scale == 1.0


def test_levels_that_would_be_too_small_are_dropped_with_one_warning():
    config = StyleConfig(steps=4, coarse_levels=8).resolved()
    with pytest.warns(NstkitWarning, match=r"coarse_levels 8: 1 coarse level\(s\) run, since level 2 would be under "
                                           r"32 px at 96x64 px") as caught:
        stages = schedule(config, (64, 96))
    assert [stage.size for stage in stages] == [(32, 48), (64, 96)] and len(caught) == 1


def test_a_tiled_run_starts_in_one_pass_below_its_tiles():
    config = StyleConfig(steps=3, tile_size=256, tile_start_dim=512, tile_start_steps=7).resolved()
    stages = schedule(config, (1024, 1536))
    assert [(stage.source, stage.size, stage.steps) for stage in stages] == [("image", (341, 512), 7),
                                                                             ("tiles", (1024, 1536), 3)]


# ------------------------------------------------------------------ bfloat16 evaluations with a float32 finish

FINISH = dict(max_dim=64, weights="random", preset="vanilla", optimizer="lbfgs", precision="bfloat16",
              float32_finish=True)
STEPS = 40


def test_a_float32_finish_ends_the_bfloat16_stage_when_flat_and_gets_what_it_left():
    config = StyleConfig(optimizer="lbfgs", precision="bfloat16", float32_finish=True, steps=100,
                         coarse_levels=1, coarse_steps=20).resolved()
    coarse, low, finish = schedule(config, (200, 300))
    assert (coarse.size, coarse.precision, coarse.until_flat) == ((100, 150), None, False)
    assert (low.size, low.steps, low.precision, low.until_flat, low.shares_steps) == ((200, 300), 100, None, True,
                                                                                      False)
    assert (finish.size, finish.steps, finish.precision, finish.shares_steps) == ((200, 300), 100, "float32", True)
    assert planned_steps([coarse, low, finish]) == 120  # the finish shares the full-size stage's 100
    for plain in (config.replace(precision="float32"), config.replace(float32_finish=False)):
        assert [stage.precision for stage in schedule(plain, (200, 300))] == [None, None]


def test_flat_means_the_best_loss_fell_less_than_one_percent_in_ten_steps():
    falling = [100.0 * 0.99 ** k for k in range(30)]  # 1% a step: ~10% in ten
    assert not _flat(falling) and not _flat(falling[:5] + [falling[4]] * 6)  # ten steps are needed to judge
    assert _flat(falling[:5] + [falling[4]] * 11)
    assert _flat(falling[:12] + [falling[11] * 0.995] * 10)  # 0.5% in ten
    assert not _flat(falling[:12] + [falling[11] * 0.98] * 10)  # 2% in ten
    # Rejected line-search trials (high losses) count for nothing: only the best so far does.
    assert not _flat(falling[:12] + [1e9] * 9 + [falling[11] * 0.98])
    assert _flat(falling[:12] + [1e9] + [falling[11] * 0.999] * 10)


@pytest.fixture(scope="module")
def hands_over_early():
    """Flat sooner (under 50% in ten evaluations), so a tiny run hands over within a few dozen evaluations."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nstkit.run.loop, "FLAT_GAIN", 0.5)
        yield


@pytest.fixture(scope="module")
def whole(hands_over_early):
    """One uninterrupted run, which the hand-over and resume tests all read."""
    return nstkit.stylize(CONTENT, STYLE, steps=STEPS, **FINISH)


def test_it_hands_over_where_the_loss_stops_falling_from_the_best_image_within_the_steps_asked(whole):
    low, finish = whole.record["stages"]
    handed_at = low["steps_run"]
    assert low["ended"] == "its loss stopped falling" and 10 < handed_at < STEPS
    assert "precision" not in low and finish["precision"] == "float32"
    assert finish["steps"] == finish["steps_run"] == STEPS - handed_at  # the steps it left, no more
    assert whole.record["steps_run"] == len(whole.history["total"]) == whole.record["steps_planned"] == STEPS
    totals = whole.history["total"]
    # The finish starts from the bfloat16 stage's best image (not its last trial, nor the start): its first loss,
    # in float32, is within bfloat16's rounding of that best.
    assert totals[handed_at] == pytest.approx(min(totals[:handed_at]), rel=0.05)
    assert whole.record["best_stage"] == 1 and whole.record["best_loss"] <= totals[handed_at]
    # With the memory it was handed, its first trial is a quasi-Newton step and lands near (measured: +1%);
    # a fresh search's first, steepest-descent step of 100 px overshot 16-fold.
    assert totals[handed_at + 1] < 2 * totals[handed_at] and finish["lbfgs"]["restarts"] == 0


def test_the_finish_takes_the_bfloat16_stages_memory():
    """`LBFGS.take_memory`: the new search's inverse-Hessian model is the old one's, and it starts unanchored."""
    import tensorflow as tf

    from nstkit.optim.lbfgs import LBFGS

    rng = np.random.default_rng(0)
    a = np.diag(np.linspace(1, 50, 16)).astype(np.float32)
    old_variable = tf.Variable(np.full(16, 0.5, np.float32))
    old = LBFGS(old_variable, None, memory=4, initial_step=1.0)
    for _ in range(12):  # wraps the ring of four pairs
        with tf.GradientTape() as tape:
            loss = 0.5 * tf.reduce_sum(old_variable * tf.linalg.matvec(a, old_variable))
        old.propose(loss, tape.gradient(loss, old_variable))
    new = LBFGS(tf.Variable(np.zeros(16, np.float32)), None, memory=4, initial_step=1.0)
    new.take_memory(old)
    v = rng.normal(size=16).astype(np.float32)
    np.testing.assert_allclose(new.inverse_hessian_times(v).numpy(), old.inverse_hessian_times(v).numpy(), rtol=1e-6)
    assert int(new.counters["started"].numpy()) == 0 and int(new.counters["pairs"].numpy()) == 4


@pytest.mark.parametrize("after", [0, 3], ids=["at the hand-over", "in the finish"])
def test_a_run_stopped_at_or_after_the_hand_over_resumes_to_the_same_bytes(whole, hands_over_early, after, tmp_path):
    stop_at = whole.record["stages"][0]["steps_run"] + after
    checkpoint, stop = tmp_path / "out.checkpoint.npz", threading.Event()
    stopped = nstkit.stylize(CONTENT, STYLE, steps=STEPS, stop_event=stop, checkpoint=checkpoint,
                             callbacks=[lambda p: p.step == stop_at and stop.set()], **FINISH)
    assert stopped.stopped_early and checkpoint.exists()
    resumed = nstkit.stylize(CONTENT, STYLE, steps=STEPS, checkpoint=checkpoint, resume=True, **FINISH)
    assert resumed.record["resumed_at_step"] == stop_at
    assert resumed.history["total"] == whole.history["total"]
    np.testing.assert_array_equal(resumed.image, whole.image)


def test_a_bfloat16_stage_that_never_flattens_leaves_the_finish_nothing_and_builds_no_float32_network():
    result = nstkit.stylize(CONTENT, STYLE, steps=8, **FINISH)  # 8 evaluations: too few to judge flat
    low, finish = result.record["stages"]
    assert low["steps_run"] == 8 and (finish["steps_run"], finish["step_traces"]) == (0, 0)


def test_auto_takes_lbfgs_for_bfloat16_with_a_finish_and_refuses_a_finish_without_lbfgs():
    config, reason = resolve_optimizer(StyleConfig(precision="bfloat16", float32_finish=True))
    assert config.optimizer == "lbfgs" and reason.startswith("auto: lbfgs")
    with pytest.raises(NstkitError, match="float32_finish finishes an L-BFGS run, and optimizer auto takes adam "
                                          "for a batch of 2"):
        resolve_optimizer(StyleConfig(precision="bfloat16", float32_finish=True), batch=2)
    with pytest.raises(NstkitError, match="optimizer adam has no such stage"):
        StyleConfig(optimizer="adam", float32_finish=True).resolved()
    with pytest.raises(NstkitError, match="L-BFGS has no float16"):
        StyleConfig(precision="float16", float32_finish=True).resolved()
