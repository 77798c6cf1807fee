"""Sweeps: the grid, up-front validation, per-job failures, the same pixels on any executor, files, the CLI."""

import concurrent.futures
import csv
import errno
import json
import os
import socket
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from nst_helpers import run_cli, sha256, smooth_image
from PIL import Image

import nstkit
from nstkit.core.errors import NstkitError
from nstkit.core.record import record_path
from nstkit.sweep import (
    FIELDS,
    METRIC_COLUMNS,
    SHEET_GAP,
    expand_grid,
    parse_grid,
    thumbnail,
)

# Adam: with 2 steps, L-BFGS's first trial is a normalised steepest-descent step, the same image at both style weights.
TINY = {"weights": "random", "max_dim": 48, "steps": 2, "optimizer": "adam"}
CONTENT, STYLE = smooth_image(1, 32, 40), smooth_image(2, 32, 32)
GRID = {"style_weight": [1e6, 1e7]}
TIMING = ("seconds_per_step", "wall_time_s")


class RefusingExecutor(concurrent.futures.Executor):
    """Fails the test if anything is submitted: validation must come first."""

    submitted = 0

    def submit(self, fn, *args, **kwargs):
        self.submitted += 1
        raise AssertionError("a job was submitted before the grid was validated")


@pytest.fixture(scope="module")
def local():
    """The default executor. One worker (the default on this 2-core box) gets every core, TF's default here."""
    return nstkit.sweep(CONTENT, STYLE, GRID, workers=1, **TINY)


@pytest.fixture(scope="module")
def threaded(tmp_path_factory):
    """Jobs in this process, two of them with a weights file that does not exist."""
    missing = str(tmp_path_factory.mktemp("weights") / "missing.h5")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        result = nstkit.sweep(CONTENT, STYLE, {**GRID, "weights": ["random", missing]}, executor=pool,
                              max_dim=48, steps=2)
        assert pool.submit(int, "7").result() == 7  # a caller's executor is left running
    return result


def test_the_grid_expands_in_product_order_last_key_fastest():
    jobs = expand_grid({"style_weight": [1e6, 1e7], "preset": ["robust", "vanilla"], "steps": np.array([2])},
                       weights="random")
    assert [job.params for job in jobs] == [
        {"style_weight": 1e6, "preset": "robust", "steps": 2}, {"style_weight": 1e6, "preset": "vanilla", "steps": 2},
        {"style_weight": 1e7, "preset": "robust", "steps": 2}, {"style_weight": 1e7, "preset": "vanilla", "steps": 2}]
    assert [job.index for job in jobs] == [0, 1, 2, 3]
    assert type(jobs[0].params["steps"]) is int  # numpy scalars become Python numbers StyleConfig accepts
    assert all(job.config.weights == "random" and job.config.steps == 2 for job in jobs)
    assert jobs[3].config.preset == "vanilla" and jobs[3].config.style_weight == 1e7
    stems = [job.file_stem() for job in jobs]
    assert len(set(stems)) == 4 and stems[1] == "001_style-weight-1e+06-preset-vanilla-steps-2"
    assert not {"job", *METRIC_COLUMNS, "error", "output"} & set(FIELDS)  # a row's columns never collide


@pytest.mark.parametrize("grid, options, message", [
    ({"style_wieght": [1e6]}, {}, "did you mean style_weight"),
    ({"style_weight": []}, {}, "grid['style_weight'] is empty"),
    ({"style_weight": 1e6}, {}, "must be a list of values"),
    ({"preset": "robust"}, {}, "must be a list of values"),
    ({"style_weight": [1e6, float("nan")]}, {}, "style_weight must be a finite number"),
    ({"steps": [2, 0]}, {}, "steps must be a whole number >= 1"),
    ({"preset": ["robust", "robst"]}, {}, "unknown preset"),
    ({"style_layers": ["conv1_relu", "conv4_block2_2_rellu"]}, {}, "did you mean conv4_block2_2_relu"),
    ({"style_blend": [[0.5, 0.5]]}, {}, "style_blend has 2 weights for 1 style image"),
    ({"steps": [2]}, {"steps": 3}, "steps is both in the grid and given as an option"),
    ({}, {}, "the grid is empty"),
])
def test_a_bad_grid_is_refused_before_any_job_is_submitted(grid, options, message):
    executor = RefusingExecutor()
    with pytest.raises(NstkitError) as error:
        nstkit.sweep(CONTENT, STYLE, grid, executor=executor,
                     **{key: value for key, value in TINY.items() if key not in grid}, **options)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert executor.submitted == 0


