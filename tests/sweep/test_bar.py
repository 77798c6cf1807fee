"""A sweep's progress: one bar over every run's steps, corrected by what each run reports."""

from nstkit import StyleConfig
from nstkit.sweep import SweepJob
from nstkit.sweep.bar import SweepBar


def _jobs(steps):
    return [SweepJob(index, {"steps": s}, StyleConfig(steps=s)) for index, s in enumerate(steps)]


def test_the_bar_follows_the_runs_reports_and_their_ends(capsys):
    with SweepBar(_jobs([10, 20]), done_before=1) as bar:
        assert (bar.bar.total, bar.bar.n) == (30, 0)
        bar.step(1, 5, 25)  # the run says how many steps it really plans (coarse levels add some)
        assert (bar.bar.total, bar.bar.n) == (35, 5)
        bar.finished(0, {"steps_run": 10, "error": None})
        bar.finished(1, {"steps_run": None, "error": "it failed"})  # failed at step 5: its share counts as done
        assert bar.bar.n == bar.bar.total == 15 and (bar.ended, bar.runs, bar.failed) == (3, 3, 1)
    assert "runs 3/3 done, 1 failed" in capsys.readouterr().err
