"""Where an optimisation starts: the content (the seed's choice), gray, noise, or an image of the user's.

crowsonkb/style-transfer's set: ``gray`` (flat mid-gray), ``uniform`` noise
over the whole pixel range (``noise`` is its older name here, kept so old run
records replay), and ``style_stats``: noise with the styles' colour mean and
covariance, so the start already has the style's palette and no layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.config import StyleConfig
from ..core.errors import NstkitError
from .images import load_image, resize_to

GRAY = 127.5


def initial_image(config: StyleConfig, content_rgb: np.ndarray, style_rgbs: list[np.ndarray] = (),
                  blend: list[float] = (), *, init_rgb: np.ndarray | None = None) -> np.ndarray:
    """The start image as float RGB at the content's size (``style_rgbs`` and ``blend`` for ``style_stats``).

    ``init_rgb``: an init path's image as `checks.check_inputs` read it (else it is read here).
    """
    if config.init == "content":
        return content_rgb
    if config.init in ("uniform", "noise"):
        rng = np.random.default_rng(config.seed)
        return rng.uniform(0, 255, content_rgb.shape).astype(np.float32)
    if config.init == "gray":
        return np.full(content_rgb.shape, GRAY, np.float32)
    if config.init == "style_stats":
        return style_stats_noise(content_rgb.shape, style_rgbs, blend, config.seed)
    start = init_rgb if init_rgb is not None else load_init_image(config.init)
    return resize_to(start, *content_rgb.shape[:2])


def load_init_image(path: str) -> np.ndarray:
    """An init path's image as float RGB at its own size (`initial_image` resizes it to the content's).

    A missing file is most often a start image's name mistyped, so the message names them.
    """
    if not Path(path).exists():
        raise NstkitError(f"init must be 'content', 'gray', 'uniform', 'style_stats' or an image path; "
                          f"{path} does not exist")
    return load_image(path, None, what="init image", check_min_size=False)


def style_stats_noise(shape: tuple[int, ...], style_rgbs: list[np.ndarray], blend: list[float],
                      seed: int) -> np.ndarray:
    """Gaussian noise whose colours have the styles' mean and covariance (their blend's mixture), clipped to range."""
    if not len(style_rgbs):
        raise NstkitError("init style_stats needs the style image(s) to take the colour statistics from")
    shares = list(blend) or [1.0 / len(style_rgbs)] * len(style_rgbs)
    pixels = [rgb.reshape(-1, 3).astype(np.float64) for rgb in style_rgbs]
    mean = sum(share * p.mean(axis=0) for p, share in zip(pixels, shares))
    second = sum(share * (p.T @ p) / len(p) for p, share in zip(pixels, shares))
    cov = second - np.outer(mean, mean)
    rng = np.random.default_rng(seed)
    noise = rng.multivariate_normal(mean, cov, size=int(np.prod(shape[:-1])), method="eigh")
    return np.clip(noise, 0, 255).reshape(shape).astype(np.float32)