def test_a_grid_over_adams_fields_runs_adam_at_every_point():
    """Optimizer "auto" would take L-BFGS for the point at Adam's default rate and Adam for the others: a grid
    over Adam's own fields compares Adam runs, so every point is Adam; any other grid keeps "auto"."""
    jobs = expand_grid({"learning_rate": [5.0, 20.0, 80.0]})
    assert {job.config.optimizer for job in jobs} == {"adam"}
    assert {job.config.optimizer for job in expand_grid({"style_weight": [1e6, 1e7]})} == {"auto"}
    mixed = expand_grid({"optimizer": ["lbfgs", "adam"], "epsilon": [0.1]})
    assert [job.config.optimizer for job in mixed] == ["lbfgs", "adam"]


def test_grid_text_takes_each_field_type():
    grid = parse_grid(["style-weight=1e6,1e7", "steps=2,3", "normalize_style_layers=true,no", "preset=robust",
                       "style_layers=conv1_relu,conv2_block1_out:2;conv3_block1_out", "style_blend=0.7,0.3"])
    assert grid == {"style_weight": [1e6, 1e7], "steps": [2, 3], "normalize_style_layers": [True, False],
                    "preset": ["robust"], "style_layers": ["conv1_relu,conv2_block1_out:2", "conv3_block1_out"],
                    "style_blend": [[0.7, 0.3]]}
    assert type(grid["steps"][0]) is int
    for specs, message in [(["steps=2.5"], "steps must be a whole number, got 2.5"), (["style_weight=x"], "not a number"),
                           (["steps"], "must be FIELD=VALUE"), (["steps=2,,3"], "empty value"),
                           (["steps=2", "steps=3"], "given twice"), (["stepz=2"], "did you mean steps")]:
        with pytest.raises(NstkitError, match=message):
            parse_grid(specs)


def test_a_failing_job_gives_an_error_row_and_the_others_finish(threaded):
    rows = threaded.rows
    missing = threaded.grid["weights"][1]
    assert [(row["job"], row["style_weight"], row["weights"]) for row in rows] == [
        (0, 1e6, "random"), (1, 1e6, missing), (2, 1e7, "random"), (3, 1e7, missing)]
    for index in (1, 3):
        assert "weights file not found" in rows[index]["error"] and "\n" not in rows[index]["error"]
        assert threaded.images[index] is None and threaded.records[index] is None
        assert all(rows[index][column] is None for column in METRIC_COLUMNS if column != "host")
    for index in (0, 2):
        row = rows[index]
        assert row["error"] is None and row["steps_run"] == 2 and row["host"] == socket.gethostname()
        assert row["weights_description"].startswith("random (seeded 0")
        assert row["final_total"] == threaded.records[index]["final_losses"]["total"]
        assert row["best_loss"] <= row["final_total"] and row["seconds_per_step"] > 0
        assert threaded.images[index].shape == CONTENT.shape and threaded.images[index].dtype == np.uint8
    assert rows[2]["final_style"] > 5 * rows[0]["final_style"]  # ten times the weight shows in the term
    assert [row["error"] is not None for row in threaded.failed] == [True, True]
    table = threaded.table().splitlines()
    assert len(table) == 2 + 4 and table[0].startswith("| job | style_weight | weights |")
    assert "weights file not found" in table[3] and "| error |" in table[0]


def test_a_stopped_pool_runs_no_queued_job(monkeypatch):
    """Ctrl-C / SIGTERM set the pool's shared flag: a job a worker has already taken off the queue is not run."""
    import threading

    sweep_module = sys.modules["nstkit.sweep.jobs"]  # `nstkit.sweep` is the function
    stop = threading.Event()
    stop.set()
    monkeypatch.setattr(sweep_module, "_stop_jobs", stop)
    outcome = sweep_module.run_job(expand_grid(GRID, **TINY)[1], CONTENT, STYLE)
    assert outcome.result is None and outcome.row["error"] == "not run: the sweep was stopped"
    assert outcome.row["job"] == 1 and outcome.row["style_weight"] == 1e7


