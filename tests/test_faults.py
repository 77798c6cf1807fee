"""No result lost: full, read-only and vanished folders, kills and signals at every phase, resumed runs.

Fault injection, through the CLI and the Python API as a user meets them. A
small tmpfs is mounted where the test may (root, Linux); otherwise the write
path is patched to raise the same errno. Tiny images, few steps.
"""

from __future__ import annotations

import concurrent.futures
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from nst_helpers import ROOT, run_cli, sha256, sigterm_at, smooth_image
from PIL import Image

import nstkit
from nstkit.core.errors import NstkitWarning
from nstkit.core.record import record_path
from nstkit.run.result import OutputNotSaved

pytestmark = pytest.mark.slow  # end to end; the oldest-TF CI phase skips it (Makefile)

FAST = ["--weights", "random", "--max-dim", "64", "-q"]
CONTENT, STYLE = smooth_image(1), smooth_image(2, 40, 40)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".probe"))]


@pytest.fixture
def env(tmp_path):
    """The CLI's environment, with rescues going to this test's own temp folder."""
    rescue = tmp_path / "system-tmp"
    rescue.mkdir()
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(rescue)}, rescue


def _one_error_line(done) -> str:
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    return lines[0]


# --------------------------------------------------------------------------- writes that fail


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENOENT])
def test_a_failed_write_keeps_the_result_elsewhere_and_says_where(tmp_path, monkeypatch, code):
    """Whatever the cause, the image and its record are saved somewhere else, and the message names both."""
    import nstkit.core.files as files

    result = nstkit.stylize(CONTENT, STYLE, steps=2, weights="random", max_dim=64)
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setattr(files.tempfile, "gettempdir", lambda: str(tmp_path / "system-tmp"))
    real_replace = os.replace

    def failing_replace(source, target):
        if Path(target).parent == folder:  # the folder asked for (and "beside it") refuses
            raise OSError(code, os.strerror(code))
        return real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(OutputNotSaved) as lost:
        result.save(folder / "out.png")
    message = str(lost.value)
    assert f"could not write {folder / 'out.png'} ({os.strerror(code)})" in message and "\n" not in message
    rescued = lost.value.saved_to
    assert rescued.parent == tmp_path / "system-tmp" / files.RESCUE_FOLDER and str(rescued) in message
    assert np.array_equal(np.asarray(Image.open(rescued)), result.image)
    record = json.loads(record_path(rescued).read_text())
    assert record["asked_for"] == str(folder / "out.png") and record["steps_run"] == 2
    assert _no_temp_files(folder) and not list(folder.iterdir())


def test_a_record_that_cannot_be_written_is_rescued_with_the_image(tmp_path, monkeypatch):
    import nstkit.core.files as files
    import nstkit.run.result as engine

    result = nstkit.stylize(CONTENT, STYLE, steps=1, weights="random", max_dim=64)
    monkeypatch.setattr(files.tempfile, "gettempdir", lambda: str(tmp_path / "system-tmp"))
    real = engine.write_record
    calls = []

    def failing_first(path, record):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, record)

    monkeypatch.setattr(engine, "write_record", failing_first)
    with pytest.raises(OutputNotSaved, match="saved .*out.png, but could not write its record .*out.png.json "
                                             r"\(No space left on device\); saved the result to"):
        result.save(tmp_path / "out.png")
    assert (tmp_path / "out.png").exists()  # the image itself made it


def test_cli_full_disk_at_the_end_rescues_the_image_and_exits_74(tmp_path, tiny_pair, monkeypatch):
    """A tmpfs with no room for the output: one line naming the file, the cause and where the result went."""
    import nstkit.core.files as files

    content, style = tiny_pair
    rescue = tmp_path / "system-tmp"
    rescue.mkdir()
    monkeypatch.setattr(files.tempfile, "gettempdir", lambda: str(rescue))
    full = tmp_path / "full"
    if not _mount_tmpfs(full, "64k"):
        pytest.skip("cannot mount a tmpfs here; test_a_failed_write_keeps_the_result... covers ENOSPC by patching")
    try:
        with open(full / "ballast", "wb", buffering=0) as handle:  # fill it: room for empty files, not an image
            try:
                while True:
                    handle.write(b"x" * 4096)
            except OSError:
                pass
        out = full / "out.png"
        done = run_cli("stylize", content, style, "-o", out, "--steps", "2", *FAST)
        assert done.returncode == 74, done.stderr
        line = _one_error_line(done)
        assert f"could not write {out}" in line and "No space left on device" in line
        rescued = list((rescue / "nstkit-rescued").glob("out.rescued-*.png"))
        assert len(rescued) == 1 and f"saved the result to {rescued[0]}" in line
        assert Image.open(rescued[0]).size == Image.open(content).size
        assert json.loads(record_path(rescued[0]).read_text())["steps_run"] == 2
        assert _no_temp_files(full)
    finally:
        _umount(full)


