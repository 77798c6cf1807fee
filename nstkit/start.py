"""Where an optimisation starts: the content (the seed's choice), seeded noise, or an image of the user's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import StyleConfig
from .errors import NstkitError
from .images import load_image, resize_to


def initial_image(config: StyleConfig, content_rgb: np.ndarray) -> np.ndarray:
    """The start image as float RGB at the content's size."""
    if config.init == "content":
        return content_rgb
    if config.init == "noise":
        rng = np.random.default_rng(config.seed)
        return rng.uniform(0, 255, content_rgb.shape).astype(np.float32)
    if not Path(config.init).exists():
        raise NstkitError(f"init must be 'content', 'noise' or an image path; {config.init} does not exist")
    start = load_image(config.init, None, what="init image", check_min_size=False)  # resized to the content
    return resize_to(start, *content_rgb.shape[:2])
