"""Masks (`nstkit.media.masks`): a colour per style in the order the colours first appear reading row by row, black
unstyled, a grayscale mask as one style's weight, any size of the content's shape resized to it; a bad mask is one line.
Numpy and Pillow only: runs with masks are tests/test_controls.py's."""

import warnings

import numpy as np
import pytest
from PIL import Image

from nstkit.core.errors import NstkitError, NstkitWarning
from nstkit.media.masks import load_regions

RED, GREEN, BLUE, BLACK, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0), (255, 255, 255)


def _save(tmp_path, pixels, name="mask.png"):
    path = tmp_path / name
    Image.fromarray(np.asarray(pixels, np.uint8)).save(path)
    return str(path)


def _bands(height=48, width=64):
    """Top third: blue left, red right; the rest green. Row by row, blue, red, green; column by column, blue,
    green, red."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, :] = GREEN
    pixels[: height // 3, : width // 2], pixels[: height // 3, width // 2:] = BLUE, RED
    return pixels


def test_colours_take_the_styles_in_the_order_they_first_appear_reading_row_by_row(tmp_path):
    regions = load_regions(_save(tmp_path, _bands()), (48, 64), 3)
    assert regions.labels == ("#0000ff", "#ff0000", "#00ff00") and not regions.unstyled
    assert regions.weights.shape == (48, 64, 3) and regions.weights.dtype == np.float32
    assert regions.weights[:16, :32, 0].min() == 1 and regions.weights[:16, 32:, 1].min() == 1
    assert regions.weights[16:, :, 2].min() == 1
    np.testing.assert_array_equal(regions.weights.sum(axis=-1), 1.0)  # every pixel in exactly one region
    shares = [entry["share"] for entry in regions.describe(["a", "b", "c"])]
    assert shares == pytest.approx([1 / 6, 1 / 6, 2 / 3], abs=1e-3)


def test_black_is_unstyled_and_keeps_its_own_channel(tmp_path):
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:, 16:] = RED  # black first (top-left), then red: black takes no style, red the only one
    regions = load_regions(_save(tmp_path, pixels), (48, 64), 1)
    assert regions.labels == ("#ff0000",) and regions.unstyled and regions.weights.shape == (48, 64, 1)
    assert regions.weights[:, :16].max() == 0 and regions.weights[:, 16:].min() == 1
    everything = regions.at((48, 64))
    assert everything.shape == (48, 64, 2)  # the styled region, then the one that keeps the content
    np.testing.assert_array_equal(everything[..., 1], 1 - everything[..., 0])
    assert [entry["style"] for entry in regions.describe(["red.png"])] == ["red.png", "the content's own statistics"]
    with pytest.raises(NstkitError, match=r"1 styled colour\(s\) \(#ff0000, and black unstyled\) and 2 style"):
        load_regions(_save(tmp_path, pixels), (48, 64), 2)


def test_a_mask_of_another_size_is_resized_to_the_content_and_each_layer_gets_area_averages(tmp_path):
    big = np.repeat(np.repeat(_bands(), 3, axis=0), 3, axis=1)  # 144 x 192: three times the content
    small = _bands()[::2, ::2]  # 24 x 32: half of it
    for pixels in (big, small):
        regions = load_regions(_save(tmp_path, pixels), (48, 64), 3)
        assert regions.weights.shape == (48, 64, 3) and regions.labels == ("#0000ff", "#ff0000", "#00ff00")
        assert regions.weights[:16, :32, 0].min() == 1 and regions.weights[16:, :, 2].min() == 1
    regions = load_regions(_save(tmp_path, _bands()), (48, 64), 3)
    coarse = regions.at((3, 4))  # one layer's resolution: 16 x 16 px per cell
    assert coarse.shape == (3, 4, 3)
    np.testing.assert_allclose(coarse[0, :, 0], [1, 1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(coarse[1:, :, 2], 1, atol=1e-6)
    odd = regions.at((5, 7))  # cells across a border share it by area
    np.testing.assert_allclose(odd.sum(axis=-1), 1, atol=1e-5)
    assert 0 < odd[1, 0, 0] < 1 and 0 < odd[1, 0, 2] < 1


def test_anti_aliased_edges_and_specks_go_to_the_nearest_main_colour(tmp_path):
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :30], pixels[:, 30:] = BLUE, RED
    pixels[:, 29] = (60, 0, 200)  # an edge column, nearest blue
    pixels[:, 30] = (200, 0, 60)  # and one nearest red
    pixels[5, 5] = (250, 250, 250)  # a speck (far under 2% of the mask): not a region of its own
    regions = load_regions(_save(tmp_path, pixels), (40, 60), 2)
    assert regions.labels == ("#0000ff", "#ff0000")
    assert regions.weights[:, :30, 0].min() == 1 and regions.weights[:, 30:, 1].min() == 1


def test_a_grayscale_mask_is_one_styles_weight(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    regions = load_regions(_save(tmp_path, np.stack([ramp] * 3, axis=-1)), (48, 64), 1)
    assert regions.labels == ("gray",) and regions.unstyled
    np.testing.assert_allclose(regions.weights[0, :, 0], np.linspace(0, 1, 64), atol=0.003)
    white = load_regions(_save(tmp_path, np.full((48, 64), 255, np.uint8), "white.png"), (48, 64), 1)
    assert not white.unstyled and white.at((48, 64)).shape == (48, 64, 1)


@pytest.mark.parametrize("pixels, content, styles, message", [
    (_bands(), (64, 48), 3, "is 64x48 px and the content 48x64: give a mask of the content's shape"),
    (_bands(), (48, 64), 2, r"has 3 styled colour\(s\) \(#0000ff, #ff0000, #00ff00\) and 2 style\(s\) were given"),
    (np.full((48, 64, 3), 128, np.uint8), (48, 64), 2, "is grayscale .* and 2 styles were given"),
    (np.zeros((48, 64, 3), np.uint8), (48, 64), 1, "is black everywhere, so nothing would be styled"),
    (np.random.default_rng(0).integers(0, 256, (48, 64, 3)), (48, 64), 1, "no colour covering even 2%"),
], ids=["shape", "count", "grayscale-count", "black", "noise"])
def test_a_bad_mask_is_one_line(tmp_path, pixels, content, styles, message):
    with pytest.raises(NstkitError, match=message) as error:
        load_regions(_save(tmp_path, pixels), content, styles)
    assert "\n" not in str(error.value)


def _split_with(tmp_path, rows: int, name: str) -> str:
    """400 px: red left, blue right, and a green stripe ``rows`` tall across both: 360 * rows / 160000 of it."""
    pixels = np.zeros((400, 400, 3), np.uint8)
    pixels[:, :200], pixels[:, 200:] = RED, BLUE
    pixels[100:100 + rows, 20:380] = GREEN
    return _save(tmp_path, pixels, name)


@pytest.mark.parametrize("size", [96, 192, 384])
def test_whether_a_thin_colour_is_a_region_does_not_depend_on_the_runs_size(tmp_path, size):
    """One rule: the main colours are found on the mask at its own size, so a 3% stripe is a third region at every
    --max-dim (two styles: refused alike), and a 1% one never is (folded into its neighbours, with a warning)."""
    with pytest.raises(NstkitError, match=r"3 styled colour\(s\) \(#ff0000, #0000ff, #00ff00\)"):
        load_regions(_split_with(tmp_path, 14, "three.png"), (size, size), 2)
    with pytest.warns(NstkitWarning) as warned:
        regions = load_regions(_split_with(tmp_path, 4, "thin.png"), (size, size), 2)
    assert regions.labels == ("#ff0000", "#0000ff")
    assert [str(w.message) for w in warned] == [
        f"mask {tmp_path / 'thin.png'}: #00ff00 (0.9%) cover(s) under 2% of the mask each, so they are not regions "
        "of their own and take the nearest region's style: paint them larger to give them a style"]


def test_anti_aliased_edges_are_folded_without_a_warning(tmp_path):
    """A mask drawn small and resized (LANCZOS blends along every edge) is no region painted too small."""
    big = np.repeat(np.repeat(_bands(), 5, axis=0), 5, axis=1)
    resized = np.asarray(Image.fromarray(big).resize((71, 53), Image.Resampling.LANCZOS))
    assert len(np.unique(resized.reshape(-1, 3), axis=0)) > 10  # blends: many colours under 2%
    with warnings.catch_warnings():
        warnings.simplefilter("error", NstkitWarning)
        regions = load_regions(_save(tmp_path, resized), (48, 64), 3)
    assert regions.labels == ("#0000ff", "#ff0000", "#00ff00")
