"""A run's inputs, checked before TensorFlow loads: one function for the CLI, the API, sweeps and video.

`check_inputs` reads what a run will read, as the run reads it: the content at ``max_dim``, each style at
the size its statistics are taken at (``style_scale``), the init image, the mask against the content and the
styles, and the weights spec. A missing file, an unreadable or too small image, a mask that does not fit or a
style scale out of range is then one line in milliseconds, not an error after TensorFlow's seconds of
start-up. The run itself takes the images it read (`api.stylize.prepare`), so each is read once there.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core import packs
from ..core.config import StyleConfig, init_is_path, palette_path, parse_weights
from ..core.errors import NstkitError
from . import images
from .images import ImageInput, resize_to, scaled_style_shape
from .masks import Regions, load_regions
from .start import load_init_image

# The config fields `check_inputs` reads: configs that agree on these check alike (a sweep checks each set once).
INPUT_FIELDS = tuple(dict.fromkeys(("max_dim", "style_scale", "init", "mask", "color_from", "weights",
                                    *packs.PACK_FIELDS)))  # a style pack fits some configs only


@dataclass
class Inputs:
    """What `check_inputs` read; None for what it left unread (a path, with ``read_paths=False``)."""

    content: np.ndarray | None  # float32 RGB at max_dim
    styles: list[np.ndarray | None]  # as read: at max_dim, or whole where a style_scale resizes them
    style_shapes: list[tuple[int, int] | None]  # (height, width) each style's statistics are taken at
    init: np.ndarray | None  # an init path's image at its own size; None for the other starts
    regions: Regions | None  # the mask's regions at the content's size
    palette: np.ndarray | None = None  # color_from's image (float32 RGB at max_dim), when it names one

    def style_images(self) -> list[np.ndarray]:
        """Each style at the size its statistics are taken at (a scaled style is resized from the whole image)."""
        return [resize_to(rgb, *shape) for rgb, shape in zip(self.styles, self.style_shapes)]


def check_inputs(content: ImageInput, styles: Sequence[ImageInput], config: StyleConfig, *,
                 read_paths: bool = True, point: str | None = None) -> Inputs:
    """Read and check a run's inputs for a resolved ``config``, without TensorFlow; a bad one is one `NstkitError`.

    In order: one blend weight and one style scale per style, the content, each style (and its scaled size),
    the init image, the mask, color_from's palette image, the weights spec. ``read_paths=False`` reads no file
    (images given as arrays are still checked): a cluster's workers may see files this machine does not.
    ``point``: a sweep's grid point, named in the errors that come from the config's own combination (a style
    scale, a mask).
    """
    styles = packs.expand(styles) if read_paths else list(styles)  # a pack stands for its styles, summarised
    counted = packs.style_count(styles)  # unread packs (read_paths=False) by their metadata, if readable here
    if counted:
        config.blend_weights(counted)
    scales = config.style_scales(counted) if counted else None

    def readable(source) -> bool:
        return read_paths or not isinstance(source, (str, os.PathLike))

    # images.load_image, looked up at each call: a test (tests/test_faults.py) can stand in for it
    content_rgb = images.load_image(content, config.max_dim, what="content image") if readable(content) else None
    loaded: list[np.ndarray | None] = []
    shapes: list[tuple[int, int] | None] = []
    for index, source in enumerate(styles):
        what = "style image" if len(styles) == 1 else f"style image {index + 1}"
        rgb = shape = None
        if isinstance(source, packs.PackedStyle):
            with _naming(point):
                packs.check_fits(source, config)
            if scales is not None:
                raise NstkitError(f"{what} is from style pack {source.pack}, which holds it at one size, and "
                                  "style_scale resizes a style by the content: give the style image with style_scale")
            rgb, shape = source.pixels, source.pixels.shape[:2]
        elif readable(source) and scales is None:
            rgb = images.load_image(source, config.max_dim, what=what)
            shape = rgb.shape[:2]
        elif readable(source):  # read whole, so a scale above 1 enlarges the real pixels where the file has them
            rgb = images.load_image(source, None, what=what, check_min_size=False)
            if content_rgb is not None:
                with _naming(point):
                    shape = scaled_style_shape(rgb.shape[:2], scales[index], content_rgb.shape[:2], what)
        loaded.append(rgb)
        shapes.append(shape)
    init_rgb = load_init_image(config.init) if init_is_path(config.init) and read_paths else None
    regions = None
    if config.mask and read_paths and content_rgb is not None:
        with _naming(point):
            regions = load_regions(config.mask, content_rgb.shape[:2], len(styles))  # expanded: one per style
    palette = None
    if palette_path(config.color_from) and read_paths:
        if not os.path.exists(config.color_from):
            raise NstkitError(f"color_from must be 'content', 'style' or a palette image's path, and there is no "
                              f"file at {config.color_from}: check the path")
        palette = images.load_image(config.color_from, config.max_dim, what="colour palette image (color_from)",
                                    check_min_size=False)  # no network sees it: a small swatch will do
        if palette.shape[0] * palette.shape[1] < 2:
            raise NstkitError(f"colour palette image (color_from) {config.color_from} has one pixel, and a "
                              "colour transfer needs a spread of colours: give an image of at least 2 pixels")
    parse_weights(config.weights, check_file=read_paths)
    return Inputs(content_rgb, loaded, shapes, init_rgb, regions, palette)


@contextlib.contextmanager
def _naming(point: str | None):
    """An error inside names the sweep's grid point first, if there is one."""
    try:
        yield
    except NstkitError as error:
        if point is None:
            raise
        raise NstkitError(f"grid point {point}: {error}") from None
