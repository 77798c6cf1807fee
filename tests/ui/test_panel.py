"""The widget panel's behaviour without a browser (tests/test_browser.py drives it in Chromium)."""

import io
import os

import numpy as np
import pytest
from nst_helpers import ROOT, smooth_image
from PIL import Image

from nstkit.core.record import record_path
from nstkit.ui.panel import StylePanel


@pytest.fixture
def panel():
    panel = StylePanel(ROOT / "nstkit" / "media" / "samples", weights="random", display=False, preview_every=2)
    panel.max_dim.value = 64
    return panel


def test_pickers_list_the_bundled_images_by_name_not_by_a_machines_path(panel):
    assert "hexagons.png" in panel.style.options and "astronaut.jpg" in panel.content.options
    assert not any(os.sep in option for option in (*panel.style.options, *panel.content.options))
    assert panel._source(panel.style) == str(ROOT / "nstkit" / "media" / "samples" / "style" / panel.style.value)


def _wait_for(condition, seconds=120):
    import time

    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.1)
    return condition()


def _upload(widget, name: str, data: bytes) -> None:
    """What the browser sends when a user picks a file: the FileUpload's new value, as JSON (ipywidgets 8)."""
    widget.set_state({"value": [{"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
                                 "last_modified": 0}]})


def _png(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_run_updates_preview_and_plot_then_finishes(panel):
    panel.steps.value = 6
    panel.run_button.click()
    assert panel.run_button.disabled and not panel.stop_button.disabled
    assert panel.wait(180)
    assert panel.error is None, panel.error
    assert panel.result is not None and panel.result.record["steps_run"] == 6
    assert panel.previews >= 3  # step 1, 2, 4, 6
    preview = np.asarray(Image.open(io.BytesIO(panel.preview.value)))
    assert preview.shape[:2] == panel.result.image.shape[:2]
    assert Image.open(io.BytesIO(panel.plot.value)).format == "PNG"
    assert "done" in panel.status.value and "random" in panel.status.value
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_stop_ends_a_long_run_early(panel):
    panel.steps.value = 2000
    panel.run_button.click()
    assert _wait_for(lambda: panel.previews >= 2)  # under way: steps 1 and 2 drawn
    steps_seen = len(panel.history["total"])
    panel.stop_button.click()
    assert panel.wait(60)
    assert panel.result.stopped_early and steps_seen <= panel.result.record["steps_run"] < 2000
    assert panel.status.value.startswith("stopped: ")
    assert not panel.run_button.disabled and panel.stop_button.disabled and not panel.save_button.disabled


def test_settings_map_onto_the_config(panel):
    panel.preset.value = "conv"
    panel.layers.value = ("conv1_relu", "conv2_block1_out")
    panel.style_weight.value = 1e9
    assert panel.config().precision == "auto"  # the device decides when the run starts
    panel.precision.value = "bfloat16"
    config = panel.config().resolved()
    assert config.style_layers == {"conv1_relu": 1.0, "conv2_block1_out": 1.0}
    assert config.style_weight == 1e9 and config.weights == "random" and config.precision == "bfloat16"


def test_upload_adds_an_option_and_bad_input_shows_in_the_panel(panel):
    mine = smooth_image(3, 64, 64)
    _upload(panel.upload_content, "mine.png", _png(mine))
    assert panel.content.value == "uploaded: mine.png" and "uploaded: mine.png" in panel.content.options
    styles = list(panel.style.options)
    _upload(panel.upload_style, "junk.png", b"nope")
    assert "could not use junk.png: junk.png is not an image Pillow can read" in panel.status.value
    assert "BytesIO" not in panel.status.value
    assert list(panel.style.options) == styles  # a bad file adds no option
    panel.style_weight.value = 1.0
    panel.steps.value = 2
    panel.run_button.click()
    assert panel.wait(120) and panel.result is not None
    assert panel.result.record["inputs"]["content"]["array_shape"] == list(mine.shape)  # the upload was the content


def test_choosing_a_preset_moves_the_weights_and_learning_rate_to_its_values(panel):
    from nstkit import StyleConfig
    from nstkit.ui.panel import control_range

    panel.layers.value = ("conv1_relu",)
    for preset in panel.preset.options:
        panel.preset.value = preset
        resolved = StyleConfig(preset=preset).resolved()
        for name in ("content_weight", "style_weight", "learning_rate"):
            low, high = control_range(name)
            assert low <= getattr(resolved, name) <= high, (preset, name)  # every preset fits its slider
            assert getattr(panel, name).value == pytest.approx(getattr(resolved, name)), (preset, name)
        assert panel.layers.value == ()  # the preset's own layers again
    assert panel.config().resolved().learning_rate == StyleConfig(preset=panel.preset.value).resolved().learning_rate


def test_the_panel_follows_nstkit_precision(monkeypatch):
    monkeypatch.setenv("NSTKIT_PRECISION", "bfloat16")
    panel = StylePanel(ROOT / "nstkit" / "media" / "samples", weights="random", display=False)
    assert panel.precision.value == "bfloat16" and panel.config().precision == "bfloat16"


def test_one_run_per_kernel_a_new_panel_stops_the_earlier_run(panel):
    panel.steps.value = 2000
    panel.run_button.click()
    assert _wait_for(lambda: panel.previews >= 1)
    second = StylePanel(ROOT / "nstkit" / "media" / "samples", weights="random", display=False, preview_every=2)
    assert panel.wait(60) and panel.result.stopped_early  # the earlier run ended, its best image kept
    assert "stopped the run of an earlier panel" in second.status.value
    second.max_dim.value, second.steps.value = 64, 2000
    second.run_button.click()
    assert _wait_for(lambda: second.previews >= 1)
    panel.steps.value = 2
    panel.run_button.click()  # Run on the first panel stops the second's run before it starts its own
    assert second.wait(60) and second.result.stopped_early
    assert panel.wait(120) and panel.result is not None and not panel.result.stopped_early


def test_stop_during_the_model_build_ends_the_run_before_its_first_step(panel):
    panel.steps.value = 2000
    panel.run_button.click()
    panel.stop_button.click()  # the run is still loading the backbone and building the step
    assert panel.wait(120)
    assert panel.error is None and panel.result is None
    assert panel.status.value.startswith("stopped before")
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_uploads_in_the_formats_of_ipywidgets_8_and_7(panel):
    """ipywidgets 8 gives a tuple of {name, content}; 7 (what Colab ships) a dict of name -> {metadata, content}.

    The ipywidgets installed here (8) cannot hold a 7-style value, so that change is delivered as a 7 FileUpload
    would deliver it to the panel's observer."""
    from traitlets import Bunch

    _upload(panel.upload_content, "eight.png", _png(smooth_image(4, 40, 56)))
    assert panel.content.value == "uploaded: eight.png"
    seven = {"seven.png": {"metadata": {"name": "seven.png", "type": "image/png", "size": 0, "lastModified": 0},
                           "content": _png(smooth_image(5, 32, 48))}}
    panel.upload_style.notify_change(Bunch(name="value", old={}, new=seven, owner=panel.upload_style, type="change"))
    assert panel.style.value == "uploaded: seven.png"
    config = panel.config()
    assert "could not use" not in panel.status.value and config.weights == "random"


def test_save_writes_the_result_and_a_folder_that_cannot_take_it_rescues_it(panel, tmp_path, monkeypatch):
    import nstkit.core.files as files

    assert panel.save_button.disabled  # nothing to save before a run; a script that asks is told so
    assert panel.save(tmp_path / "early.png") is None and "nothing to save yet" in panel.status.value
    panel.steps.value = 2
    panel.run_button.click()
    assert panel.wait(120) and panel.result is not None and not panel.save_button.disabled
    panel.save_path.value = str(tmp_path / "mine.png")
    panel.save_button.click()
    saved = tmp_path / "mine.png"
    assert saved.exists() and record_path(saved).exists()
    assert panel.status.value == f"saved {saved} and {record_path(saved)}"
    monkeypatch.setattr(files.tempfile, "gettempdir", lambda: str(tmp_path / "system-tmp"))
    gone = tmp_path / "gone" / "deeper"
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(30, "Read-only file system"))
                        if "system-tmp" not in str(a[1]) else os.rename(*a))
    rescued = panel.save(gone / "out.png")
    assert rescued is not None and rescued.exists() and "saved the result to" in panel.status.value
    assert "Read-only file system" in panel.status.value