# What fails (os.replace ends every atomic write; os.unlink the checkpoint's removal), on which file, the exit
# status the CLI documents, and the one line that must say so.
WRITES = {
    "snapshot image": ("replace", "out_step00002.png", 0, "warning: could not write snapshot"),
    "snapshot record": ("replace", "out_step00002.png.json", 0, "warning: could not write snapshot"),
    "checkpoint": ("replace", "out.png.checkpoint.npz", 0, "warning: could not write checkpoint"),
    "checkpoint removal": ("unlink", "out.png.checkpoint.npz", 0, "warning: could not remove checkpoint"),
    "final image": ("replace", "out.png", 74, "error: could not write"),
    "final record": ("replace", "out.png.json", 74, "error: saved"),
}


@pytest.mark.parametrize("fault", list(WRITES))
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_fault_at_every_write_and_cleanup_loses_nothing_and_says_so_once(tmp_path, monkeypatch, capsys, fault,
                                                                           code):
    """Each of a run's writes and its cleanup failing (a full disk, a folder gone read-only): no traceback, the
    documented exit status, one line naming what failed, and the result whole somewhere it names."""
    from nstkit.core import files
    from nstkit.ui.cli import main

    operation, name, status, said = WRITES[fault]
    real = {"replace": os.replace, "unlink": os.unlink}[operation]

    def failing(*args, **kwargs):
        if Path(args[-1 if operation == "replace" else 0]).name == name:
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    (tmp_path / "system-tmp").mkdir()
    monkeypatch.setattr(files.tempfile, "gettempdir", lambda: str(tmp_path / "system-tmp"))
    monkeypatch.setattr(os, operation, failing)
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(CONTENT.astype(np.uint8)).save(content)
    Image.fromarray(STYLE.astype(np.uint8)).save(style)
    out = tmp_path / "out.png"
    returned = main(["stylize", str(content), str(style), "-o", str(out), "--steps", "4", "--save-every", "2",
                     "--checkpoint-every", "1", *FAST])
    err = capsys.readouterr().err
    assert returned == status and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"nstkit: {said}") and os.strerror(code) in lines[0], lines
    saved = out if status == 0 else Path(re.search(r"saved the result to (\S+) and its record", lines[0])[1])
    assert Image.open(saved).size == Image.open(content).size and saved.parent == tmp_path
    assert json.loads(record_path(saved).read_text())["steps_run"] == 4
    assert _no_temp_files(tmp_path)


def _started_until_second_snapshot(content, style, out: Path, steps: int, environment) -> subprocess.Popen:
    """``nstkit stylize`` started with a snapshot every step; returned once its second snapshot exists."""
    process = subprocess.Popen([sys.executable, "-m", "nstkit", "stylize", content, style, "-o", out, "--steps",
                                str(steps), "--save-every", "1", *FAST], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment, cwd=ROOT)
    deadline = time.time() + 180
    while not out.with_name("out_step00002.png").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    return process


def test_cli_folder_gone_or_read_only_mid_run_rescues_snapshots_warn_once(tmp_path, tiny_pair, env):
    """The output folder vanishes during the run: snapshots warn once, the run goes on, the end is rescued."""
    environment, rescue = env
    content, style = tiny_pair
    folder = tmp_path / "outputs"
    folder.mkdir()
    out = folder / "out.png"
    process = _started_until_second_snapshot(content, style, out, 60, environment)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 74, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 2 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("nstkit: warning: could not write snapshot") and "the run goes on" in lines[0]
    assert f"could not write {out}" in lines[1] and "does not exist" in lines[1]
    rescued = list((rescue / "nstkit-rescued").glob("out.rescued-*.png"))
    assert len(rescued) == 1 and json.loads(record_path(rescued[0]).read_text())["steps_run"] == 60


# --------------------------------------------------------------------------- kills, checkpoints, resume