def test_the_default_pool_gives_the_same_pixels_as_stylize_here(local):
    assert [row["style_weight"] for row in local.rows] == [1e6, 1e7]
    assert all(row["error"] is None for row in local.rows)
    direct = nstkit.stylize(CONTENT, STYLE, style_weight=1e7, **TINY)
    # Exactly equal: the one worker gets cpu_count // workers = all cores as intra-op threads, which is what TF
    # gives this process by default. The thread count decides the order of float sums: on this 2-core box a
    # run at 1 thread ends with a total loss about 2.5e-7 (relative) off the 2-thread one.
    assert np.array_equal(local.images[1], direct.image)
    assert local.rows[1]["final_total"] == direct.record["final_losses"]["total"]
    assert local.rows[1]["best_loss"] == direct.record["best_loss"]
    assert not np.array_equal(local.images[0], local.images[1])


@pytest.mark.slow
def test_a_dask_cluster_runs_the_same_sweep_unchanged(local):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        on_dask = nstkit.sweep(CONTENT, STYLE, GRID, executor=client.get_executor(), **TINY)
        worker_loaded_tf = client.run(lambda: "tensorflow" in sys.modules)
    assert list(worker_loaded_tf.values()) == [True]  # the jobs ran in the worker process
    assert [{k: v for k, v in row.items() if k not in TIMING} for row in on_dask.rows] == \
        [{k: v for k, v in row.items() if k not in TIMING} for row in local.rows]
    for image, expected in zip(on_dask.images, local.images):
        assert np.array_equal(image, expected)


