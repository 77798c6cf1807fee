"""Checkpoints (`nstkit.run.checkpoint`): written atomically, read back whole, and only by the run they belong to.

Through `Checkpointing` and `signature` directly, on small arrays: no network runs here (a killed and resumed run end
to end is tests/test_faults.py's, and L-BFGS-B's tests/optim/test_optimizers.py's).
"""

import json

import numpy as np
import pytest

import nstkit.core.files as files
from nstkit.core.errors import NstkitError, NstkitWarning
from nstkit.run.checkpoint import (
    AUTO_AFTER_SECONDS,
    AUTO_INTERVAL_SECONDS,
    Checkpointing,
    Saved,
    checkpoint_path_for,
    signature,
)

CONFIGS = [{"style_weight": 1e6, "steps": 20}]
INPUTS = [{"content": {"sha256": "c0", "path": "a/content.png"}, "style": {"sha256": "51", "path": "a/style.png"}}]
STAGES = [{"size": [48, 64], "steps": 20, "source": "image"}]


def _saved(steps_done: int = 7, run: str | None = None) -> Saved:
    rng = np.random.default_rng(steps_done)
    meta = {"signature": run or signature(CONFIGS, INPUTS, STAGES), "configs": CONFIGS, "steps_done": steps_done,
            "steps_planned": 20, "history": {"total": [3.0, 2.5, 2.25]}}
    arrays = {"image": rng.normal(size=(1, 48, 64, 3)).astype(np.float32),
              "adam_m": rng.normal(size=(1, 48, 64, 3)).astype(np.float32),
              "adam_step": np.int64(steps_done), "best_loss": np.array([2.25], np.float32)}
    return Saved(meta, arrays)


def test_the_checkpoint_sits_beside_the_output():
    assert checkpoint_path_for("out/night.png").as_posix() == "out/night.png.checkpoint.npz"
    assert checkpoint_path_for("a.b.tif").as_posix() == "a.b.tif.checkpoint.npz"
    assert checkpoint_path_for("out.png") != checkpoint_path_for("out.tif")


def test_a_written_checkpoint_reads_back_whole(tmp_path):
    saved = _saved()
    keeper = Checkpointing(tmp_path / "run.checkpoint.npz", every=5)
    keeper.write(saved, steps_done=7)
    assert keeper.written == 1 and keeper.failure is None
    back = Checkpointing(tmp_path / "run.checkpoint.npz", resume=True).read(signature(CONFIGS, INPUTS, STAGES),
                                                                            CONFIGS)
    assert {k: v for k, v in back.meta.items() if k != "checkpoint_version"} == saved.meta
    assert sorted(back.arrays) == sorted(saved.arrays)
    for name, array in saved.arrays.items():
        np.testing.assert_array_equal(back.arrays[name], array)
        assert back.arrays[name].dtype == np.asarray(array).dtype, name


def test_a_resumed_run_counts_its_next_checkpoint_from_where_it_was(tmp_path):
    path = tmp_path / "run.checkpoint.npz"
    Checkpointing(path, every=5).write(_saved(steps_done=7), steps_done=7)
    resumed = Checkpointing(path, every=5, resume=True)
    resumed.read(signature(CONFIGS, INPUTS, STAGES), CONFIGS)
    assert [resumed.due(step) for step in (8, 11, 12)] == [False, False, True]


def test_every_n_steps_none_at_0_and_a_bad_interval_is_one_line(tmp_path):
    keeper = Checkpointing(tmp_path / "c.npz", every=3)
    assert [keeper.due(step) for step in range(1, 7)] == [False, False, True, True, True, True]
    keeper.write(_saved(3), steps_done=3)
    assert [keeper.due(step) for step in (4, 5, 6)] == [False, False, True]
    off = Checkpointing(tmp_path / "d.npz", every=0)
    assert not any(off.due(step) for step in range(100)) and not off.on_stop
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(NstkitError, match="checkpoint_every must be a whole number of steps >= 0"):
            Checkpointing(tmp_path / "d.npz", every=bad)


