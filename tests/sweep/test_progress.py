"""A sweep's progress: one bar over every run's steps, corrected by what each run reports, and the refusal of
a sweep at a script's top level without a ``__main__`` guard (which used to hang)."""

import subprocess
import sys
import textwrap

from nstkit import StyleConfig
from nstkit.sweep import SweepJob
from nstkit.sweep.progress import SweepBar


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


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_only_an_unguarded_top_level_call_is_refused(tmp_path):
    probe = """
        from nstkit.sweep.progress import check_main_guard
        {call}
        print("allowed")
    """
    unguarded = _run(tmp_path, probe.format(call="check_main_guard()"))
    assert unguarded.returncode == 1 and 'if __name__ == "__main__":' in unguarded.stderr.splitlines()[-1]
    guarded = _run(tmp_path, probe.format(call='if __name__ == "__main__":\n            check_main_guard()'))
    assert guarded.returncode == 0 and guarded.stdout.strip() == "allowed", guarded.stderr
    in_a_function = _run(tmp_path, probe.format(call="def main():\n            check_main_guard()\n        main()"))
    assert in_a_function.returncode == 0, in_a_function.stderr  # the script's choice: spawn never calls main()