def test_save_writes_the_table_the_contact_sheet_and_the_record(local, threaded, tmp_path):
    csv_path, sheet_path, json_path = local.save(tmp_path)
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["style_weight"]) for row in rows] == [1e6, 1e7] and rows[0]["error"] == ""
    assert float(rows[1]["final_total"]) == local.rows[1]["final_total"]
    summary = json.loads(json_path.read_text())
    assert summary["grid"] == [{"field": "style_weight", "values": [1e6, 1e7]}]
    assert summary["config"]["weights"] == "random" and summary["config"]["steps"] == 2
    assert summary["rows"][1]["best_loss"] == local.rows[1]["best_loss"]
    assert summary["inputs"]["content"] == {"array_shape": [32, 40, 3]}
    with pytest.raises(NstkitError, match="already holds sweep.csv"):
        local.save(tmp_path)
    assert local.save(tmp_path, overwrite=True) == [csv_path, sheet_path, json_path]

    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    assert np.array_equal(sheet, local.contact_sheet())
    for result, columns in ((local, 2), (threaded, 2)):  # one row of two; two rows of two, failures grey
        sheet = result.contact_sheet(thumb=64)
        rows = -(-len(result.rows) // columns)
        cell_height = (sheet.shape[0] - SHEET_GAP) // rows
        assert sheet.shape[1] == SHEET_GAP + columns * (64 + SHEET_GAP)
        for index, image in enumerate(result.images):
            top, left = SHEET_GAP + index // columns * cell_height, SHEET_GAP + index % columns * (64 + SHEET_GAP)
            cell = sheet[top:top + 64, left:left + 64]
            if image is None:
                assert (cell == 224).mean() > 0.8  # the grey "failed" tile
            else:
                assert np.array_equal(cell, thumbnail(image, 64))
            label = sheet[top + 64:top + cell_height - SHEET_GAP, left:left + 64]
            assert (label < 100).any()  # its label is drawn


def test_cli_sweep_end_to_end_matches_the_python_api(local, tmp_path):
    content, style, out = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "sweep"
    Image.fromarray(CONTENT).save(content)  # PNG is lossless: the same pixels as the arrays
    Image.fromarray(STYLE).save(style)
    done = run_cli("sweep", content, style, "--grid", "style_weight=1e6,1e7", "-o", out, "--steps", "2",
                   "--max-dim", "48", "--weights", "random", "--workers", "1", "--optimizer", "adam")  # as TINY
    assert done.returncode == 0, done.stderr[-2000:]
    images = sorted(out.glob("0*.png"))
    assert [p.name for p in images] == ["000_style-weight-1e+06.png", "001_style-weight-1e+07.png"]
    assert all(record_path(p).exists() for p in images)
    assert {p.name for p in out.iterdir() if not p.name.startswith("0")} == {"sweep.csv", "contact_sheet.png",
                                                                              "sweep.json"}
    assert {p.name for p in out.glob("0*.json")} == {record_path(p).name for p in images}
    assert np.array_equal(np.asarray(Image.open(images[1])), local.images[1])
    assert json.loads(record_path(images[1]).read_text())["config"]["style_weight"] == 1e7
    assert "| job | style_weight |" in done.stdout and "2 of 2 runs done" in done.stdout
    assert "run 2/2 (style_weight=1e+07) loss" in done.stderr

    before = {p: sha256(p) for p in out.iterdir()}
    again = run_cli("sweep", content, style, "--grid", "style_weight=1e6,1e7", "-o", out, "--weights", "random")
    assert again.returncode == 2 and "already holds sweep outputs" in again.stderr
    assert {p: sha256(p) for p in out.iterdir()} == before


@pytest.mark.parametrize("args, message", [
    (["--grid", "stlye_weight=1e6,1e7"], "did you mean style_weight"),
    (["--grid", "steps=2.5"], "--grid steps must be a whole number, got 2.5"),
    (["--grid", "style_weight=1e6,nan"], "style_weight must be a finite number"),
    (["--grid", "style_weight="], "empty value"),
    (["--grid", "preset=robust", "--preset", "vanilla"], "both in the grid and given as an option"),
])
def test_cli_bad_grid_is_one_line_exit_2(tiny_pair, tmp_path, args, message):
    content, style = tiny_pair
    done = run_cli("sweep", content, style, "-o", tmp_path / "out", "--weights", "random", *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("nstkit: error:"), done.stderr
    assert message in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- a failing disk, a damaged folder
# These replay `local`'s runs (`Replay`): what is under test is saving and resuming, which need no new run.


class Replay(concurrent.futures.Executor):
    """Hands back the runs of a sweep already done, at once, and notes which jobs were submitted."""

    def __init__(self, done):
        self.done, self.submitted = done, []

    def submit(self, fn, job, *args, **kwargs):
        from nstkit.run.result import Result
        from nstkit.sweep.jobs import JobOutcome

        self.submitted.append(job.index)
        future = concurrent.futures.Future()
        row = dict(self.done.rows[job.index])
        future.set_result(JobOutcome(row, Result(self.done.images[job.index], {}, job.config,
                                                 self.done.records[job.index])))
        return future


def _faulty_folder(monkeypatch, folder, code, broken=lambda: True):
    """While ``broken()``, ``folder`` and what is in it take no new file (nor, for EROFS, a new folder): `errno`
    ``code``.

    Every nstkit write starts with `tempfile.mkstemp` beside its target (`files.atomic_write`, the writability
    probe), so failing that is a folder that is full or read-only. Rescues go to a temp and home folder of the test.
    """
    import tempfile

    real_mkstemp, real_mkdir = tempfile.mkstemp, os.mkdir

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and _inside(Path(dir), folder) and broken():
            raise OSError(code, os.strerror(code))
        return real_mkstemp(*args, dir=dir, **kwargs)

    def mkdir(path, *args, **kwargs):
        if code == errno.EROFS and _inside(Path(path), folder) and broken():
            raise OSError(code, os.strerror(code))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "tempdir", str(folder.parent / "tmp"))
    monkeypatch.setenv("HOME", str(folder.parent / "home"))
    (folder.parent / "tmp").mkdir()


def _inside(path, folder) -> bool:
    return folder == path or folder in path.parents


def _rescued(tmp_path):
    """The image rescued to the temp folder (its record beside it), and the summary's rescue folder."""
    found = sorted((tmp_path / "tmp" / "nstkit-rescued").iterdir())
    images, folders = [p for p in found if p.suffix == ".png"], [p for p in found if p.is_dir()]
    assert len(images) == len(folders) == 1 and len(found) == 3 and record_path(images[0]) in found, found
    return images[0], folders[0]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_folder_that_fails_mid_sweep_loses_nothing_and_holds_no_half_summary(local, tmp_path, monkeypatch, code):
    from nstkit.run.result import OutputNotSaved

    out = tmp_path / "out"
    _faulty_folder(monkeypatch, out, code, broken=_first_run_saved(out))
    with pytest.raises(OutputNotSaved) as lost:
        nstkit.sweep(CONTENT, STYLE, GRID, executor=Replay(local), out_dir=out, **TINY)
    message, result = str(lost.value), lost.value.result
    assert lost.value.exit_code == 74 and "\n" not in message and os.strerror(code) in message
    [first], [second] = ([row for row in result.rows if ("save_error" in row) == rescued] for rescued in (0, 1))
    first_image = out / Path(first["output"]).name
    assert first["output"] == str(first_image) and first_image.name.startswith(f"{first['job']:03d}_")
    assert second["error"] is None and second["save_error"].startswith(f"could not write {out}")  # not a failed run
    image, summary = _rescued(tmp_path)  # the second run's image (with its record beside it) and the summary
    assert second["output"] == str(image) and str(image) in second["save_error"] and record_path(image).exists()
    assert summary.name.startswith("sweep.rescued-") and str(summary) in message
    assert sorted(p.name for p in summary.iterdir()) == sorted(["sweep.csv", "contact_sheet.png", "sweep.json"])
    assert json.loads((summary / "sweep.json").read_text())["rows"][second["job"]]["output"] == str(image)
    assert result.unsaved == [second] and not result.failed
    # The folder holds the first run whole, and nothing else: no half summary, no empty rescue folder, no temp file.
    assert sorted(p.name for p in out.iterdir()) == [first_image.name, record_path(first_image).name]


def test_a_folder_deleted_mid_sweep_is_not_made_again(local, tmp_path, monkeypatch):
    import shutil

    from nstkit.run.result import OutputNotSaved

    out = tmp_path / "out"
    _faulty_folder(monkeypatch, out, errno.ENOSPC, broken=lambda: False)  # only the rescue places
    with pytest.raises(OutputNotSaved, match="No such file or directory") as lost:
        nstkit.sweep(CONTENT, STYLE, GRID, executor=Replay(local), out_dir=out, **TINY,
                     on_row=lambda row: shutil.rmtree(out, ignore_errors=True))
    assert not out.exists()  # a summary alone in a new folder would say its runs were there
    image, summary = _rescued(tmp_path)  # the run saved after the folder went, and the summary
    assert image.name.endswith(".png") and summary.name.startswith("sweep.rescued-")
    assert str(image) in [row["output"] for row in lost.value.result.rows]


def test_cli_sweep_on_a_failing_disk_prints_the_table_and_where_things_went_exit_74(local, tmp_path, monkeypatch,
                                                                                    capsys):
    from nstkit.ui.cli import main

    content, style, out = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "out"
    Image.fromarray(CONTENT).save(content)
    Image.fromarray(STYLE).save(style)
    monkeypatch.setattr(sys.modules["nstkit.sweep"], "default_executor", lambda *args: Replay(local))
    _faulty_folder(monkeypatch, out, errno.ENOSPC, broken=_first_run_saved(out))
    code = main(["sweep", str(content), str(style), "--grid", "style_weight=1e6,1e7", "-o", str(out), "--steps", "2",
                 "--max-dim", "48", "--weights", "random", "-q"])
    stdout, stderr = capsys.readouterr()
    assert code == 74, stderr
    assert "| job | style_weight |" in stdout and "| save_error |" in stdout and "2 of 2 runs done" in stdout
    errors = stderr.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("nstkit: error: ") for line in errors), stderr
    image, summary = _rescued(tmp_path)
    assert "could not write the sweep's table" in errors[0] and str(summary) in errors[0]
    assert "1 of 2 runs could not be saved" in errors[1] and str(image) in errors[1]
    assert len(list(out.iterdir())) == 2  # one run's image and record: no half summary


