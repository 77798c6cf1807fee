"""Tiled stylisation (nstkit/tiling.py): the tile geometry, the stitched gradient, and runs end to end."""

import json
import threading
from itertools import islice

import numpy as np
import pytest
from PIL import Image

import nstkit
import nstkit.tiling as tiling
from nst_helpers import run_cli, smooth_image
from nstkit.tiling import stylize_tiled, tile_grid, tile_offsets, window_shape, windows_of

CONTENT, STYLE = smooth_image(1, 96, 128), smooth_image(2, 64, 64)
# No one-pass start (so the tiles do all the work); lr 5: at 96x128 the seed's lr 20 overshoots, tiled or not.
TILED = dict(weights="random", tile_size=48, tile_overlap=16, tile_start_dim=0, learning_rate=5.0)


@pytest.fixture(scope="module")
def four_steps():
    """A tiled run, counting how often the style targets are computed."""
    calls, compiled_steps = [], []
    real = tiling.style_targets

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tiling, "style_targets", counted)
        result = stylize_tiled(CONTENT, STYLE, steps=4, callbacks=[lambda p: compiled_steps.append(p.compiled_step)],
                               **TILED)
    return result, len(calls), compiled_steps


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


def test_one_window_over_the_whole_image_gives_the_untiled_gradient_and_several_come_close():
    import tensorflow as tf

    from nstkit.backbone import FeatureExtractor, load_backbone
    from nstkit.images import preprocess
    from nstkit.losses import content_loss, gram_matrix, style_loss

    config = nstkit.StyleConfig(weights="random", tile_size=128, tile_overlap=0).resolved()
    init = smooth_image(3, 96, 128).astype(np.float32)
    run = tiling._TiledRun(config, CONTENT.astype(np.float32), [STYLE.astype(np.float32)], [1.0], init,
                           threading.Event())
    image = preprocess(init)
    tiled = np.zeros_like(image)
    assert len(tile_grid((96, 128), 128, 0, (0, 0))) == 1
    run.score((0, 0))  # the whole image's Grams, as the first step has them
    losses = run._losses(*run._sweep(image, (0, 0), tiled))

    # The same loss, written out on the whole image.
    model, _ = load_backbone("resnet50", "random")
    extractor = FeatureExtractor(model, [*config.style_layers, *config.content_layers])
    targets = {n: gram_matrix(f) for n, f in extractor(tf.constant(preprocess(STYLE))).items()}
    content_targets = extractor(tf.constant(preprocess(CONTENT)))
    (content_layer,) = config.content_layers
    pixels = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        features = extractor(pixels)
        content = tf.reduce_sum(content_loss(features[content_layer], content_targets[content_layer]))
        style = tf.reduce_sum(style_loss({n: gram_matrix(features[n]) for n in config.style_layers}, targets,
                                         config.style_layers))
        total = config.content_weight * content + config.style_weight * style
    untiled = tape.gradient(total, pixels).numpy()
    np.testing.assert_allclose(losses["total"], float(total), rtol=1e-5)
    scale = np.abs(untiled).max()
    assert scale > 0
    np.testing.assert_allclose(tiled, untiled, atol=1e-5 * scale)

    # Six windows of 80 px: one whole-image style loss keeps the stitched gradient close to the untiled one
    # (the rest is the windows' own borders: at 80 px, conv4 sees 5 feature cells across).
    several = tiling._TiledRun(config.replace(tile_size=40, tile_overlap=20), CONTENT.astype(np.float32),
                               [STYLE.astype(np.float32)], [1.0], init, threading.Event())
    several.score((0, 0))
    stitched = np.zeros_like(image)
    several._sweep(image, (0, 0), stitched)
    assert len(windows_of(tile_grid((96, 128), 40, 20, (0, 0)))) == 6
    cosine = float(np.sum(stitched * untiled) / np.linalg.norm(stitched) / np.linalg.norm(untiled))
    assert cosine > 0.9


def test_a_tiled_run_lowers_the_loss_and_keeps_the_full_size(four_steps):
    result, *_ = four_steps
    total = result.history["total"]
    assert len(total) == 4 and min(total[1:]) < 0.8 * total[0]
    assert result.record["best_loss"] < total[0]
    assert result.image.shape == CONTENT.shape and result.image.dtype == np.uint8
    record = result.record
    assert record["tile_size"] == 48 and record["tile_overlap"] == 16 and record["offset_seed"] == 0
    assert record["window_size"] == [80, 80] and len(record["tile_offsets"]) == 4
    assert all(n > 1 for n in record["windows_per_step"])
    assert record["levels"] == [{"size": [96, 128], "steps": 4, "tiled": True,
                                 "seconds_per_step": record["levels"][0]["seconds_per_step"]}]
    assert record["step_traces"] == 1 and record["seconds_per_step"] > 0
    np.testing.assert_allclose(np.add(np.add(result.history["content"], result.history["style"]),
                                      result.history["tv"]), total, rtol=1e-5)


