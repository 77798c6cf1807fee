"""Colour-only transfer (`nstkit.api.recolor`, `nstkit recolor`): the content's structure in other images'
colours, saved with its record, no network."""

import json
import subprocess
import sys

import numpy as np
import pytest
from nst_helpers import run_cli, smooth_image
from PIL import Image

import nstkit
from nstkit.core.record import record_path

CONTENT = smooth_image(21, 48, 64)


def _palette(height=30, width=20):
    """A two-colour palette, a third magenta, the rest blue: far from the content's colours."""
    swatch = np.zeros((height, width, 3), np.uint8)
    swatch[...] = (30, 60, 210)
    swatch[: height // 3] = (200, 40, 160)
    return swatch


def test_histogram_gives_each_channel_the_colours_distribution_and_keeps_the_contents_order():
    palette = _palette()
    result = nstkit.recolor(CONTENT, palette)
    for channel in range(3):
        ours, theirs = result.float_image[..., channel].ravel(), palette[..., channel].astype(float).ravel()
        levels = np.linspace(0.02, 0.98, 25)
        np.testing.assert_allclose(np.quantile(ours, levels), np.quantile(theirs, levels), atol=1.0)
        # Only the palette changes: a brighter content pixel is never darker after (a monotone map per channel).
        order = np.argsort(CONTENT[..., channel].ravel(), kind="stable")
        assert (np.diff(ours[order]) >= -1e-4).all()
    assert result.image.dtype == np.uint8 and result.image.shape == CONTENT.shape


def test_mean_cov_matches_the_colours_mean_and_covariance():
    rng = np.random.default_rng(3)
    colours = np.clip(rng.normal((120, 90, 60), (20, 10, 15), size=(40, 40, 3)), 0, 255).astype(np.uint8)
    result = nstkit.recolor(CONTENT, colours, method="mean_cov")
    ours, theirs = result.float_image.reshape(-1, 3), colours.reshape(-1, 3).astype(float)
    np.testing.assert_allclose(ours.mean(0), theirs.mean(0), atol=0.5)
    np.testing.assert_allclose(np.cov(ours.T), np.cov(theirs.T), rtol=0.02, atol=1.0)


def test_several_colour_images_pool_their_pixels():
    red, blue = np.full((10, 10, 3), (220, 20, 20), np.uint8), np.full((10, 30, 3), (20, 20, 220), np.uint8)
    pooled = nstkit.recolor(CONTENT, [red, blue]).float_image.reshape(-1, 3).mean(0)
    np.testing.assert_allclose(pooled, (220 * 0.25 + 20 * 0.75, 20, 20 * 0.25 + 220 * 0.75), atol=2)


@pytest.mark.parametrize("call, words", [
    (lambda: nstkit.recolor(CONTENT, _palette(), method="lab"), "unknown colour transfer 'lab'"),
    (lambda: nstkit.recolor(CONTENT, np.zeros((1, 1, 3), np.uint8)), "has one pixel"),
    (lambda: nstkit.recolor(CONTENT, []), "at least one image"),
])
def test_bad_input_is_one_clear_error(call, words):
    with pytest.raises(nstkit.NstkitError, match=words):
        call()


def test_cli_saves_the_image_and_a_record_naming_its_inputs_and_keeps_inputs(tmp_path):
    content, palette, out = tmp_path / "content.png", tmp_path / "palette.png", tmp_path / "out.png"
    Image.fromarray(CONTENT).save(content)
    Image.fromarray(_palette()).save(palette)
    done = run_cli("recolor", content, palette, "-o", out, "--color-transfer", "mean_cov")
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and done.stderr == ""
    np.testing.assert_array_equal(np.asarray(Image.open(out)),
                                  nstkit.recolor(str(content), str(palette), "mean_cov").image)
    record = json.loads(record_path(out).read_text())
    assert (record["kind"], record["method"]) == ("recolor", "mean_cov")
    assert record["inputs"]["colors"][0]["path"] == str(palette) and len(record["inputs"]["content"]["sha256"]) == 64
    before = palette.read_bytes()
    refused = run_cli("recolor", content, palette, "-o", palette)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "same file as input" in refused.stderr
    assert palette.read_bytes() == before
    missing = run_cli("recolor", content, tmp_path / "nowhere.png", "-o", tmp_path / "x.png")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nowhere.png" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "x.png").exists()


def test_recolor_never_imports_tensorflow():
    code = ("import sys, numpy as np, nstkit; nstkit.recolor(np.zeros((8, 8, 3), np.uint8) + 9, "
            "np.arange(48, dtype=np.uint8).reshape(4, 4, 3)); print('tensorflow' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert shown.stdout.strip() == "False", shown.stderr