def _first_run_saved(out):
    """True from when a run's record is in ``out``: the disk fills after the first run is saved (either run:
    `Replay`'s runs are all finished at once, and come out in any order)."""
    return lambda: any(out.glob("*.png.json"))



def _swept(local, out, **options):
    """A finished sweep in ``out``, as the local pool wrote it."""
    nstkit.sweep(CONTENT, STYLE, GRID, executor=Replay(local), out_dir=out, **{**TINY, **options})
    return out / "000_style-weight-1e+06.png"


def _resumed(local, out, **options):
    """Resume the sweep in ``out``: (result, the jobs it ran again, nstkit's warnings)."""
    from nstkit.core.errors import NstkitWarning

    replay = Replay(local)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = nstkit.sweep(CONTENT, STYLE, GRID, executor=replay, out_dir=out, resume=True,
                              **{**TINY, **options})
    return result, replay.submitted, [str(w.message) for w in caught if issubclass(w.category, NstkitWarning)]


def _halve(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damaged, damage, says", [
    ("record", _halve, "is damaged (not JSON"),
    ("record", lambda path: path.write_text("garbage\n"), "is damaged (not JSON"),
    ("record", lambda path: path.write_text('{"config": {}}\n'), "not an nstkit run record: it has no inputs"),
    ("record", lambda path: path.write_text("[1, 2]\n"), "is damaged (not a whole run record"),
    ("image", _halve, "is damaged or truncated"),
])
def test_resume_runs_a_damaged_point_again_with_one_warning_naming_the_file(local, tmp_path, damaged, damage, says):
    from nstkit.core.record import RunRecord
    from nstkit.media.images import load_image

    image = _swept(local, tmp_path / "out")
    target = record_path(image) if damaged == "record" else image
    damage(target)
    result, ran, said = _resumed(local, tmp_path / "out")
    assert ran == [0] and [row["error"] for row in result.rows] == [None, None]
    assert len(said) == 1 and "\n" not in said[0], said
    assert said[0].startswith(f"resume: {'run record ' if damaged == 'record' else ''}") and str(target) in said[0]
    assert says in said[0] and "running point 0 (style_weight=1e+06) again" in said[0]
    assert RunRecord.read(image)["config"]["style_weight"] == 1e6 and load_image(image).shape == CONTENT.shape