def test_a_tiled_step_has_no_single_graph(four_steps):
    """`Progress.compiled_step` is None: a tiled step is a Python loop over compiled windows."""
    assert four_steps[2] == [None] * 4


def test_style_targets_are_computed_once_per_run(four_steps):
    result, calls, _ = four_steps
    assert calls == 1 and sum(result.record["windows_per_step"]) > 10


def test_a_seed_gives_the_same_bytes_and_stylize_routes_tile_size_here(four_steps):
    again = nstkit.stylize(CONTENT, STYLE, steps=4, **TILED)
    assert again.image.tobytes() == four_steps[0].image.tobytes()
    assert again.record["tile_offsets"] == four_steps[0].record["tile_offsets"]


def test_the_one_pass_start_then_tiles_with_callbacks_and_stop():
    seen = []

    def watch(progress):
        seen.append((progress.step, progress.steps, progress.image().shape))
        if progress.step == 3:
            progress.stop()

    result = stylize_tiled(CONTENT, STYLE, steps=5, callbacks=[watch],
                           **{**TILED, "tile_start_dim": 64, "tile_start_steps": 2})
    assert [(step, steps) for step, steps, _ in seen] == [(1, 7), (2, 7), (3, 7)]
    assert [shape for _, _, shape in seen] == [(48, 64, 3), (48, 64, 3), (96, 128, 3)]
    record = result.record
    assert result.stopped_early and record["steps_run"] == 3 and record["steps_planned"] == 7
    assert [(level["size"], level["steps"], level["tiled"]) for level in record["levels"]] == [
        ([48, 64], 2, False), ([96, 128], 1, True)]
    assert result.image.shape == CONTENT.shape


@pytest.mark.parametrize("options, message", [
    (dict(tile_size=16), "tile_size must be a whole number of px >= 32"),
    (dict(tile_size=12.5), "tile_size must be a whole number of px >= 32"),
    (dict(tile_size=True), "tile_size must be a whole number of px >= 32"),
    (dict(tile_size=64, tile_overlap=-1), "tile_overlap must be a whole number >= 0"),
    (dict(tile_size=64, tile_start_dim=20), "tile_start_dim must be 0 (no one-pass start) or >= 32"),
    (dict(tile_size=64, param="fourier"), "got param='fourier'"),
    (dict(tile_size=64, precision="float16"), "got precision='float16'"),
])
def test_bad_tile_settings_are_one_clear_error(options, message):
    with pytest.raises(nstkit.NstkitError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        nstkit.StyleConfig(**options).resolved()
    assert "\n" not in str(error.value)


def test_cli_tile_size_end_to_end_and_bad_sizes(tmp_path):
    content, style, out = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "out.png"
    Image.fromarray(CONTENT).save(content)
    Image.fromarray(STYLE).save(style)
    for bad, complaint in (("16", "tile_size must be a whole number of px >= 32"),
                           ("12.5", "--tile-size must be a whole number, got 12.5")):
        done = run_cli("stylize", content, style, "-o", out, "--tile-size", bad, "--weights", "random")
        assert done.returncode == 2 and complaint in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()

    done = run_cli("stylize", content, style, "-o", out, "--weights", "random", "--tile-size", "48",
                   "--tile-overlap", "16", "--tile-start-dim", "0", "--steps", "2")
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (128, 96)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"]["tile_size"] == 48 and record["tile_size"] == 48
    assert [level["tiled"] for level in record["levels"]] == [True] and record["steps_run"] == 2
    assert "ran 2 steps" in done.stdout
    assert "step/s" in done.stderr or "s/step" in done.stderr  # the progress bar ran


def test_a_bfloat16_tiled_run_follows_the_float32_one(four_steps):
    """bfloat16 windows (network and Gram products) track float32 within rounding over a few steps."""
    low = stylize_tiled(CONTENT, STYLE, steps=4, precision="bfloat16", **TILED)
    assert low.record["config"]["precision"] == "bfloat16"
    np.testing.assert_allclose(low.history["total"], four_steps[0].history["total"], rtol=0.05)
