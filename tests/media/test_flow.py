"""Optical flow, the warp, the reliability mask and the warping error (`nstkit.media.flow`)."""

import numpy as np
import pytest
from nst_helpers import smooth_image

from nstkit.media.flow import optical_flow, outside, reliable, warp, warping_error


def textured(seed: int, height: int = 96, width: int = 128) -> np.ndarray:
    """A smooth image with fine texture on top: DIS needs structure at every scale to lock on."""
    noise = np.random.default_rng(seed).uniform(0, 80, (height, width, 1))
    return np.clip(smooth_image(seed, height, width).astype(np.float32) * 0.6 + noise, 0, 255).astype(np.uint8)


def test_warp_of_a_known_translation_reproduces_the_moved_frame():
    frame0 = textured(1)
    frame1 = np.roll(frame0, (2, 5), axis=(0, 1))  # the scene moved 5 px right and 2 px down
    backward = np.zeros((*frame0.shape[:2], 2), np.float32)
    backward[...] = (-5, -2)  # each pixel of frame 1 came from 5 px left and 2 px up in frame 0
    warped = warp(frame0, backward)
    assert np.array_equal(warped[2:, 5:], frame1[2:, 5:].astype(np.float32))  # whole-pixel shift: exact
    half = warp(frame0, backward * 0 + (0.5, 0))  # half a pixel: bilinear, the mean of two neighbours
    assert half[10, 10] == pytest.approx((frame0[10, 10].astype(np.float32) + frame0[10, 11]) / 2)


def test_dis_flow_recovers_a_translation():
    frame0 = textured(2)
    frame1 = np.roll(frame0, (2, 5), axis=(0, 1))
    backward = optical_flow(frame1, frame0)  # frame1(x) ~ frame0(x + flow)
    interior = backward[16:-16, 16:-16]
    assert np.median(interior[..., 0]) == pytest.approx(-5, abs=0.25)
    assert np.median(interior[..., 1]) == pytest.approx(-2, abs=0.25)
    with pytest.raises(ValueError, match="different sizes"):
        optical_flow(frame0, frame0[:50])


def test_the_mask_drops_what_a_moving_occluder_uncovers_and_keeps_the_still_background():
    background = textured(3).astype(np.float32)
    height, width = background.shape[:2]
    forward = np.zeros((height, width, 2), np.float32)  # frame 0 -> 1: the square moves 8 px right
    backward = np.zeros((height, width, 2), np.float32)  # frame 1 -> 0
    forward[40:60, 30:50] = (8, 0)
    backward[40:60, 38:58] = (-8, 0)
    mask = reliable(backward, forward)
    assert mask[40:60, 30:38].max() == 0  # uncovered background: it was behind the square in frame 0
    assert mask[5:30, 5:120].min() == 1 and mask[70:90, 5:120].min() == 1  # still background, away from it
    assert mask[45:55, 42:54].min() == 1  # the square's inside moves coherently
    assert mask[45:55, 58].max() == 0  # just past its leading edge: a motion boundary, though not occluded
    edge = reliable(np.full((height, width, 2), (-6, 0), np.float32), np.full((height, width, 2), (6, 0), np.float32))
    assert edge[:, :5].max() == 0 and edge[:, 10:].min() == 1  # a pan: the column that enters has no past


def test_what_enters_the_frame_comes_from_the_fallback_not_from_the_edge_smeared_inwards():
    frame0 = textured(5).astype(np.float32)
    height, width = frame0.shape[:2]
    backward = np.full((height, width, 2), (6, 0), np.float32)  # a pan: each pixel was 6 px further right
    backward[:20] += (0, -3)  # and the top rows also 3 px lower: they sample above the frame's top
    fresh = textured(6).astype(np.float32)  # the new frame's own start
    entering = outside(backward)
    assert entering[:, -6:].all() and entering[:3].all() and not entering[3:, :-6].any()
    assert np.array_equal(reliable(backward, -backward)[entering], np.zeros(entering.sum(), np.float32))
    warped = warp(frame0, backward, fallback=fresh)
    assert np.array_equal(warped[entering], fresh[entering])  # not frame0's last column, repeated
    assert np.array_equal(warped[20:, :-6], frame0[20:, 6:])  # the rest is the warp
    assert np.array_equal(warp(frame0, backward)[~entering], warped[~entering])
    with pytest.raises(ValueError, match="fallback of shape"):
        warp(frame0, backward, fallback=fresh[:10])


def test_the_warping_error_is_zero_for_a_perfectly_warped_sequence_and_not_otherwise():
    frame0 = textured(4).astype(np.float32)
    backward = np.zeros((*frame0.shape[:2], 2), np.float32)
    backward[...] = (-3, -1)
    frame1 = warp(frame0, backward)
    mask = np.ones(frame0.shape[:2], np.float32)
    assert warping_error(frame1, frame0, backward, mask) == 0.0
    flickered = frame1 + np.random.default_rng(0).normal(0, 4, frame1.shape).astype(np.float32)
    assert warping_error(flickered, frame0, backward, mask) == pytest.approx(16, rel=0.1)
    masked_out = frame1.copy()
    masked_out[:10] += 50  # wrong only where the mask says the flow cannot be trusted
    mask[:10] = 0
    assert warping_error(masked_out, frame0, backward, mask) == 0.0