def test_by_default_only_runs_longer_than_a_few_minutes_checkpoint_about_once_a_minute(tmp_path):
    long_run = Checkpointing(tmp_path / "c.npz")
    long_run.decide(steps_done=2, steps_left=10_000, seconds_per_step=0.5)  # too early to know the step time
    assert long_run.every is None and not long_run.due(100)
    long_run.decide(steps_done=3, steps_left=10_000, seconds_per_step=0.5)
    assert long_run.every == round(AUTO_INTERVAL_SECONDS / 0.5) and long_run.on_stop
    short_run = Checkpointing(tmp_path / "c.npz")
    short_run.decide(steps_done=3, steps_left=int(AUTO_AFTER_SECONDS / 0.5) - 1, seconds_per_step=0.5)
    assert short_run.every == 0 and not short_run.due(10_000)
    chosen = Checkpointing(tmp_path / "c.npz", every=7)
    chosen.decide(steps_done=3, steps_left=10_000, seconds_per_step=0.5)
    assert chosen.every == 7  # the user's choice stands


def test_the_signature_names_what_decides_the_steps():
    base = signature(CONFIGS, INPUTS, STAGES)
    assert base == signature(json.loads(json.dumps(CONFIGS)), INPUTS, STAGES)  # the same run, the same name
    moved = [{name: {**value, "path": "elsewhere/" + name} for name, value in INPUTS[0].items()}]
    assert signature(CONFIGS, moved, STAGES) == base  # the same images in another folder
    assert signature([{**CONFIGS[0], "style_weight": 1e7}], INPUTS, STAGES) != base
    assert signature(CONFIGS, [{**INPUTS[0], "style": {"sha256": "52"}}], STAGES) != base
    assert signature(CONFIGS, INPUTS, [{**STAGES[0], "steps": 21}]) != base


def test_a_stopped_runs_checkpoint_is_neither_resumed_nor_replaced_unless_asked(tmp_path):
    """A rerun of a killed command without resume is refused (the checkpoint kept, byte for byte); overwrite
    starts afresh and removes it at once; both at once is a contradiction."""
    path = tmp_path / "run.checkpoint.npz"
    Checkpointing(path).write(_saved(), steps_done=7)
    kept = path.read_bytes()
    with pytest.raises(NstkitError) as refused:
        Checkpointing(path)
    assert str(refused.value) == (f"a stopped run's checkpoint is at {path} (step 7 of 20): continue it with resume "
                                  "(--resume), or start afresh with overwrite (--overwrite), which replaces it")
    assert path.read_bytes() == kept
    with pytest.raises(NstkitError, match="give one of them"):
        Checkpointing(path, resume=True, overwrite=True)
    path.write_bytes(kept[:100])
    with pytest.raises(NstkitError, match=r"\(damaged: it cannot be resumed\)"):
        Checkpointing(path)
    Checkpointing(path, overwrite=True)
    assert not path.exists()


def test_another_runs_checkpoint_is_refused_in_one_line_that_says_what_differs(tmp_path):
    path = tmp_path / "run.checkpoint.npz"
    Checkpointing(path).write(_saved(run=signature(CONFIGS, INPUTS, STAGES)), steps_done=7)
    now = [{**CONFIGS[0], "style_weight": 1e7}]
    with pytest.raises(NstkitError) as error:
        Checkpointing(path, resume=True).read(signature(now, INPUTS, STAGES), now)
    assert "is of another run (style_weight was 1000000.0, now 10000000.0)" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(NstkitError, match=r"another run \(1 batch members, now 2\)"):
        Checkpointing(path, resume=True).read("another", CONFIGS * 2)
    with pytest.raises(NstkitError, match=r"another run \(its input images or its schedule differ\)"):
        Checkpointing(path, resume=True).read(signature(CONFIGS, INPUTS, STAGES * 2), CONFIGS)


def test_no_checkpoint_a_damaged_one_and_another_versions_are_each_one_line(tmp_path):
    path = tmp_path / "run.checkpoint.npz"
    with pytest.raises(NstkitError, match="no checkpoint to resume at .*run it again without resume"):
        Checkpointing(path, resume=True).read("x", CONFIGS)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(NstkitError, match="is damaged .*delete it and run again without resume"):
        Checkpointing(path, resume=True).read("x", CONFIGS)
    np.savez(path, meta=np.array(json.dumps({"checkpoint_version": 0, "signature": "x"})))
    with pytest.raises(NstkitError, match="written by another nstkit version"):
        Checkpointing(path, resume=True).read("x", CONFIGS)


