"""Spatial control (Gatys et al. 2017, "Controlling perceptual factors"): a mask splits the content into regions.

Each region takes its own style (or none), and each region's style
statistics are taken over its own pixels only, weighted by the mask resized
to each layer's resolution (`losses.moments`). Two kinds of mask:

- a **colour** mask: one style per colour, in the order the colours first
  appear reading the mask row by row from the top-left (a left/right split
  gives the left region the first style). Black, if present, is unstyled:
  its pixels keep the content's own statistics (`Regions.at`). Anti-aliased edges are folded into
  the nearest main colour (one covering at least `MIN_REGION_SHARE` of the mask, 2%). Which colours are
  main is decided once, on the mask at its own size (at most `ANALYSIS_DIM`), never at the run's size: a
  thin region is a region at ``--max-dim 96`` exactly when it is one at 384. A flat colour under 2% that is
  no edge's blend is folded into its neighbours with a warning that names it.
- a **grayscale** mask (every pixel R = G = B): one style, applied with the
  mask's brightness as its weight (white: styled, black: the content kept).

No TensorFlow here: a bad mask is one line before the network loads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..core.errors import NstkitError, warn
from .images import load_image

MIN_REGION_SHARE = 0.02  # a colour covering less of the mask is an edge's blend (or a speck), not a region
UNSTYLED = (0, 0, 0)
MAX_ASPECT_MISMATCH = 0.02
ANALYSIS_DIM = 1024  # the long side at which the main colours are found, whatever the run's size
BLEND_TOLERANCE = 24.0  # RGB distance within which a colour is a blend of two main colours (an edge)
WARN_DROPPED_SHARE = 0.001  # flat colours dropped, together covering at least this much: said in a warning


@dataclass(frozen=True)
class Regions:
    """The styled regions' soft weights at the content's size, and what each is (for the run record)."""

    weights: np.ndarray  # (H, W, K) float32 in [0, 1]: K styled regions, K = the number of styles
    labels: tuple[str, ...]  # "#rrggbb" per styled region, or "gray" for a grayscale mask
    unstyled: bool  # some pixels take no style (black in a colour mask; < white in a grayscale one)

    def at(self, shape: tuple[int, int]) -> np.ndarray:
        """Every region's weights at ``shape`` (height, width), area-averaged, (H, W, K + 1) float32 if unstyled.

        With unstyled pixels, the last channel is the region that keeps the
        content (1 minus the styled weights): its target is the content's own
        statistics over it, so its texture is held as it is. With no loss there
        at all, the styled region's deep features, whose receptive fields reach
        across the border, filled it with noise (measured: it moved 1.5x more
        than the styled half).
        """
        weights = self.weights
        if self.unstyled:
            weights = np.concatenate([weights, np.clip(1.0 - weights.sum(axis=-1, keepdims=True), 0, 1)], -1)
        if weights.shape[:2] == tuple(shape):
            return weights
        return np.stack([_resize(weights[..., k], shape) for k in range(weights.shape[2])], axis=-1)

    def describe(self, style_names: list[str]) -> list[dict]:
        styled = [{"region": label, "style": name, "share": round(float(self.weights[..., k].mean()), 4)}
                  for k, (label, name) in enumerate(zip(self.labels, style_names))]
        kept = [{"region": "unstyled", "style": "the content's own statistics",
                 "share": round(float(np.clip(1 - self.weights.sum(axis=-1), 0, 1).mean()), 4)}] if self.unstyled else []
        return styled + kept


def load_regions(path: str, content_shape: tuple[int, int], style_count: int) -> Regions:
    """Read a mask for a content of ``content_shape`` with ``style_count`` styles; a bad one is one line."""
    # At most the content's size: the regions are found there (a LANCZOS edge's blends go to the nearest colour).
    pixels = load_image(path, max(content_shape), what="mask", check_min_size=False)
    height, width = pixels.shape[:2]
    aspect, content_aspect = width / height, content_shape[1] / content_shape[0]
    if abs(aspect / content_aspect - 1) > MAX_ASPECT_MISMATCH:
        raise NstkitError(f"mask {path} is {width}x{height} px and the content {content_shape[1]}x{content_shape[0]}: "
                          "give a mask of the content's shape (it is resized to the content's size)")
    rgb = np.round(pixels).astype(np.int64)
    if np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]):
        if style_count != 1:
            raise NstkitError(f"mask {path} is grayscale (one style's weight) and {style_count} styles were given: "
                              "give one style, or a colour mask with one colour per style")
        weights = _resize(pixels[..., 0] / 255.0, content_shape)[..., None]
        if weights.max() == 0:
            raise NstkitError(f"mask {path} is black everywhere, so nothing would be styled: paint the region to "
                              "style white")
        return Regions(weights.astype(np.float32), ("gray",), bool(weights.min() < 1.0))
    colours = _main_colours(load_image(path, ANALYSIS_DIM, what="mask", check_min_size=False), path)
    labels = _nearest(rgb, colours)
    styled = [colour for colour in colours if colour != UNSTYLED]
    if len(styled) != style_count:
        names = ", ".join(_hex(c) for c in styled)
        raise NstkitError(f"mask {path} has {len(styled)} styled colour(s) ({names}{', and black unstyled' if UNSTYLED in colours else ''}) "
                          f"and {style_count} style(s) were given: give one style per colour, in the order the "
                          "colours first appear from the top-left")
    weights = np.stack([_resize((labels == colours.index(c)).astype(np.float32), content_shape) for c in styled], -1)
    return Regions(weights.astype(np.float32), tuple(_hex(c) for c in styled), UNSTYLED in colours)


def _main_colours(pixels: np.ndarray, path: str) -> list[tuple[int, int, int]]:
    """The colours covering at least `MIN_REGION_SHARE` of the mask, in reading order; a warning for flat colours
    left out that are no blend of two main ones (a region painted too small, not an anti-aliased edge)."""
    flat = np.round(pixels).astype(np.int64).reshape(-1, 3)
    values, first, counts = np.unique(flat, axis=0, return_index=True, return_counts=True)
    main = counts >= MIN_REGION_SHARE * len(flat)
    if not main.any():
        raise NstkitError("the mask has no colour covering even 2% of it: give flat colour regions")
    order = np.argsort(first[main])
    colours = [tuple(int(v) for v in values[main][i]) for i in order]
    dropped = ~main & (_distance_to_blends(values, np.asarray(colours, np.float64)) > BLEND_TOLERANCE)
    if counts[dropped].sum() >= WARN_DROPPED_SHARE * len(flat):
        biggest = np.argsort(-counts * dropped)[: min(3, int(dropped.sum()))]
        named = ", ".join(f"{_hex(tuple(values[i]))} ({counts[i] / len(flat):.1%})" for i in biggest)
        warn(f"mask {path}: {named} cover(s) under {MIN_REGION_SHARE:.0%} of the mask each, so they are not regions "
             "of their own and take the nearest region's style: paint them larger to give them a style")
    return colours


def _distance_to_blends(values: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Each colour's RGB distance to the nearest blend of two main colours (a segment between them), or to the
    nearest main colour when there is one."""
    best = np.sqrt(((values[:, None, :] - palette[None]) ** 2).sum(-1)).min(axis=1)
    for a in range(len(palette)):
        for b in range(a + 1, len(palette)):
            direction = palette[b] - palette[a]
            t = np.clip((values - palette[a]) @ direction / (direction @ direction), 0, 1)
            closest = palette[a] + t[:, None] * direction
            best = np.minimum(best, np.sqrt(((values - closest) ** 2).sum(-1)))
    return best


def _nearest(rgb: np.ndarray, colours: list[tuple[int, int, int]]) -> np.ndarray:
    """Each pixel's region: the index of its nearest main colour."""
    flat = rgb.reshape(-1, 3)
    palette = np.asarray(colours, np.int64)
    distance = ((flat[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2)
    return distance.argmin(axis=1).reshape(rgb.shape[:2])


def _hex(colour: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{v:02x}" for v in colour)


def _resize(channel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if channel.shape == tuple(shape):
        return channel.astype(np.float32)
    image = Image.fromarray(channel.astype(np.float32))
    return np.clip(np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BOX), np.float32), 0.0, 1.0)
