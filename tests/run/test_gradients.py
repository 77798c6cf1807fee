"""Gradient sources (`nstkit.run.gradients`), the tiled one above all: the "tiles" stage's stitched gradient, and
tiled runs end to end, through the public API. The tile geometry itself is tests/media/test_tiles.py."""

import json

import numpy as np
import pytest
from nst_helpers import run_cli, smooth_image
from PIL import Image

import nstkit
from nstkit import stylize_tiled
from nstkit.core.record import record_path
from nstkit.objective.terms import Objective

CONTENT, STYLE = smooth_image(1, 96, 128), smooth_image(2, 64, 64)
# No one-pass start (so the tiles do all the work); lr 5: at 96x128 the seed's lr 20 overshoots, tiled or not.
TILED = dict(weights="random", tile_size=48, tile_overlap=16, tile_start_dim=0, learning_rate=5.0)


@pytest.fixture(scope="module")
def four_steps():
    """A tiled run, counting how often the style targets are computed."""
    calls, compiled_steps = [], []
    real = Objective.style_targets

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Objective, "style_targets", counted)
        result = stylize_tiled(CONTENT, STYLE, steps=4, callbacks=[lambda p: compiled_steps.append(p.compiled_step)],
                               **TILED)
    return result, len(calls), compiled_steps


def _first_update(start, **options):
    """The first update (RGB, unrounded) from the image at path ``start``. With an epsilon far above every
    gradient, Adam's first step is ``learning_rate * sqrt(1 - beta_2) * gradient / epsilon``: the gradient's
    direction (here about 0.2 px on average, well inside the pixel range)."""
    seen = []
    result = nstkit.stylize(CONTENT, STYLE, weights="random", steps=1, epsilon=1e12, learning_rate=1e9, init=start,
                            callbacks=[lambda p: seen.append(p.image(as_float=True))], **options)
    return seen[0] - np.asarray(Image.open(start), np.float32), result


def test_one_window_over_the_whole_image_is_the_untiled_run_and_several_come_close(tmp_path):
    """A window over the whole image is the one-pass problem: the same first gradient, so the same update.

    Only the first: a tiled step's style gradient uses the whole image's Gram mismatch of the previous
    pass (one update old, to spare a second pass per step), which is exact only for the first update.
    """
    untiled = nstkit.stylize(CONTENT, STYLE, weights="random", steps=1, learning_rate=5.0)
    one_window = nstkit.stylize(CONTENT, STYLE, weights="random", steps=1, learning_rate=5.0,
                                tile_size=128, tile_overlap=0, tile_start_dim=0)
    assert one_window.record["stages"][0]["windows_per_step"] == [1]
    for term in ("total", "content", "style"):  # the start image's loss, and (as the best) the updated one's
        np.testing.assert_allclose(one_window.history[term], untiled.history[term], rtol=1e-5, err_msg=term)
    np.testing.assert_allclose(one_window.record["best_loss"], untiled.record["best_loss"], rtol=1e-5)
    assert one_window.record["best_step"] == untiled.record["best_step"] == 1  # the update won
    assert np.abs(one_window.image.astype(int) - untiled.image.astype(int)).max() <= 1

    # Six windows of 80 px: one whole-image style loss keeps the stitched gradient close to the untiled one
    # (the rest is the windows' own borders: at 80 px, conv4 sees 5 feature cells across). 0.75 at this run's
    # first (seeded) grid offset, as before the engine redesign; giving each window its own style loss reads 0.58.
    start = tmp_path / "start.png"  # not the content: the content term has a gradient too
    Image.fromarray(smooth_image(3, 96, 128)).save(start)
    whole, _ = _first_update(start)
    stitched, tiled = _first_update(start, tile_size=40, tile_overlap=20, tile_start_dim=0)
    assert tiled.record["stages"][0]["windows_per_step"][0] == 6
    assert np.abs(whole).max() > 1e-3  # the update is well above float32's resolution at pixel values
    cosine = float(np.sum(stitched * whole) / np.linalg.norm(stitched) / np.linalg.norm(whole))
    assert cosine > 0.7


def test_a_tiled_run_lowers_the_loss_and_keeps_the_full_size(four_steps):
    result, *_ = four_steps
    total = result.history["total"]
    assert len(total) == 4 and min(total[1:]) < 0.8 * total[0]
    assert result.record["best_loss"] < total[0]
    assert result.image.shape == CONTENT.shape and result.image.dtype == np.uint8
    record = result.record
    (stage,) = record["stages"]
    assert stage["tile_size"] == 48 and stage["tile_overlap"] == 16 and stage["offset_seed"] == 0
    assert stage["window_size"] == [80, 80] and len(stage["tile_offsets"]) == 4
    assert all(n > 1 for n in stage["windows_per_step"])
    assert (stage["size"], stage["source"], stage["steps"], stage["steps_run"]) == ([96, 128], "tiles", 4, 4)
    assert record["step_traces"] == 1 and record["seconds_per_step"] > 0 and stage["seconds_per_step"] > 0
    np.testing.assert_allclose(np.add(np.add(result.history["content"], result.history["style"]),
                                      result.history["tv"]), total, rtol=1e-5)