def test_resume_says_when_a_point_was_made_with_another_config(local, tmp_path):
    _swept(local, tmp_path / "out")
    _, ran, said = _resumed(local, tmp_path / "out", steps=3)
    assert sorted(ran) == [0, 1] and len(said) == 2
    assert all("was made with another config (steps 2, not 3)" in line for line in said), said


def test_resume_rewrites_a_damaged_summary_without_a_word(local, tmp_path):
    """Resume never reads the summaries: they are written anew from every row (a regression pin, not a fix)."""
    _swept(local, tmp_path / "out")
    _halve(tmp_path / "out" / "sweep.json")
    _, ran, said = _resumed(local, tmp_path / "out")
    assert ran == [] and said == []
    assert len(json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"]) == 2


@pytest.mark.parametrize("name", ["out.png.json", "out.json (before 0.2)"])
def test_resume_keeps_points_with_a_record_of_either_name(local, tmp_path, name):
    from nstkit.core.record import legacy_record_path

    out = tmp_path / "out"
    image = _swept(local, out)
    if name.startswith("out.json"):
        for each in out.glob("0*.png"):
            record_path(each).rename(legacy_record_path(each))
    result, ran, said = _resumed(local, out)
    assert ran == [] and said == [] and result.rows[0]["output"] == str(image)
    assert np.array_equal(result.images[1], local.images[1])


@pytest.mark.parametrize("record", [record_path, lambda path: path.with_suffix(".json")])
def test_a_folder_holding_only_a_run_record_of_either_name_is_refused(tmp_path, record):
    out = tmp_path / "out"
    out.mkdir()
    record(out / "001_style-weight-1e+07.png").write_text("{}\n")
    with pytest.raises(NstkitError, match="already holds sweep outputs"):
        nstkit.sweep(CONTENT, STYLE, GRID, executor=RefusingExecutor(), out_dir=out, **TINY)


def test_cli_sweep_resume_over_a_damaged_record_is_one_warning_line(local, tmp_path, monkeypatch, capsys):
    from nstkit.ui.cli import main

    content, style, out = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "out"
    Image.fromarray(CONTENT).save(content)
    Image.fromarray(STYLE).save(style)
    monkeypatch.setattr(sys.modules["nstkit.sweep"], "default_executor", lambda *args: Replay(local))
    command = ["sweep", str(content), str(style), "--grid", "style_weight=1e6,1e7", "-o", str(out), "--steps", "2",
               "--max-dim", "48", "--weights", "random", "-q"]
    assert main(command) == 0
    _halve(record_path(out / "001_style-weight-1e+07.png"))
    capsys.readouterr()
    assert main([*command, "--resume"]) == 0
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith("nstkit: warning: resume: run record "), stderr
    assert "001_style-weight-1e+07.png.json is damaged" in stderr[0]
