"""Tile geometry (`nstkit.media.tiles`): tiles cover the image exactly once, windows stay inside it, blend weights
share out each pixel's gradient exactly once, and the grid's offsets come from a seed and resume from a saved state.
Numpy only: no network runs here (tiled runs are tests/run/test_gradients.py)."""

import json
from itertools import islice

import numpy as np
import pytest

import nstkit.media.tiles as tiling
from nstkit.media.tiles import tile_grid, tile_offsets, window_shape, windows_of


def _coverage(shape, tiles):
    covered = np.zeros(shape, int)
    for tile in tiles:
        covered[tile.top:tile.bottom, tile.left:tile.right] += 1
    return covered


@pytest.mark.parametrize("shape, tile_size, overlap", [((96, 128), 48, 16), ((3072, 4096), 512, 64),
                                                      ((40, 300), 64, 8)])
def test_every_pixel_is_in_exactly_one_tile_and_the_borders_move_every_step(shape, tile_size, overlap):
    height, width = window_shape(shape, tile_size, overlap)
    offsets = list(islice(tile_offsets(seed=0, tile_size=tile_size), 20))
    borders_seen = []
    for offset in offsets:
        tiles = tile_grid(shape, tile_size, overlap, offset)
        assert (_coverage(shape, tiles) == 1).all()
        for tile in tiles:  # inside its window, with `overlap` px of context wherever the image has them
            assert 0 <= tile.window_top and tile.window_top + height <= shape[0]
            assert 0 <= tile.window_left and tile.window_left + width <= shape[1]
            assert tile.top - tile.window_top >= min(overlap, tile.top)
            assert tile.window_top + height - tile.bottom >= min(overlap, shape[0] - tile.bottom)
            assert tile.left - tile.window_left >= min(overlap, tile.left)
            assert tile.window_left + width - tile.right >= min(overlap, shape[1] - tile.right)
        borders_seen.append({tile.top for tile in tiles} | {-tile.left for tile in tiles})
    assert all(a != b for a, b in zip(offsets, offsets[1:]))
    assert all(a != b for a, b in zip(borders_seen, borders_seen[1:]))  # no border stays where it was


@pytest.mark.parametrize("shape, tile_size, overlap", [((96, 128), 48, 16), ((2728, 4096), 512, 64),
                                                      ((100, 100), 32, 40), ((96, 128), 48, 0)])
def test_blend_weights_share_out_each_pixels_gradient_exactly_once(shape, tile_size, overlap):
    height, width = window_shape(shape, tile_size, overlap)
    for offset in islice(tile_offsets(seed=1, tile_size=tile_size), 5):
        total = np.zeros(shape)
        for tile in tile_grid(shape, tile_size, overlap, offset):
            weights = tiling.blend_weights(tile, shape, (height, width), overlap)
            assert weights.min() >= 0 and weights.shape == (height, width)
            total[tile.window_top:tile.window_top + height, tile.window_left:tile.window_left + width] += weights
            if overlap == 0:  # no blend: each tile keeps exactly its own pixels
                own = np.zeros(shape)
                own[tile.top:tile.bottom, tile.left:tile.right] = 1
                assert (own[tile.window_top:tile.window_top + height,
                            tile.window_left:tile.window_left + width] == weights).all()
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_offsets_come_from_the_seed():
    assert list(islice(tile_offsets(3, 512), 10)) == list(islice(tile_offsets(3, 512), 10))
    assert list(islice(tile_offsets(3, 512), 10)) != list(islice(tile_offsets(4, 512), 10))
    assert all(0 <= o < 512 for offset in islice(tile_offsets(3, 512), 50) for o in offset)


def test_a_sliver_at_the_edge_shares_its_neighbours_window():
    tiles = tile_grid((96, 128), 48, 16, offset=(40, 0))  # rows: 8 px sliver, 48, 40
    assert [tile.bottom - tile.top for tile in tiles[::3]] == [8, 48, 40]
    assert len(windows_of(tiles)) == 2 * 3


def test_the_blend_is_a_raised_cosine_across_the_border_and_a_step_without_overlap():
    # One row of 8 px, two tiles of 4: both windows are the whole row (an axis no longer than a window).
    left, right = tile_grid((1, 8), 4, 2)
    assert (left.left, left.right, right.left, right.right) == (0, 4, 4, 8) and len(windows_of([left, right])) == 1
    share = tiling.blend_weights(left, (1, 8), (1, 8), 2)[0]
    centre = (np.arange(8) + 0.5 - 2) / 4  # pixel centres across the band [border - 2, border + 2)
    expected = 1 - (0.5 - 0.5 * np.cos(np.pi * np.clip(centre, 0, 1)))
    np.testing.assert_allclose(share, expected, atol=1e-6)
    assert share[:2].tolist() == [1, 1] and share[6:].tolist() == [0, 0]  # own pixels far from the border; beyond
    np.testing.assert_allclose(share[:4], 1 - share[4:][::-1], atol=1e-6)  # symmetric about the border
    np.testing.assert_allclose(tiling.blend_weights(right, (1, 8), (1, 8), 2)[0], 1 - share, atol=1e-6)
    assert tiling.blend_weights(left, (1, 8), (1, 8), 0)[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]


def test_windows_keep_one_shape_and_shift_inward_at_the_edges():
    assert window_shape((96, 128), 48, 16) == (80, 80)
    assert window_shape((40, 300), 64, 8) == (40, 80)  # no taller than the image
    tiles = tile_grid((96, 128), 48, 16, offset=(0, 0))
    assert [(t.top, t.bottom) for t in tiles[::3]] == [(0, 48), (48, 96)]
    assert [(t.left, t.right) for t in tiles[:3]] == [(0, 48), (48, 96), (96, 128)]
    assert [t.window_left for t in tiles[:3]] == [0, 32, 48]  # the last reaches 16 px further in, not past the edge
    assert [t.window_top for t in tiles[::3]] == [0, 16]


def test_no_offset_follows_itself():
    offsets = list(islice(tile_offsets(seed=0, tile_size=2), 200))  # 4 possible offsets: repeats are frequent
    assert all(a != b for a, b in zip(offsets, offsets[1:]))
    assert set(offsets) == {(0, 0), (0, 1), (1, 0), (1, 1)}


@pytest.mark.parametrize("tile_size", [2, 512])
def test_offsets_resume_from_a_saved_state_as_if_never_stopped(tile_size):
    for drawn in range(12):  # stopped after each of the first 12 draws in turn
        uninterrupted = tile_offsets(seed=5, tile_size=tile_size)
        expected = list(islice(uninterrupted, drawn + 20))[drawn:]
        stopped = tile_offsets(seed=5, tile_size=tile_size)
        list(islice(stopped, drawn))
        state = json.loads(json.dumps(stopped.state()))  # as a checkpoint keeps it
        resumed = tile_offsets(seed=99, tile_size=tile_size)  # another seed: the state alone decides
        resumed.restore(state)
        assert list(islice(resumed, 20)) == expected, drawn
