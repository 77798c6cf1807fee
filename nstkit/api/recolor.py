"""Colour-only transfer: the content in other images' colours, with no optimisation and no network.

Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (CVPR'17), §5, transfer colour
before a run; asked for on its own (jcjohnson/neural-style #244, #413): a quick look at a palette on the
content before spending a run on it, or the colours of a stylised frame given to others. The content's
structure is untouched: each channel's values keep their order (``histogram``), or move by one affine map
(``mean_cov``), so only the palette changes. The same maps recolour before a run (`StyleConfig.color_transfer`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .._version import __version__
from ..core.errors import NstkitError
from ..core.record import build_record, describe_input
from ..media.color import transfer_colors
from ..media.images import Encoding, ImageInput, load_image, to_uint8
from ..run.result import save_with_record

METHODS = ("histogram", "mean_cov")


@dataclass
class Recolored:
    """The recoloured content (uint8 RGB), unrounded (float RGB, for 16-bit outputs) and its record."""

    image: np.ndarray
    record: dict[str, Any]
    float_image: np.ndarray = field(repr=False, default=None)

    def save(self, path: os.PathLike | str, *, protect: Iterable = (), encoding: Encoding = Encoding()) -> Path:
        """Save the image (atomic) and its record beside it; never over an input (`run.result.save_with_record`)."""
        pixels = self.float_image if encoding.bit_depth == 16 else self.image
        return save_with_record(path, pixels, self.record, protect=protect, encoding=encoding)


def recolor(content: ImageInput, colors: ImageInput | Sequence[ImageInput], method: str = "histogram",
            max_dim: int | None = None) -> Recolored:
    """``content`` wearing the colours of ``colors`` (an image, or several whose pixels are pooled): each RGB
    channel's histogram matched (``histogram``), or the mean and covariance (``mean_cov``). ``max_dim``: the
    content's long side at most (None: as it is). Any size of colour image: only its pixels' distribution counts."""
    if method not in METHODS:
        raise NstkitError(f"unknown colour transfer '{method}': choose {' or '.join(METHODS)}")
    sources = list(colors) if isinstance(colors, (list, tuple)) else [colors]
    if not sources:
        raise NstkitError("recolor needs at least one image to take the colours from")
    content_rgb = load_image(content, max_dim, what="content image", check_min_size=False)  # no network to feed
    color_rgbs = [load_image(source, what="colour image", check_min_size=False) for source in sources]
    for source, rgb in zip(sources, color_rgbs):
        if rgb.shape[0] * rgb.shape[1] < 2:
            raise NstkitError(f"colour image {_name(source)} has one pixel: a colour distribution needs two or more")
    recoloured = np.clip(transfer_colors(method, "style", content_rgb, color_rgbs)[0], 0, 255).astype(np.float32)
    record = build_record(kind="recolor", nstkit=__version__, method=method, max_dim=max_dim,
                          size=list(content_rgb.shape[:2]),
                          inputs={"content": describe_input(content),
                                  "colors": [describe_input(source) for source in sources]})
    return Recolored(to_uint8(recoloured), record, recoloured)


def _name(source: ImageInput) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else f"({type(source).__name__})"
