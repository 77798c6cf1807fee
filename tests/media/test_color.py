import numpy as np
import pytest
from nst_helpers import smooth_image

from nstkit.media.color import (
    luminance_as_rgb,
    match_color,
    match_histogram,
    rgb_to_yiq,
    transfer_colors,
    with_content_chroma,
    yiq_to_rgb,
)


def test_match_color_gives_the_target_mean_and_covariance():
    source = smooth_image(1, 64, 64).astype(np.float32) * 0.5 + 40  # low contrast, away from the clip limits
    target = smooth_image(2, 48, 64).astype(np.float32) * 0.6 + 50
    matched = match_color(source, target)
    flat_m, flat_t = matched.reshape(-1, 3), target.reshape(-1, 3)
    np.testing.assert_allclose(flat_m.mean(0), flat_t.mean(0), atol=0.05)
    np.testing.assert_allclose(np.cov(flat_m, rowvar=False), np.cov(flat_t, rowvar=False), rtol=1e-3, atol=0.05)


def test_yiq_round_trip_and_luminance_only_keeps_content_colour():
    rgb = smooth_image(3).astype(np.float32)
    np.testing.assert_allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-3)
    grey = luminance_as_rgb(rgb)
    assert np.allclose(grey[..., 0], grey[..., 1]) and np.allclose(grey[..., 1], grey[..., 2])
    content = smooth_image(4).astype(np.float32) * 0.3 + 90  # muted colours: the combination stays in gamut
    grey = grey * 0.3 + 90
    combined = with_content_chroma(grey, content)
    np.testing.assert_allclose(rgb_to_yiq(combined)[..., 1:], rgb_to_yiq(content)[..., 1:], atol=1.0)
    np.testing.assert_allclose(rgb_to_yiq(combined)[..., 0], rgb_to_yiq(grey)[..., 0], atol=1.0)


def test_luminance_matching_to_a_reference():
    style, content = smooth_image(5).astype(np.float32), smooth_image(6).astype(np.float32) * 0.5
    matched = luminance_as_rgb(style, like=content)[..., 0]
    reference = rgb_to_yiq(content)[..., 0]
    assert matched.mean() == pytest.approx(reference.mean(), abs=0.5)
    assert matched.std() == pytest.approx(reference.std(), rel=0.02)


def test_match_histogram_gives_each_channel_the_targets_quantiles_and_keeps_its_order():
    source = smooth_image(1, 64, 64).astype(np.float32)
    target = np.clip(smooth_image(2, 48, 64).astype(np.float32) ** 1.3 / 255 ** 0.3, 0, 255)  # skewed: not Gaussian
    matched = match_histogram(source, target)
    quantiles = np.linspace(5, 95, 19)  # inside the extremes, which a tied top or bottom value maps to its mid-rank
    for channel in range(3):
        np.testing.assert_allclose(np.percentile(matched[..., channel], quantiles),
                                   np.percentile(target[..., channel], quantiles), atol=2.0)
        order = np.argsort(source[..., channel].ravel(), kind="stable")
        assert np.all(np.diff(matched[..., channel].ravel()[order]) >= 0)  # a monotone map of the channel
    swatch = np.zeros((30, 30, 3), np.float32)
    swatch[:10] = (90, 20, 200)  # a third of it one flat colour, the rest another: each keeps its share
    shares = match_histogram(source, swatch).reshape(-1, 3)
    np.testing.assert_allclose(shares.mean(0), swatch.reshape(-1, 3).mean(0), atol=1.0)
    # only two moments move under match_color: the skewed target's quantiles do not all come through
    linear = match_color(source, target)
    assert np.abs(np.percentile(linear[..., 0], quantiles) - np.percentile(target[..., 0], quantiles)).max() > 4


@pytest.mark.parametrize("method", ["histogram", "mean_cov"])
def test_transfer_colors_recolours_whom_color_from_says(method):
    content = smooth_image(1, 48, 64).astype(np.float32) * 0.5 + 20  # dark
    styles = [smooth_image(2, 40, 40).astype(np.float32) * 0.4 + 150, smooth_image(3, 40, 40).astype(np.float32) * 0.4]
    palette = np.random.default_rng(0).normal(0, 4, (30, 30, 3)).astype(np.float32) + (40, 50, 200)
    palette[:15, :, 0] += 60  # blue, half of it purple: two flat colours, as a swatch is

    def close(rgb, reference):
        return np.allclose(rgb.reshape(-1, 3).mean(0), reference.reshape(-1, 3).mean(0), atol=1.5)

    same, recoloured = transfer_colors(method, "content", content, styles)
    assert same is content and all(close(rgb, content) for rgb in recoloured)
    recoloured, same = transfer_colors(method, "style", content, styles)
    assert same is styles and close(recoloured, np.concatenate([s.reshape(-1, 3) for s in styles]))
    recoloured_content, recoloured_styles = transfer_colors(method, "palette.png", content, styles, palette)
    assert all(close(rgb, palette) for rgb in [recoloured_content, *recoloured_styles])
    assert transfer_colors("none", "content", content, styles) == (content, styles)
