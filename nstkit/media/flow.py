"""Optical flow between video frames, the warp it defines, and where it can be trusted (Ruder et al. 2016).

A stylised clip flickers when each frame is optimised on its own: every frame lands in another local minimum.
Ruder, Dosovitskiy & Brox ("Artistic style transfer for videos", GCPR 2016) tie the frames together with the
flow between the *input* frames: frame t starts from the stylised frame t-1 warped to t, and a temporal loss
keeps it near that warp wherever the flow is reliable. This module is that geometry, in numpy and OpenCV:

- `optical_flow`: OpenCV's DIS flow (Kroeger et al. 2016), which needs no downloaded weights;
- `warp`: backward warping, ``warp(image, flow)(x) = image(x + flow(x))`` (bilinear); where ``x + flow(x)``
  falls outside the frame (`outside`: what a pan brings into view) there is nothing to sample, so those pixels
  come from a ``fallback`` image, not from the frame's edge smeared inwards;
- `reliable`: 1 where the flow is trusted, 0 at occlusions (forward and backward flow disagree), at
  motion boundaries (the flow's gradient is large), with Ruder et al.'s thresholds (from Sundaram et al. 2010),
  and where the flow points outside the frame;
- `warping_error`: the masked mean squared difference between a frame and its warped predecessor: the
  temporal loss's value, and the flicker measure of `benchmarks/video_flicker.py`.

Flows are float32 (H, W, 2) arrays of (dx, dy) in pixels. TensorFlow is not needed here.
"""

from __future__ import annotations

import numpy as np

# Ruder et al. 2016, Eq. 5-6: a pixel is occluded when the round trip misses by more than this share of the
# flows' magnitudes plus a constant (px²), and on a motion boundary when the flow's gradient is that steep.
OCCLUSION_SHARE, OCCLUSION_FLOOR = 0.01, 0.5
BOUNDARY_SHARE, BOUNDARY_FLOOR = 0.01, 0.002


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(rgb)
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The flow from ``source`` to ``target`` (RGB frames of one size): ``source(x) ≈ target(x + flow(x))``.

    So ``warp(target, optical_flow(source, target))`` is ``target`` moved onto ``source``'s pixels. DIS at
    its "medium" preset: about 10 ms per 256 px frame on one core, with no weights to download.
    """
    import cv2

    if np.shape(source)[:2] != np.shape(target)[:2]:
        raise ValueError(f"frames of different sizes: {np.shape(source)[:2]} and {np.shape(target)[:2]}")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(source), _gray(target), None).astype(np.float32)


def outside(flow: np.ndarray) -> np.ndarray:
    """Where ``x + flow(x)`` falls outside the frame (a bool (H, W) array): pixels with no past to warp from.

    In a pan, the strip the camera moves into. Its pixels' bilinear samples would need pixels beyond the edge.
    """
    flow = np.asarray(flow, np.float32)
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    source_x, source_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
    return (source_x < 0) | (source_x > width - 1) | (source_y < 0) | (source_y > height - 1)


def warp(image: np.ndarray, flow: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    """``image`` sampled at ``x + flow(x)`` (bilinear); where that is `outside` the frame, ``fallback``'s pixel.

    A pixel entering the frame has no past: the nearest border pixel (OpenCV's replicated border) would smear
    the edge across the entering strip, as streaks (issue #24). ``fallback`` (an image of ``image``'s shape, e.g.
    the new frame's own start) fills it instead; without one, the border pixel stands in, for uses that mask
    those pixels out anyway (`reliable` marks them 0).
    """
    import cv2

    flow = np.asarray(flow, np.float32)
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(np.asarray(image, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                       interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if fallback is None:
        return warped
    fallback = np.asarray(fallback, np.float32)
    if fallback.shape != warped.shape:
        raise ValueError(f"fallback of shape {fallback.shape} for a warped image of shape {warped.shape}")
    entering = outside(flow).reshape(height, width, *([1] * (warped.ndim - 2)))
    return np.where(entering, fallback, warped)


def reliable(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Where frame t's pixels can be predicted from frame t-1: a float32 (H, W) mask of 0s and 1s.

    ``backward`` is the flow from frame t to t-1 (what `warp` uses to bring t-1 to t), ``forward`` the
    flow from t-1 to t. Following a pixel back and forth again should return it: where the round trip
    misses, the pixel was hidden in t-1 (occluded, or entering the frame); where the backward flow's
    gradient is steep, it sits on a motion boundary; where it points `outside` the frame, it has just entered
    (round-tripping it would read the border's flow). All are 0.
    """
    round_trip = warp(forward, backward)  # the forward flow, at where each pixel of t came from
    miss = np.sum((round_trip + backward) ** 2, axis=-1)
    scale = np.sum(round_trip ** 2, axis=-1) + np.sum(backward ** 2, axis=-1)
    occluded = miss > OCCLUSION_SHARE * scale + OCCLUSION_FLOOR
    du_dy, du_dx = np.gradient(backward[..., 0])
    dv_dy, dv_dx = np.gradient(backward[..., 1])
    steepness = du_dx ** 2 + du_dy ** 2 + dv_dx ** 2 + dv_dy ** 2
    boundary = steepness > BOUNDARY_SHARE * np.sum(backward ** 2, axis=-1) + BOUNDARY_FLOOR
    return (~(occluded | boundary | outside(backward))).astype(np.float32)  # outside: entering the frame


def warping_error(frame: np.ndarray, previous: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    """Mean over the reliable pixels (and channels) of (frame - warp(previous))², in the frames' units²."""
    difference = np.asarray(frame, np.float32) - warp(previous, backward)
    weights = np.asarray(mask, np.float32)[..., None]
    return float(np.sum(weights * difference ** 2) / max(float(np.sum(weights)) * difference.shape[-1], 1.0))