def test_a_tiled_step_has_no_single_graph(four_steps):
    """`Progress.compiled_step` is None: a tiled step is a Python loop over compiled windows."""
    assert four_steps[2] == [None] * 4


def test_style_targets_are_computed_once_per_run(four_steps):
    result, calls, _ = four_steps
    assert calls == 1 and sum(result.record["stages"][0]["windows_per_step"]) > 10


def test_a_seed_gives_the_same_bytes_and_stylize_routes_tile_size_here(four_steps):
    again = nstkit.stylize(CONTENT, STYLE, steps=4, **TILED)
    assert again.image.tobytes() == four_steps[0].image.tobytes()
    assert again.record["stages"][0]["tile_offsets"] == four_steps[0].record["stages"][0]["tile_offsets"]


def test_the_one_pass_start_then_tiles_with_callbacks_and_stop():
    seen = []

    def watch(progress):
        seen.append((progress.step, progress.steps, progress.image().shape))
        if progress.step == 3:
            progress.stop()

    result = stylize_tiled(CONTENT, STYLE, steps=5, callbacks=[watch],
                           **{**TILED, "tile_start_dim": 64, "tile_start_steps": 2})
    assert [(step, steps) for step, steps, _ in seen] == [(1, 7), (2, 7), (3, 7)]
    assert [shape for _, _, shape in seen] == [(48, 64, 3), (48, 64, 3), (96, 128, 3)]
    record = result.record
    assert result.stopped_early and record["steps_run"] == 3 and record["steps_planned"] == 7
    assert [(stage["size"], stage["steps_run"], stage["source"]) for stage in record["stages"]] == [
        ([48, 64], 2, "image"), ([96, 128], 1, "tiles")]
    assert result.image.shape == CONTENT.shape


@pytest.mark.parametrize("options, message", [
    (dict(tile_size=16), "tile_size must be a whole number of px >= 32"),
    (dict(tile_size=12.5), "tile_size must be a whole number of px >= 32"),
    (dict(tile_size=True), "tile_size must be a whole number of px >= 32"),
    (dict(tile_size=64, tile_overlap=-1), "tile_overlap must be a whole number >= 0"),
    (dict(tile_size=64, tile_start_dim=20), "tile_start_dim must be 0 (no one-pass start) or >= 32"),
    (dict(tile_size=64, param="fourier"), "got param='fourier'"),
    (dict(tile_size=64, precision="float16"), "got precision='float16'"),
])
def test_bad_tile_settings_are_one_clear_error(options, message):
    with pytest.raises(nstkit.NstkitError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        nstkit.StyleConfig(**options).resolved()
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_cli_tile_size_end_to_end_and_bad_sizes(tmp_path):
    content, style, out = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "out.png"
    Image.fromarray(CONTENT).save(content)
    Image.fromarray(STYLE).save(style)
    for bad, complaint in (("16", "tile_size must be a whole number of px >= 32"),
                           ("12.5", "--tile-size must be a whole number, got 12.5")):
        done = run_cli("stylize", content, style, "-o", out, "--tile-size", bad, "--weights", "random")
        assert done.returncode == 2 and complaint in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()

    done = run_cli("stylize", content, style, "-o", out, "--weights", "random", "--tile-size", "48",
                   "--tile-overlap", "16", "--tile-start-dim", "0", "--steps", "2")
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (128, 96)
    record = json.loads(record_path(out).read_text())
    assert record["config"]["tile_size"] == 48 and record["stages"][0]["tile_size"] == 48
    assert [stage["source"] for stage in record["stages"]] == ["tiles"] and record["steps_run"] == 2
    assert "ran 2 steps" in done.stdout
    assert "step/s" in done.stderr or "s/step" in done.stderr  # the progress bar ran


def test_a_bfloat16_tiled_run_follows_the_float32_one(four_steps):
    """bfloat16 windows (network and Gram products) track float32 within rounding over a few steps."""
    low = stylize_tiled(CONTENT, STYLE, steps=4, precision="bfloat16", **TILED)
    assert low.record["config"]["precision"] == "bfloat16"
    np.testing.assert_allclose(low.history["total"], four_steps[0].history["total"], rtol=0.05)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_the_last_image_is_scored_by_the_step_with_its_update_off(optimizer, monkeypatch):
    # The last update's image has no loss until `finish` scores it, through the step's own compiled function (no
    # second trace): it can win, and the scoring pass moves nothing, so L-BFGS took exactly one trial a step.
    from nstkit.run.gradients import WholeImage

    def no_second_function(self):
        raise AssertionError("a second traced function scored the last image")

    monkeypatch.setattr(WholeImage, "_score_function", no_second_function)
    steps, seen = 3, []
    result = nstkit.stylize(CONTENT, STYLE, weights="random", steps=steps, optimizer=optimizer, learning_rate=5.0,
                            callbacks=[lambda p: seen.append(p.losses["total"])])
    stage = result.record["stages"][0]
    assert stage["step_traces"] == 1 and len(seen) == steps
    assert result.record["best_step"] == steps and result.record["best_loss"] < min(seen)  # the last image won
    if optimizer == "lbfgs":
        assert stage["lbfgs"]["iterations"] + stage["lbfgs"]["rejected_trials"] == steps
