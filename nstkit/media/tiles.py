"""Tile geometry for images too large for one pass: tiles, their windows, blend weights, moving offsets.

A tiled step (`sources.TiledWindows`) walks the image in tiles and blends their
windows' gradients::

          offset (oy, ox): a new seeded draw each step, so tile borders never stay in one place
          ↓
       ┌──┬──────┬──────┬─┐      for each tile:
       │  │      │      │ │        window = tile + `tile_overlap` px of real pixels on every side
       ├──┼──────┼──────┼─┤        window ──> network ──> the window's share of every loss term
       │  │ ┌──┐ │      │ │        the window's gradient x blend weights ──> one full-size gradient buffer
       │  │ └──┘ │      │ │
       ├──┼──────┼──────┼─┤      then: one optimiser step of the whole image, clip, keep the best image
       └──┴──────┴──────┴─┘

This module is the geometry only (numpy, no TensorFlow):

- **A smooth blend across the overlap, not a hard switch.** Neighbouring
  windows overlap by 2·``tile_overlap`` px; across that band a pixel's
  gradient passes from one window's to the other's along a raised cosine
  (`blend_weights`: the weights sum to 1 everywhere, and each window's share
  fades to 0 before its edge, where the network's zero padding distorts the
  gradient). Keeping only each tile's own pixels' gradient (a hard switch)
  left a straight edge inside a flat cup after two steps of a 2048 px run:
  Adam's early, nearly sign-like steps turn any jump in the gradient into a
  ±learning-rate step in the image. The grid's origin moves every step, so no band stays in one place.
- **Windows shift inward at the image edges instead of being padded**: every
  window has one shape (one trace of the compiled function), and edge tiles
  see real pixels, not mirrored ones. A window is only smaller than
  ``tile_size + 2·tile_overlap`` along an axis where the whole image is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile: its own pixels ``[top, bottom) x [left, right)``, and where its window starts (image px)."""

    top: int
    bottom: int
    left: int
    right: int
    window_top: int
    window_left: int

    @property
    def area(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)


def window_shape(image_shape: tuple[int, int], tile_size: int, overlap: int) -> tuple[int, int]:
    """(height, width) of every window of a run: the tile plus its margins, or the whole axis if smaller."""
    return min(tile_size + 2 * overlap, image_shape[0]), min(tile_size + 2 * overlap, image_shape[1])


def tile_grid(image_shape: tuple[int, int], tile_size: int, overlap: int,
              offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles covering every pixel exactly once, on a grid whose origin sits at ``-offset``.

    Tiles at the image's edges are cut to the image; their windows keep the
    common shape by reaching further into the image.
    """
    window = window_shape(image_shape, tile_size, overlap)
    rows = _spans(image_shape[0], tile_size, offset[0], overlap, window[0])
    columns = _spans(image_shape[1], tile_size, offset[1], overlap, window[1])
    return [Tile(top, bottom, left, right, window_top, window_left)
            for top, bottom, window_top in rows for left, right, window_left in columns]


def _spans(size: int, tile_size: int, offset: int, overlap: int, window: int) -> list[tuple[int, int, int]]:
    """(start, stop, window start) of each tile along one axis."""
    spans = []
    for start in range(-(offset % tile_size), size, tile_size):
        low, high = max(start, 0), min(start + tile_size, size)
        if high > low:
            spans.append((low, high, min(max(low - overlap, 0), size - window)))
    return spans


def blend_weights(tile: Tile, image_shape: tuple[int, int], window: tuple[int, int], overlap: int) -> np.ndarray:
    """How much of the window's gradient goes to each of its pixels for this tile, shape ``window``.

    1 inside the tile, a raised-cosine ramp across each border shared with a
    neighbour (from ``overlap`` px outside the tile to ``overlap`` px inside),
    0 beyond. Along an axis the weights are ``ramp(own start) - ramp(own end)``,
    so over all tiles they telescope to exactly 1 at every pixel. With
    ``overlap`` 0 the ramp is a step: each tile keeps its own pixels' gradient.
    """
    rows = _axis_weights(tile.window_top, window[0], tile.top, tile.bottom, image_shape[0], overlap)
    columns = _axis_weights(tile.window_left, window[1], tile.left, tile.right, image_shape[1], overlap)
    return np.outer(rows, columns).astype(np.float32)


def _axis_weights(window_start: int, length: int, low: int, high: int, size: int, overlap: int) -> np.ndarray:
    positions = np.arange(window_start, window_start + length)
    rising = 1.0 if low == 0 else _ramp(positions, low, overlap)
    falling = 0.0 if high == size else _ramp(positions, high, overlap)
    return rising - falling


def _ramp(positions: np.ndarray, border: int, overlap: int) -> np.ndarray:
    """0 up to ``border - overlap``, 1 from ``border + overlap``, a raised cosine between (a step if overlap is 0)."""
    if overlap == 0:
        return (positions >= border).astype(np.float64)
    share = np.clip((positions + 0.5 - (border - overlap)) / (2 * overlap), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * share)


def windows_of(tiles: list[Tile]) -> dict[tuple[int, int], list[Tile]]:
    """Tiles grouped by their window's origin: tiles sharing a window share one pass through the network.

    That happens to a sliver of at most ``tile_overlap`` px at an image edge
    (its window is its neighbour's), and to every tile of an axis no longer than a window.
    """
    windows: dict[tuple[int, int], list[Tile]] = {}
    for tile in tiles:
        windows.setdefault((tile.window_top, tile.window_left), []).append(tile)
    return windows


class TileOffsets:
    """The grid origin of each step, (oy, ox) in [0, tile_size)²: seeded, and never the same twice running.

    An iterator whose state (`state`, `restore`) goes into a checkpoint, so a
    resumed run draws the offsets the uninterrupted one would have.
    """

    def __init__(self, seed: int, tile_size: int):
        self.tile_size = tile_size
        self._rng = np.random.default_rng(seed)
        self._previous: tuple[int, int] | None = None

    def __iter__(self) -> "TileOffsets":
        return self

    def __next__(self) -> tuple[int, int]:
        while True:
            offset = tuple(int(v) for v in self._rng.integers(0, self.tile_size, size=2))
            if offset != self._previous:
                self._previous = offset
                return offset

    def state(self) -> dict:
        return {"rng": self._rng.bit_generator.state, "previous": self._previous}

    def restore(self, state: dict) -> None:
        self._rng.bit_generator.state = state["rng"]
        self._previous = tuple(state["previous"]) if state["previous"] is not None else None


def tile_offsets(seed: int, tile_size: int) -> TileOffsets:
    """The seeded sequence of grid origins (see `TileOffsets`)."""
    return TileOffsets(seed, tile_size)
