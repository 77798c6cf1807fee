"""The expected run time: from a run's own warm-up steps, looking ahead over its stages; said before long runs.

A fake clock drives the estimate, so nothing here is timed.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from nst_helpers import smooth_image

from nstkit.api import progress
from nstkit.ui import cli
from nstkit.run.schedule import Stage


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _feed(estimate, clock, schedule, seconds_per_step):
    """Call ``estimate`` as the engine's callbacks are called: once per step, over the stages given a speed."""
    done, seen = 0, []
    for index, (stage, seconds) in enumerate(zip(schedule, seconds_per_step)):
        for in_stage in range(1, stage.steps + 1):
            clock.now += seconds
            done += 1
            estimate(SimpleNamespace(member=0, stage=index, step=done, stage_step=in_stage, schedule=schedule))
            seen.append(estimate.seconds_left)
    return seen


def test_estimate_from_warm_up_scales_later_stages_by_area(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    schedule = [Stage((32, 32), 10), Stage((64, 64), 10)]
    estimate = progress.RunTimeEstimate(warm_up=4)
    seen = _feed(estimate, clock, schedule, [0.5])
    assert seen[:4] == [None] * 4  # the first step (the trace) gives no interval; four more are needed
    # After 5 steps of stage 0 at 0.5 s: 5 left there, then 10 at four times the area.
    assert seen[4] == pytest.approx(5 * 0.5 + 10 * 0.5 * 4)
    assert seen[9] == pytest.approx(10 * 0.5 * 4)
    assert estimate.line().startswith("about 20 s left (0.500 s/step")


def test_a_new_stage_measures_afresh(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    schedule = [Stage((32, 32), 6), Stage((64, 64), 8)]
    estimate = progress.RunTimeEstimate(warm_up=2)
    seen = _feed(estimate, clock, schedule, [0.1, 2.0])
    assert seen[6 + 2] == pytest.approx(5 * 2.0)  # stage 1, step 3: its own speed, not stage 0's


def test_cli_says_the_expected_time_once_before_a_long_run(tiny_pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "LONG_RUN_SECONDS", 0.0)  # every run counts as long here
    content, style = tiny_pair
    code = cli.main(["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), "--weights", "random",
                     "--max-dim", "48", "--steps", "8"])
    assert code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "s/step measured here" in line]
    assert len(lines) == 1 and lines[0].startswith("nstkit: about "), lines


def test_cli_warns_when_no_step_beat_the_start(tiny_pair, tmp_path, capsys):
    content, style = tiny_pair
    # A huge learning rate throws every step far from the content start, which stays the best image.
    code = cli.main(["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"), "--weights", "random",
                     "--max-dim", "48", "--steps", "3", "--lr", "1e6", "--style-weight", "1e-9", "-q"])
    assert code == 0
    err = capsys.readouterr().err
    assert "no step improved on the start image in 3 steps" in err and "--lr" in err, err


def test_no_warning_when_steps_improved(tiny_pair):
    import nstkit

    content, style = tiny_pair
    result = nstkit.stylize(smooth_image(1), smooth_image(2, 40, 40), steps=5, max_dim=48, weights="random",
                            optimizer="lbfgs")
    assert result.record["best_step"] > 0 and result.no_improvement is None