def test_a_killed_run_resumes_to_the_same_bytes(tmp_path, tiny_pair, env):
    environment, _ = env
    content, style = tiny_pair
    run = ["--steps", "14", "--seed", "3", "--init", "noise", *FAST]
    whole = tmp_path / "whole.png"
    assert run_cli("stylize", content, style, "-o", whole, *run).returncode == 0  # in this process: see run_cli

    out = tmp_path / "killed.png"
    checkpoint = tmp_path / "killed.png.checkpoint.npz"
    process = subprocess.Popen([sys.executable, "-m", "nstkit", "stylize", content, style, "-o", out, *run,
                                "--checkpoint-every", "3", "--save-every", "1"], env=environment, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not (tmp_path / "killed_step00007.png").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no handler runs: only what was already on disk survives
    process.wait(30)
    assert checkpoint.exists() and not out.exists()
    kept = checkpoint.read_bytes()
    rerun = run_cli("stylize", content, style, "-o", out, *run)  # the same command, no --resume
    assert rerun.returncode == 2 and "continue it with resume (--resume), or start afresh with overwrite " \
        "(--overwrite)" in _one_error_line(rerun)
    assert checkpoint.read_bytes() == kept and not out.exists()  # the killed run's work is kept

    other = run_cli("stylize", content, style, "-o", out, *run, "--resume", "--style-weight", "1e8")
    assert other.returncode == 2 and "is of another run (style_weight was 10000000.0, now 100000000.0)" in \
        _one_error_line(other)
    resumed = run_cli("stylize", content, style, "-o", out, *run, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sha256(out) == sha256(whole)  # the steps an uninterrupted run takes, byte for byte
    record = json.loads(record_path(out).read_text())
    assert record["resumed_at_step"] in (6, 9) and record["steps_run"] == 14 and not checkpoint.exists()
    assert record["checkpoints"]["path"] == str(checkpoint)
    again = run_cli("stylize", content, style, "-o", out, *run, "--resume")
    assert again.returncode == 2 and "no checkpoint" in _one_error_line(again)


def test_python_resume_covers_tiles_and_coarse_stages(tmp_path):
    """Stopped inside a tiled stage (after a one-pass start), inside a fine stage, with schedules: the same bytes."""
    cases = [dict(tile_size=32, tile_overlap=8, tile_start_dim=32, tile_start_steps=3, learning_rate=5.0),
             # a coarse level, with the schedules: the rate follows the run's update count, the moving average is
             # saved (one case covers the plain coarse stages too: the same checkpoint path, more state in it)
             dict(coarse_levels=1, max_dim=128, warmup_steps=3, lr_decay=0.2, ema=0.7)]
    for options in cases:
        content = smooth_image(1, 96, 128) if options.get("coarse_levels") else CONTENT
        base = {"weights": "random", "max_dim": 64, "steps": 8, **options}
        whole = nstkit.stylize(content, STYLE, **base)
        checkpoint = tmp_path / "run.npz"

        def stop_at_5(progress):
            if progress.step == 5:
                progress.stop()

        stopped = nstkit.stylize(content, STYLE, checkpoint=checkpoint, checkpoint_every=2, callbacks=[stop_at_5],
                                 **base)
        assert stopped.stopped_early and checkpoint.exists()
        saved = np.load(checkpoint)
        assert json.loads(str(saved["meta"]))["stage"] == 1  # it knew which stage it was in
        resumed = nstkit.stylize(content, STYLE, checkpoint=checkpoint, resume=True, **base)
        assert resumed.image.tobytes() == whole.image.tobytes(), options
        assert resumed.history == whole.history and resumed.record["resumed_at_step"] == 5
        assert not checkpoint.exists()


def test_checkpoints_are_off_for_short_runs_on_for_long_ones_and_a_full_disk_only_warns(tmp_path, monkeypatch,
                                                                                      capsys):
    from nstkit.run.checkpoint import Checkpointing

    short = Checkpointing(tmp_path / "a.npz")
    short.decide(3, 10, 0.1)  # 1 s left: not worth it
    assert short.every == 0
    long = Checkpointing(tmp_path / "b.npz")
    long.decide(3, 10_000, 0.5)  # over an hour left: about once a minute
    assert long.every == 120
    assert Checkpointing(tmp_path / "c.npz", every=7).every == 7

    import nstkit.core.files as files

    def full(source, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.warns(NstkitWarning) as warned:
        result = nstkit.stylize(CONTENT, STYLE, steps=4, weights="random", max_dim=64,
                                checkpoint=tmp_path / "c.npz", checkpoint_every=1)
    assert result.record["steps_run"] == 4  # the run went on
    assert "could not write checkpoint" in result.record["checkpoints"]["failure"]
    warning = [str(w.message) for w in warned if "checkpoint" in str(w.message)]
    assert len(warning) == 1 and "No space left on device" in warning[0]


# --------------------------------------------------------------------------- signals at every phase

# phase: (module, class or "", attribute, which call, signal before or after it, what must come out)
PHASES = {
    "image checks": ("media.images", "", "load_image", 1, "before", "nothing"),
    "model build": ("objective.terms", "Objective", "__init__", 1, "after", "nothing"),
    "first trace": ("run.gradients", "WholeImage", "step", 1, "before", "early"),
    "a step": ("run.gradients", "WholeImage", "step", 3, "before", "early"),
    "checkpoint": ("run.checkpoint", "Checkpointing", "write", 1, "before", "early"),
    "save": ("run.result", "", "save_image", 1, "before", "finished"),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigterm_at_every_phase_gives_a_valid_output_or_one_line(tmp_path, tiny_pair, monkeypatch, phase):
    """In this process (`run_cli`, `sigterm_at`): the CLI's handlers, not the process, meet the signal;
    test_sigint_stops_with_exit_130 and test_cli's SIGTERM test send theirs to a process of its own."""
    content, style = tiny_pair
    module, owner, attribute, call, when, outcome = PHASES[phase]
    sigterm_at(monkeypatch, module, owner, attribute, call, when)
    out = tmp_path / "out.png"
    done = run_cli("stylize", content, style, "-o", out, "--steps", "6", "--checkpoint-every", "2", *FAST)
    assert done.returncode == 143, (phase, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and _no_temp_files(tmp_path), done.stderr
    if outcome == "nothing":
        assert "before" in _one_error_line(done) and "nothing" in done.stderr
        assert not out.exists() and not record_path(out).exists()
        return
    record = json.loads(record_path(out).read_text())  # a whole record: valid JSON, beside a whole image
    assert Image.open(out).size == Image.open(content).size
    if outcome == "early":
        assert record["stopped_early"] and record["stopped_by"] == "SIGTERM" and record["steps_run"] < 6
        assert "stopped (SIGTERM)" in done.stdout and "--resume" in done.stdout
    else:  # it came while the finished run was being saved: the save completed first
        assert not record["stopped_early"] and record["steps_run"] == 6


def test_sigint_stops_with_exit_130(tmp_path, tiny_pair, env):
    """Ctrl-C after a few steps: the best image so far is saved, and the exit status says it was interrupted."""
    environment, _ = env
    content, style = tiny_pair
    out = tmp_path / "out.png"
    process = _started_until_second_snapshot(content, style, out, 5000, environment)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    record = json.loads(record_path(out).read_text())
    assert record["stopped_by"] == "SIGINT" and record["stopped_early"]
    assert "--resume" in stdout and (tmp_path / "out.png.checkpoint.npz").exists()  # stopped: it can carry on


# --------------------------------------------------------------------------- sweeps


def test_a_killed_sweep_worker_fails_only_its_row_and_resume_runs_only_what_is_missing(tmp_path):
    import threading

    from nstkit.sweep import LocalPool

    grid = {"steps": [400, 2]}  # the first point runs long enough to be killed in the middle
    out = tmp_path / "sweep"
    pool = LocalPool(workers=1)
    killed = []

    def kill_the_first_job():
        deadline = time.time() + 120
        while not pool.worker_pids() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(8)  # the worker has imported TensorFlow and is stepping
        for pid in pool.worker_pids():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    killer = threading.Thread(target=kill_the_first_job)
    killer.start()
    try:
        result = nstkit.sweep(CONTENT, STYLE, grid, executor=pool, out_dir=out, weights="random", max_dim=48)
    finally:
        killer.join()
        pool.shutdown()
    assert killed
    first, second = result.rows
    assert "killed by SIGKILL (out of memory?)" in first["error"] and "\n" not in first["error"]
    assert second["error"] is None and second["steps_run"] == 2 and result.images[1] is not None
    for name in ("sweep.csv", "contact_sheet.png", "sweep.json"):
        assert (out / name).exists()  # the sweep went on and wrote its summary
    kept = out / f"{result.rows[1]['output'].rsplit('/', 1)[-1]}"
    before = kept.stat().st_mtime_ns

    seen = []
    with concurrent.futures.ThreadPoolExecutor(1) as here:  # in this process: no second TensorFlow import
        resumed = nstkit.sweep(CONTENT, STYLE, grid, out_dir=out, resume=True, weights="random", max_dim=48,
                               executor=here, on_row=seen.append)
    assert kept.stat().st_mtime_ns == before  # the finished point was kept, not run again
    assert [row["error"] for row in resumed.rows] == [None, None] and resumed.rows[0]["steps_run"] == 400
    assert len(seen) == 2 and resumed.images[1].tobytes() == result.images[1].tobytes()
