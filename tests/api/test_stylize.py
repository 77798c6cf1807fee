"""`stylize` end to end (`nstkit.api.stylize`): the loss falls, the best image is returned, the record says what made
it, seeds give bytes, callbacks and stops, at 64 px with random weights."""

import threading
from importlib import metadata

import numpy as np
import pytest
from nst_helpers import smooth_image

import nstkit

TINY = dict(weights="random", max_dim=64)
CONTENT, STYLE = smooth_image(1), smooth_image(2, 40, 40)


@pytest.fixture(scope="module")
def thirty_steps():
    return nstkit.stylize(CONTENT, STYLE, steps=30, **TINY)


def test_loss_falls_over_thirty_steps(thirty_steps):
    total = thirty_steps.history["total"]
    assert len(total) == 30
    assert min(total[-10:]) < 0.8 * total[0]
    assert thirty_steps.record["best_loss"] < total[0]
    assert np.mean(thirty_steps.history["style"][-5:]) < thirty_steps.history["style"][0]


def test_terms_sum_to_total(thirty_steps):
    h = thirty_steps.history
    np.testing.assert_allclose(np.add(np.add(h["content"], h["style"]), h["tv"]), h["total"], rtol=1e-5)


def test_best_image_is_the_one_with_the_lowest_loss(thirty_steps):
    # The loss falls to the end: the final image, scored after the last update (not a step of the history), wins.
    record, total = thirty_steps.record, thirty_steps.history["total"]
    assert record["best_step"] == len(total) and record["best_loss"] < min(total)
    assert thirty_steps.image.shape == CONTENT.shape and thirty_steps.image.dtype == np.uint8


def test_a_step_that_beats_the_start_and_the_end_is_the_image_returned():
    # From noise at a learning rate 10x the seed's, the loss bounces: its lowest is after two updates.
    images = []
    result = nstkit.stylize(CONTENT, STYLE, steps=8, learning_rate=200.0, init="noise", precision="float32",
                            callbacks=[lambda p: images.append(p.image())], **TINY)
    record, total = result.record, result.history["total"]
    best = record["best_step"]  # updates before the best image
    assert 0 < best < len(total) and best == int(np.argmin(total)), (best, total)
    assert record["best_loss"] == pytest.approx(total[best], rel=1e-6)
    np.testing.assert_array_equal(result.image, images[best - 1])  # the image the callback saw after that update


def test_the_step_is_traced_once(thirty_steps):
    assert thirty_steps.record["step_traces"] == 1


def test_record_says_which_weights_and_settings(thirty_steps):
    record = thirty_steps.record
    assert record["weights"]["source"] == "random"
    assert record["config"]["learning_rate"] == 20.0 and record["config"]["preset"] == "robust"
    assert record["steps_run"] == 30 and not record["stopped_early"]
    assert record["versions"]["tensorflow"] == metadata.version("tensorflow")  # the TF this run used
    assert record["wall_time_s"] > 0


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = nstkit.stylize(CONTENT, STYLE, steps=4, init="noise", seed=3, **TINY)
    b = nstkit.stylize(CONTENT, STYLE, steps=4, init="noise", seed=3, **TINY)
    c = nstkit.stylize(CONTENT, STYLE, steps=4, init="noise", seed=4, **TINY)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.history == b.history
    assert a.image.tobytes() != c.image.tobytes()


def test_image_stays_in_the_valid_pixel_range():
    seen = []
    nstkit.stylize(CONTENT, STYLE, steps=3, learning_rate=5000.0,
                   callbacks=[lambda p: seen.append(p.image(as_float=True))], **TINY)
    for image in seen:  # unrounded, unclipped RGB: only the optimiser's clip keeps it in range
        assert np.all(image >= -1e-3) and np.all(image <= 255 + 1e-3)
    assert any(np.isclose(image, 255, atol=1e-3).any() for image in seen)  # the clip was needed


def test_callback_stop_returns_the_best_so_far():
    steps = []

    def stop_at_three(progress):
        steps.append(progress.step)
        if progress.step == 3:
            progress.stop()

    result = nstkit.stylize(CONTENT, STYLE, steps=50, callbacks=[stop_at_three], **TINY)
    assert steps == [1, 2, 3]
    assert result.stopped_early and result.record["steps_run"] == 3
    assert len(result.history["total"]) == 3
    assert result.image.shape == CONTENT.shape


def test_stop_event_from_another_thread():
    event = threading.Event()
    result = nstkit.stylize(CONTENT, STYLE, steps=50, stop_event=event,
                            callbacks=[lambda p: event.set() if p.step == 2 else None], **TINY)
    assert result.record["steps_run"] == 2


def test_the_record_says_which_preset_fields_a_run_overrode():
    plain = nstkit.stylize(CONTENT, STYLE, steps=1, **TINY)
    overridden = nstkit.stylize(CONTENT, STYLE, steps=1, style_layers="conv1_relu", **TINY)
    assert plain.record["preset_overridden"] == [] and plain.record["config"]["preset"] == "robust"
    assert overridden.record["preset_overridden"] == ["style_layers"]
    assert overridden.record["config"]["style_layers"] == {"conv1_relu": 1.0}


def test_init_from_an_image_file(tmp_path):
    from PIL import Image

    start = tmp_path / "start.png"
    Image.fromarray(smooth_image(5, 24, 32)).save(start)  # other size: resized to the content's
    result = nstkit.stylize(CONTENT, STYLE, steps=1, init=str(start), **TINY)
    assert result.record["inputs"]["init"]["path"] == str(start)
    assert result.image.shape == CONTENT.shape


def test_result_save_writes_image_and_record(tmp_path, thirty_steps):
    import json

    saved = thirty_steps.save(tmp_path / "out.png")
    record = json.loads((tmp_path / "out.png.json").read_text())
    assert saved.exists() and record["output"] == str(saved)
    assert nstkit.StyleConfig.from_dict(record["config"]).resolved() == thirty_steps.config


@pytest.mark.slow
def test_many_runs_do_not_warn_about_retracing(caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        for _ in range(6):  # TF warns from the 5th new tf.function onwards
            nstkit.stylize(CONTENT, STYLE, steps=1, **TINY)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_the_python_api_keeps_tensorflows_start_up_lines_off_stderr():
    """As the CLI does: `import nstkit; nstkit.stylize(...)` prints no oneDNN, cuInit or absl lines."""
    import subprocess
    import sys

    from nst_helpers import ROOT

    script = ("import nstkit, numpy as np\n"
              "image = np.full((48, 64, 3), 128, np.uint8)\n"
              "nstkit.stylize(image, image[::-1], steps=1, weights='random', max_dim=64)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert not any(noise in done.stderr for noise in ("oneDNN", "cuInit", "cuda", "absl")), done.stderr
