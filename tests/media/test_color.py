import numpy as np
import pytest
from nst_helpers import smooth_image

from nstkit.media.color import (
    luminance_as_rgb,
    match_color,
    rgb_to_yiq,
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
