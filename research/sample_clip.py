"""The sample clip: a camera pan and zoom over a bundled still (scripts/make_clip.py, notebook 07,
benchmarks/video_flicker.py). Made, not stored: the same bytes every time."""

from __future__ import annotations

import numpy as np


def camera_move(image: np.ndarray, seconds: float = 3.0, fps: float = 24.0, max_dim: int = 256,
                zoom: float = 1.3, pan: float = 0.2) -> list[np.ndarray]:
    """A camera pan and zoom over a still ``image``: ``seconds`` x ``fps`` frames of ``max_dim`` px on the long
    side (the image's aspect), the view moving ``pan`` of the width left to right while zooming in ``zoom``-fold.

    Sub-pixel crops (OpenCV's getRectSubPix) then an area downscale: the motion is smooth and the same bytes
    every time, a clip with real parallax-free flow to test flow, warps and flicker on.
    """
    import cv2

    source = np.asarray(image, np.float32)
    height, width = source.shape[:2]
    out_w, out_h = (max_dim, round(max_dim * height / width)) if width >= height else \
        (round(max_dim * width / height), max_dim)
    count = max(2, round(seconds * fps))
    frames = []
    for k in range(count):
        t = k / (count - 1)
        view_w = width * (1 - pan) / (1 + (zoom - 1) * t)
        view_h = view_w * out_h / out_w
        centre = (width * (0.5 - pan / 2 + pan * t), height / 2)
        crop = cv2.getRectSubPix(source, (int(round(view_w)), int(round(view_h))), centre)
        frames.append(np.clip(np.rint(cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)), 0, 255)
                      .astype(np.uint8))
    return frames