@pytest.mark.parametrize("kept", [0.5, 0.0])
def test_a_truncated_checkpoint_is_damaged_in_one_line(tmp_path, kept):
    path = tmp_path / "run.checkpoint.npz"
    Checkpointing(path).write(_saved(), steps_done=7)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * kept)])
    with pytest.raises(NstkitError, match="is damaged .*delete it and run again without resume"):
        Checkpointing(path, resume=True).read(signature(CONFIGS, INPUTS, STAGES), CONFIGS)
    assert path.exists()  # the damaged file is the user's to decide on: left in place


def test_a_failed_write_keeps_the_previous_checkpoint_and_says_so_once(tmp_path, monkeypatch):
    path = tmp_path / "run.checkpoint.npz"
    failures = []
    keeper = Checkpointing(path, every=2, on_failure=failures.append)
    keeper.write(_saved(steps_done=2), steps_done=2)
    before = path.read_bytes()

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)  # the new file is written in full; the rename fails
    keeper.write(_saved(steps_done=4), steps_done=4)
    assert path.read_bytes() == before  # the previous checkpoint, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left beside it
    assert failures == [f"could not write checkpoint {path} (No space left on device); the run goes on without them"]
    assert keeper.failure == failures[0] and keeper.written == 1
    assert not keeper.due(100) and not keeper.on_stop  # no more tries this run
    monkeypatch.undo()
    back = Checkpointing(path, resume=True).read(signature(CONFIGS, INPUTS, STAGES), CONFIGS)
    assert back.meta["steps_done"] == 2


WRITER = """
import sys
import numpy as np
from nstkit.run.checkpoint import Checkpointing, Saved

keeper = Checkpointing(sys.argv[1], every=1)
image = np.empty((1, 1024, 1024, 3), np.float32)  # 12 MB: most of the loop's time is spent writing
for step in range(1, 10 ** 6):
    image.fill(step)
    keeper.write(Saved({"signature": "s", "configs": [], "steps_done": step}, {"image": image}), steps_done=step)
"""


def test_a_run_killed_while_writing_leaves_a_whole_checkpoint(tmp_path):
    """SIGKILL a process that writes checkpoints back to back, the moment its file is seen part-written (which an
    atomic write never shows), else after a second of writing: the checkpoint left is whole, and consistent."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from nst_helpers import ROOT

    reference = tmp_path / "reference.npz"
    Checkpointing(reference).write(Saved({"signature": "s", "configs": [], "steps_done": 1},
                                         {"image": np.zeros((1, 1024, 1024, 3), np.float32)}), steps_done=1)
    whole = reference.stat().st_size
    path = tmp_path / "run.checkpoint.npz"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT)
    try:
        deadline = time.time() + 60
        while not path.exists() and time.time() < deadline and writer.poll() is None:
            time.sleep(0.001)
        assert path.exists(), "the writer wrote no checkpoint"
        deadline = time.time() + 1.0
        while time.time() < deadline and path.stat().st_size > whole - 100:
            pass
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    back = Checkpointing(path, resume=True).read("s", [])
    assert back.meta["steps_done"] >= 1
    assert (back.arrays["image"] == back.meta["steps_done"]).all()  # the image of the step its meta names


def test_a_checkpoint_that_cannot_be_removed_costs_one_warning_not_the_result(tmp_path, monkeypatch, capsys):
    """The folder turned read-only during the run: the result comes back, the checkpoint stays, one line says so."""
    import pathlib

    import nstkit
    from nst_helpers import smooth_image

    path = tmp_path / "run.checkpoint.npz"
    real_unlink = pathlib.Path.unlink

    def refuse(self, missing_ok=False):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", refuse)
    with pytest.warns(NstkitWarning) as warned:
        result = nstkit.stylize(smooth_image(1), smooth_image(2, 40, 40), steps=2, max_dim=48, weights="random",
                                checkpoint=path, checkpoint_every=1, progress=False)
    assert result.record["steps_run"] == 2 and path.exists()
    assert "could not remove checkpoint" in result.record["checkpoints"]["failure"]
    warnings = [str(w.message) for w in warned if "could not remove checkpoint" in str(w.message)]
    assert len(warnings) == 1 and "Permission denied" in warnings[0] and "delete it by hand" in warnings[0]
