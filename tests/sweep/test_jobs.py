"""Running a sweep's jobs: the local pool's workers import the main script again ("spawn"), so a sweep at a
script's top level without a ``__main__`` guard is refused at once (it used to hang)."""

import subprocess
import sys
import textwrap


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_only_an_unguarded_top_level_call_is_refused(tmp_path):
    probe = """
        from nstkit.sweep.jobs import check_main_guard
        {call}
        print("allowed")
    """
    unguarded = _run(tmp_path, probe.format(call="check_main_guard()"))
    assert unguarded.returncode == 1 and 'if __name__ == "__main__":' in unguarded.stderr.splitlines()[-1]
    guarded = _run(tmp_path, probe.format(call='if __name__ == "__main__":\n            check_main_guard()'))
    assert guarded.returncode == 0 and guarded.stdout.strip() == "allowed", guarded.stderr
    in_a_function = _run(tmp_path, probe.format(call="def main():\n            check_main_guard()\n        main()"))
    assert in_a_function.returncode == 0, in_a_function.stderr  # the script's choice: spawn never calls main()
