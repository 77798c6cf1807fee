import json

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nstkit.ui import notebook  # noqa: E402


@pytest.mark.parametrize("env, weights, steps, max_dim, quick", [
    ({"NSTKIT_QUICK": "1"}, "random", 20, 64, True),
    ({"NSTKIT_QUICK": "1", "NSTKIT_WEIGHTS": "random:3"}, "random:3", 20, 64, True),
    ({}, "imagenet", 1000, 512, False),
    ({"NSTKIT_STEPS": "150", "NSTKIT_MAX_DIM": "256", "NSTKIT_WEIGHTS": "random"}, "random", 150, 256, False),
])
def test_setup_reads_one_place(monkeypatch, capsys, env, weights, steps, max_dim, quick):
    for name in ("NSTKIT_QUICK", "NSTKIT_WEIGHTS", "NSTKIT_STEPS", "NSTKIT_MAX_DIM", "NSTKIT_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = notebook.setup()
    assert (settings.weights, settings.steps, settings.max_dim, settings.quick) == (weights, steps, max_dim, quick)
    printed = capsys.readouterr().out
    assert (notebook.RANDOM_BANNER in printed) == weights.startswith("random")
    # The precision and the optimiser are always passed: a notebook's figures never depend on the library's
    # defaults, and the notebooks retrace the seed's Adam (nstkit's own default is "auto").
    assert settings.run_options(steps=5) == {"weights": weights, "steps": 5, "max_dim": max_dim,
                                             "precision": settings.precision, "optimizer": "adam"}
    assert "optimizer=adam (the seed's)" in printed


def test_precision_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("NSTKIT_PRECISION", "bfloat16")
    settings = notebook.setup()
    assert settings.run_options()["precision"] == "bfloat16"
    assert "precision=bfloat16" in capsys.readouterr().out
    assert settings.caption("x").endswith("px, bfloat16)")
    monkeypatch.setenv("NSTKIT_PRECISION", "half")
    with pytest.raises(notebook.NstkitError, match="NSTKIT_PRECISION=half: use one of auto, float32, bfloat16, float16"):
        notebook.setup()


def _settings(quick, weights="random"):
    return notebook.NotebookSettings(weights=weights, quick=quick, steps=10, max_dim=64, device="CPU")


def test_save_figure_keeps_the_caption_and_how_it_was_made_and_skips_quick_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(notebook, "RESULTS", tmp_path / "img" / "results")
    monkeypatch.setattr(notebook, "REPO", tmp_path)
    figure = notebook.image_grid([[np.zeros((8, 12, 3), np.uint8)] * 2], col_labels=["a", "b"])
    quick = _settings(quick=True)
    assert notebook.save_figure(figure, "x", quick.caption("A test"), quick) is None
    settings = _settings(quick=False)
    path = notebook.save_figure(figure, "x", settings.caption("A test"), settings, command="NSTKIT_MODE=showcase")
    record = json.loads(path.with_suffix(".json").read_text())
    assert path.suffix == ".jpg" and path.exists()
    assert record["random_weights"] and "random weights, not ImageNet" in record["caption"]
    assert record["steps"] == 10 and record["max_dim"] == 64 and record["command"] == "NSTKIT_MODE=showcase"
    imagenet = _settings(quick=False, weights="imagenet")
    saved = notebook.save_figure(figure, "y", imagenet.caption("B"), imagenet)
    assert "weights: imagenet" in json.loads(saved.with_suffix(".json").read_text())["caption"]


def test_table_and_bundled_images():
    text = notebook.table([{"layer": "conv1_relu", "loss": 1234.5678}, {"layer": "x", "loss": 2.0}])
    assert text.splitlines() == ["layer       loss", "conv1_relu  1.23e+03", "x           2"]
    assert notebook.image("hexagons.png", 64).shape == (64, 64, 3)
    with pytest.raises(notebook.NstkitError, match="nope.png is not a bundled sample image: choose one of astronaut.jpg"):
        notebook.image("nope.png", 64)


def _clear(monkeypatch):
    for name in ("NSTKIT_QUICK", "NSTKIT_MODE", "NSTKIT_WEIGHTS", "NSTKIT_STEPS", "NSTKIT_MAX_DIM", "NSTKIT_PRECISION"):
        monkeypatch.delenv(name, raising=False)


def test_showcase_mode_takes_the_notebooks_own_size_and_the_devices_precision(monkeypatch, capsys):
    from nstkit.network import device

    _clear(monkeypatch)
    monkeypatch.setenv("NSTKIT_MODE", "showcase")
    settings = notebook.setup(showcase_steps=150, showcase_max_dim=192)
    assert (settings.mode, settings.weights, settings.steps, settings.max_dim) == ("showcase", "random", 150, 192)
    assert settings.precision == device.preferred_precision()  # bfloat16 where the CPU has it natively
    printed = capsys.readouterr().out
    assert "mode=showcase" in printed and f"device: {device.describe()}" in printed
    assert notebook.RANDOM_BANNER in printed


@pytest.mark.parametrize("variable, value, message", [
    ("NSTKIT_STEPS", "abc", "NSTKIT_STEPS: 'abc' is not a number"),
    ("NSTKIT_STEPS", "2.5", "NSTKIT_STEPS must be a whole number, got 2.5"),
    ("NSTKIT_MAX_DIM", "-5", "NSTKIT_MAX_DIM must be a whole number >= 32, got -5"),
    ("NSTKIT_WEIGHTS", "/missing.h5", "NSTKIT_WEIGHTS: weights file not found: /missing.h5"),
    ("NSTKIT_PRECISION", "fp8", "NSTKIT_PRECISION=fp8: use one of auto, float32, bfloat16, float16"),
    ("NSTKIT_MODE", "fast", "NSTKIT_MODE=fast: use one of full, showcase, quick"),
])
def test_a_bad_setting_is_one_line_that_a_notebook_shows_without_a_traceback(monkeypatch, variable, value, message):
    _clear(monkeypatch)
    monkeypatch.setenv(variable, value)
    with pytest.raises(notebook.NstkitError) as error:
        notebook.setup()
    assert message in str(error.value) and "\n" not in str(error.value)
    assert error.value._render_traceback_() == [f"nstkit: error: {error.value}"]  # what IPython shows


def test_figures_carry_their_caption_inside_the_image():
    settings = _settings(quick=False)
    caption = settings.caption("A grid", steps=7)
    assert caption == "A grid (random weights, not ImageNet; 7 steps, 64 px)"
    assert settings.caption("Peakiness of the inputs", steps=0) == (
        "Peakiness of the inputs (random weights, not ImageNet; no optimisation, 64 px)")  # not "10 steps"
    figure = notebook.image_grid([[np.zeros((8, 12, 3), np.uint8)]], caption=caption)
    assert caption in [" ".join(text.get_text().split()) for text in figure.texts]  # wrapped to the figure's width
    figure = notebook.plot_losses({"a": {"total": [3.0, 2.0], "content": [1.0, 1.0], "style": [2.0, 1.0]}},
                                  caption=caption)
    assert caption in [" ".join(text.get_text().split()) for text in figure.texts]


def test_the_cost_is_measured_before_it_is_announced(monkeypatch, capsys):
    from nstkit.measure import timing

    monkeypatch.setattr(timing, "measure_run", lambda **kwargs: (0.5, 2.0))
    seconds = notebook.announce_cost(_settings(quick=False), runs=12, steps=100)
    assert seconds == 12 * (2.0 + 100 * 0.5)
    printed = capsys.readouterr().out
    assert "12 run(s), 1200 steps at 64 px; measured here 0.500 s/step and 2.0 s to build each run" in printed
    assert "10 min" in printed and "to shrink it: NSTKIT_MODE=showcase" in printed
    showcase = notebook.NotebookSettings(weights="random", quick=False, steps=10, max_dim=64, device="CPU",
                                         mode="showcase")
    notebook.announce_cost(showcase, runs=12, steps=100)
    assert "to shrink it: NSTKIT_STEPS / NSTKIT_MAX_DIM, or Colab's GPU runtime" in capsys.readouterr().out
    assert notebook.announce_cost(_settings(quick=False), steps=[10, 20]) == 2 * 2.0 + 30 * 0.5
