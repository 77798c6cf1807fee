import numpy as np
import pytest
from nst_helpers import smooth_image

from nstkit.core.errors import NstkitError
from nstkit.measure.metrics import color_distance, content_ssim, evaluate, gram_distance


def test_content_ssim_is_one_for_identity_and_lower_for_noise():
    content = smooth_image(1, 64, 64)
    same = content_ssim(content, content)
    assert same["ssim_luminance"] == pytest.approx(1.0) and same["ssim_edges"] == pytest.approx(1.0)
    noisy = np.clip(content + np.random.default_rng(0).normal(0, 60, content.shape), 0, 255)
    worse = content_ssim(noisy, content)
    assert worse["ssim_luminance"] < 0.7 and worse["ssim_edges"] < 0.7


def test_gram_distance_is_zero_for_the_style_and_ranks_a_closer_image_closer():
    style = smooth_image(2, 64, 64)
    assert gram_distance(style, style) == pytest.approx(0.0, abs=1e-6)
    near = np.clip(style.astype(np.float32) + 10, 0, 255)
    far = smooth_image(9, 64, 64)[:, ::-1] * 0.3
    assert gram_distance(near, style) < gram_distance(far, style)


def test_the_judge_cannot_be_the_optimiser():
    style = smooth_image(2, 64, 64)
    with pytest.raises(NstkitError, match="held out"):
        gram_distance(style, style, judge_weights="random:5", optimised_with="random:5")


def test_color_distance_zero_for_same_palette_and_larger_for_other_colours():
    image = smooth_image(3, 64, 64)
    assert color_distance(image, image) == {"color_histogram": 0.0, "color_moments": 0.0}
    shifted = image.copy()
    shifted[..., 0] = 255 - shifted[..., 0]
    moved = color_distance(shifted, image)
    assert moved["color_histogram"] > 0.1 and moved["color_moments"] > 5


def test_evaluate_reports_every_metric():
    content, style = smooth_image(4, 64, 64), smooth_image(5, 64, 64)
    metrics = evaluate(content, content, style, optimised_with="random")
    assert set(metrics) == {"ssim_luminance", "ssim_edges", "gram_distance", "color_histogram", "color_moments"}


def test_evaluate_is_reachable_after_import_nstkit_and_takes_paths_like_stylize(tmp_path):
    from nst_helpers import smooth_image
    from PIL import Image

    import nstkit

    paths = []
    for name, image in (("out.png", smooth_image(1)), ("content.png", smooth_image(1)), ("style.png", smooth_image(2))):
        Image.fromarray(image).save(tmp_path / name)
        paths.append(tmp_path / name)
    from_paths = nstkit.measure.metrics.evaluate(*map(str, paths))
    from_arrays = nstkit.measure.metrics.evaluate(smooth_image(1), smooth_image(1), smooth_image(2))
    assert from_paths == pytest.approx(from_arrays)
    assert from_paths["ssim_luminance"] == pytest.approx(1.0)  # the output is the content
    with pytest.raises(NstkitError, match="style image not found"):
        nstkit.measure.metrics.evaluate(str(paths[0]), str(paths[1]), str(tmp_path / "missing.png"))


# ---- the weight-free patch distance -----------------------------------------------------------------------------

def test_patch_distance_is_seeded_and_small_for_the_same_image_only():
    from nstkit.measure.metrics import patch_distance

    image, other = smooth_image(1, 96, 96), smooth_image(7, 96, 96)
    assert patch_distance(image, other, seed=3) == patch_distance(image, other, seed=3)
    same = patch_distance(image, image)
    assert same < 0.2 * patch_distance(image, other)  # two samples of one distribution, not zero
    assert patch_distance(image, image.astype(np.float32) * 0.5) > 3 * same  # darker: other patches


def test_shuffle_patches_keeps_the_pixels_and_moves_the_tiles():
    from nstkit.measure.metrics import shuffle_patches

    image = smooth_image(4, 40, 48)
    shuffled = shuffle_patches(image, tile=8, seed=1)
    assert shuffled.shape == image.shape
    assert np.array_equal(np.sort(shuffled.ravel()), np.sort(image.ravel()))  # the same pixels
    tiles = lambda a: {a[r:r + 8, c:c + 8].tobytes() for r in range(0, 40, 8) for c in range(0, 48, 8)}  # noqa
    assert tiles(shuffled) == tiles(image) and not np.array_equal(shuffled, image)  # whole tiles, moved


def test_patch_distance_refuses_an_image_too_small_for_its_coarsest_scale():
    from nstkit.measure.metrics import patch_distance

    with pytest.raises(NstkitError, match="too small for the patch distance"):
        patch_distance(smooth_image(1, 20, 20), smooth_image(2, 64, 64))


@pytest.mark.slow  # numpy and POT only: the oldest-TensorFlow phase would run the same arithmetic again
def test_the_patch_distance_passes_its_validation_on_every_bundled_pair():
    """Another crop of the style nearest, its tiles shuffled next, the content far; falling along a blend."""
    from research.compare import PAIRS

    from nstkit.measure.metrics import BLEND_STEPS, validate_patch_distance

    validation = validate_patch_distance(PAIRS, size=128, tenths=False)  # the tenths are for the report's curve
    for check in validation["pairs"]:
        assert check["other_crop"] < check["shuffled"] < check["content"], check
        along = [check["blend"][f"{t:g}"] for t in BLEND_STEPS]
        assert along == sorted(along, reverse=True), check
    assert validation["passed"]
