import json

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nstkit import notebook  # noqa: E402


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
    assert settings.run_options(steps=5) == {"weights": weights, "steps": 5, "max_dim": max_dim}


def test_precision_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("NSTKIT_PRECISION", "bfloat16")
    settings = notebook.setup()
    assert settings.run_options()["precision"] == "bfloat16"
    assert "precision=bfloat16" in capsys.readouterr().out
    assert settings.caption("x").endswith("px, bfloat16)")
    monkeypatch.setenv("NSTKIT_PRECISION", "half")
    with pytest.raises(notebook.NstkitError, match="NSTKIT_PRECISION=half: use one of float32, bfloat16, float16"):
        notebook.setup()


def _settings(quick, weights="random"):
    return notebook.NotebookSettings(weights=weights, quick=quick, steps=10, max_dim=64, device="CPU")


def test_save_figure_captions_the_weights_and_skips_quick_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(notebook, "RESULTS", tmp_path / "img" / "results")
    monkeypatch.setattr(notebook, "REPO", tmp_path)
    figure = notebook.image_grid([[np.zeros((8, 12, 3), np.uint8)] * 2], col_labels=["a", "b"])
    assert notebook.save_figure(figure, "x", "A test", _settings(quick=True)) is None
    path = notebook.save_figure(figure, "x", "A test", _settings(quick=False))
    record = json.loads(path.with_suffix(".json").read_text())
    assert path.suffix == ".jpg" and path.exists()
    assert record["random_weights"] and "random weights, not ImageNet" in record["caption"]
    imagenet = notebook.save_figure(figure, "y", "B", _settings(quick=False, weights="imagenet"))
    assert "weights: imagenet" in json.loads(imagenet.with_suffix(".json").read_text())["caption"]


def test_table_and_bundled_images():
    text = notebook.table([{"layer": "conv1_relu", "loss": 1234.5678}, {"layer": "x", "loss": 2.0}])
    assert text.splitlines() == ["layer       loss", "conv1_relu  1.23e+03", "x           2"]
    assert notebook.image("hexagons.png", 64).shape == (64, 64, 3)
    with pytest.raises(notebook.NstkitError, match="nope.png is not a bundled image"):
        notebook.image("nope.png", 64)
