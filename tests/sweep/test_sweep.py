"""Sweeps: the grid, up-front validation, per-job failures, the same pixels on any executor, files, the CLI."""

import concurrent.futures
import csv
import json
import socket
import sys

import numpy as np
import pytest
from nst_helpers import run_cli, sha256, smooth_image
from PIL import Image

import nstkit
from nstkit.core.errors import NstkitError
from nstkit.sweep import (
    FIELDS,
    METRIC_COLUMNS,
    SHEET_GAP,
    expand_grid,
    parse_grid,
    thumbnail,
)

TINY = {"weights": "random", "max_dim": 48, "steps": 2}
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
                   "--max-dim", "48", "--weights", "random", "--workers", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    images = sorted(out.glob("0*.png"))
    assert [p.name for p in images] == ["000_style-weight-1e+06.png", "001_style-weight-1e+07.png"]
    assert all(p.with_suffix(".json").exists() for p in images)
    assert {p.name for p in out.iterdir() if not p.name.startswith("0")} == {"sweep.csv", "contact_sheet.png",
                                                                              "sweep.json"}
    assert np.array_equal(np.asarray(Image.open(images[1])), local.images[1])
    assert json.loads(images[1].with_suffix(".json").read_text())["config"]["style_weight"] == 1e7
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