def test_choosing_a_style_loss_moves_the_style_weight_to_its_scale(panel):
    from nstkit.core.config import NORMALISED_STYLE_WEIGHT

    panel.preset.value = "robust"
    panel.style_loss.value = "wasserstein"
    assert panel.style_weight.value == pytest.approx(NORMALISED_STYLE_WEIGHT)
    assert panel.config().resolved().style_weight == pytest.approx(NORMALISED_STYLE_WEIGHT)
    panel.preset.value = "vanilla"  # a preset keeps the chosen statistic's scale
    assert panel.style_weight.value == pytest.approx(NORMALISED_STYLE_WEIGHT)
    panel.style_loss.value = "gram"
    assert panel.style_weight.value == pytest.approx(1e6)  # vanilla's Gram weight


def test_a_style_pack_uploaded_or_in_the_folder_is_a_style_and_a_damaged_one_is_one_line(panel, tmp_path):
    import hashlib

    from nstkit.api.pack import make_pack

    panel.steps.value = 2
    style = ROOT / "nstkit" / "media" / "samples" / "style" / "hexagons.png"
    pack = make_pack([str(style)], tmp_path / "hexagons.npz", panel.config())  # made for the panel's settings
    styles = list(panel.style.options)
    _upload(panel.upload_style, "broken.npz", b"PK not a zip")
    status = panel.status.value
    assert "could not use broken.npz:" in status and "not a readable nstkit style pack" in status
    assert list(panel.style.options) == styles
    _upload(panel.upload_style, "hexagons.npz", pack.read_bytes())
    assert panel.style.value == "uploaded: hexagons.npz"
    panel.run_button.click()
    assert panel.wait(120) and panel.error is None, panel.error
    entry = panel.result.record["inputs"]["style"]
    assert entry["sha256"] == hashlib.sha256(pack.read_bytes()).hexdigest() and entry["pack_style"] == 1
    (tmp_path / "style").mkdir()
    pack.rename(tmp_path / "style" / "hexagons.npz")
    (tmp_path / "content").mkdir()
    Image.fromarray(smooth_image(4, 40, 56)).save(tmp_path / "content" / "hexagons.npz.png")
    Image.fromarray(smooth_image(5, 40, 56)).save(tmp_path / "style" / "hexagons.npz.png")  # a name in both pickers
    folder_panel = StylePanel(tmp_path, weights="random", display=False)
    assert folder_panel.style.options == ("hexagons.npz", "hexagons.npz.png")
    assert folder_panel._source(folder_panel.style) == str(tmp_path / "style" / "hexagons.npz")
    folder_panel.style.value = folder_panel.content.value = "hexagons.npz.png"
    assert folder_panel._source(folder_panel.content) == str(tmp_path / "content" / "hexagons.npz.png")
    assert folder_panel._source(folder_panel.style) == str(tmp_path / "style" / "hexagons.npz.png")
