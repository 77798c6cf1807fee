"""The widget panel's behaviour without a browser (tests/test_browser.py drives it in Chromium)."""

import io

import numpy as np
import pytest
from PIL import Image

from nst_helpers import ROOT, smooth_image
from nstkit.widgets import StylePanel


@pytest.fixture
def panel():
    panel = StylePanel(ROOT / "img", weights="random", display=False, preview_every=2)
    panel.max_dim.value = 64
    return panel


def test_pickers_list_the_bundled_images(panel):
    assert "hexagons.png" in dict(panel.style.options)
    assert "astronaut.jpg" in dict(panel.content.options)


def test_run_updates_preview_and_plot_then_finishes(panel):
    panel.steps.value = 6
    panel.run()
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
    seen = []
    panel.run()
    import time

    deadline = time.time() + 120
    while panel.previews < 2 and time.time() < deadline:
        time.sleep(0.1)
    seen.append(panel.previews)
    panel.stop()
    assert panel.wait(60)
    assert panel.result.stopped_early and panel.result.record["steps_run"] < 2000


def test_settings_map_onto_the_config(panel):
    panel.preset.value = "conv"
    panel.layers.value = ("conv1_relu", "conv2_block1_out")
    panel.style_weight.value = 1e9
    assert panel.config().precision == "float32"
    panel.precision.value = "bfloat16"
    config = panel.config().resolved()
    assert config.style_layers == {"conv1_relu": 1.0, "conv2_block1_out": 1.0}
    assert config.style_weight == 1e9 and config.weights == "random" and config.precision == "bfloat16"


def test_upload_adds_an_option_and_bad_input_shows_in_the_panel(panel):
    buffer = io.BytesIO()
    Image.fromarray(smooth_image(3, 64, 64)).save(buffer, format="PNG")
    panel._add_upload({"new": [{"name": "mine.png", "content": memoryview(buffer.getvalue())}]}, panel.content)
    assert panel.content.value == "uploaded: mine.png"
    panel._add_upload({"new": [{"name": "junk.png", "content": memoryview(b"nope")}]}, panel.style)
    assert "could not use junk.png: junk.png is not an image Pillow can read" in panel.status.value
    assert "BytesIO" not in panel.status.value
    panel.layers.value = ()
    panel.style_weight.value = 1.0
    panel.steps.value = 2
    panel.run()
    assert panel.wait(120) and panel.result is not None
