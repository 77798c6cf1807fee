"""The controls artists ask for (#14): style scale, style losses, masks, start images, pooling, output formats.

Each through the public API, the CLI or the run record, with random weights at tiny sizes: mechanics, not looks.
"""

import json

import numpy as np
import pytest
from nst_helpers import run_cli, sha256, smooth_image
from PIL import Image

import nstkit
from nstkit.core.errors import NstkitError
from nstkit.core.record import record_path

TINY = dict(weights="random", max_dim=64, precision="float32")
CONTENT, STYLE, STYLE_2 = smooth_image(1), smooth_image(2, 40, 40), smooth_image(3, 56, 48)


# --------------------------------------------------------------------------- style scale

def test_style_scale_resizes_each_style_to_f_times_the_outputs_long_side():
    result = nstkit.stylize(CONTENT, [STYLE, STYLE_2], steps=1, style_scale=[0.5, 2.0], **TINY)
    long_side = max(CONTENT.shape[:2])  # 64: the output's
    sizes = result.record["style_sizes"]
    assert max(sizes[0]) == round(0.5 * long_side) and max(sizes[1]) == round(2.0 * long_side)
    assert sizes[1][1] / sizes[1][0] == pytest.approx(48 / 56, rel=0.02)  # aspect kept
    unscaled = nstkit.stylize(CONTENT, STYLE, steps=1, **TINY)
    assert unscaled.record["style_sizes"] == [[40, 40]]  # no style_scale: the style as loaded, as before


@pytest.mark.slow  # end to end: the oldest-TF CI phase skips it
def test_style_scale_changes_what_the_style_loss_matches():
    small, large = (nstkit.stylize(CONTENT, STYLE, steps=3, style_scale=f, seed=0, **TINY) for f in (0.6, 3.0))
    assert small.history["style"][0] != pytest.approx(large.history["style"][0], rel=1e-3)
    assert not np.array_equal(small.image, large.image)


@pytest.mark.slow  # end to end: the oldest-TF CI phase skips it
def test_style_scale_may_differ_between_batch_members():
    variants = [{"style_scale": 0.5}, {"style_scale": 2.0}]
    batch = nstkit.stylize_batch(CONTENT, STYLE, variants, steps=4, **TINY)
    for variant, member in zip(variants, batch):
        alone = nstkit.stylize(CONTENT, STYLE, steps=4, optimizer="adam", **variant, **TINY)  # as the batch runs
        np.testing.assert_allclose(member.history["style"], alone.history["style"], rtol=1e-4)


def test_style_scale_needs_one_factor_or_one_per_style():
    with pytest.raises(NstkitError, match="style_scale has 3 factors for 2 style"):
        nstkit.stylize(CONTENT, [STYLE, STYLE_2], steps=1, style_scale=[1, 2, 3], **TINY)
    with pytest.raises(NstkitError, match="style_scale"):
        nstkit.StyleConfig(style_scale=0).resolved()
    with pytest.raises(NstkitError, match="past 8192 px: use a smaller style_scale"):
        nstkit.stylize(CONTENT, STYLE, steps=1, style_scale=200, **TINY)
    with pytest.raises(NstkitError, match="use a larger style_scale"):
        nstkit.stylize(CONTENT, STYLE, steps=1, style_scale=0.1, **TINY)


# --------------------------------------------------------------------------- style losses

@pytest.mark.parametrize("style_loss", ["mean_cov", "wasserstein", "histogram"])
def test_each_style_loss_reads_one_at_the_content_and_falls(style_loss):
    result = nstkit.stylize(CONTENT, STYLE, steps=25, style_loss=style_loss, content_weight=0, **TINY)
    style = result.history["style"]
    assert result.config.style_weight == nstkit.core.config.NORMALISED_STYLE_WEIGHT
    assert style[0] == pytest.approx(result.config.style_weight, rel=1e-4)  # 1 at the content, times the weight
    assert min(style) < 0.7 * style[0]
    assert result.record["config"]["style_loss"] == style_loss


def test_gram_style_loss_is_the_seeds_and_keeps_its_scale():
    default = nstkit.stylize(CONTENT, STYLE, steps=3, **TINY)
    named = nstkit.stylize(CONTENT, STYLE, steps=3, style_loss="gram", **TINY)
    assert np.array_equal(default.image, named.image) and default.config.style_weight == 1e7


@pytest.mark.slow  # end to end: the oldest-TF CI phase skips it
def test_the_style_losses_lead_to_different_images():
    images = {name: nstkit.stylize(CONTENT, STYLE, steps=8, style_loss=name, **TINY).image
              for name in ("gram", "mean_cov", "wasserstein", "histogram")}
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.array_equal(images[a], images[b]), (a, b)


# --------------------------------------------------------------------------- masks

def _mask(tmp_path, left, right, name="mask.png", height=48, width=64):
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2], pixels[:, width // 2:] = left, right
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return path


def test_mask_colours_in_reading_order_black_unstyled_and_edges_to_the_nearest(tmp_path):
    from nstkit.media.masks import load_regions

    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :20], pixels[:, 20:40], pixels[:, 40:] = (0, 0, 255), (0, 0, 0), (255, 0, 0)
    pixels[:, 19] = (30, 0, 200)  # an anti-aliased edge column: nearest to blue
    path = tmp_path / "three.png"
    Image.fromarray(pixels).save(path)
    regions = load_regions(str(path), (40, 60), 2)
    assert regions.labels == ("#0000ff", "#ff0000") and regions.unstyled
    assert regions.weights[:, :20, 0].min() == 1 and regions.weights[:, 20:, 0].max() == 0
    assert regions.weights[:, 40:, 1].min() == 1 and regions.weights[:, :40, 1].max() == 0
    with pytest.raises(NstkitError, match="has 2 styled colour"):
        load_regions(str(path), (40, 60), 3)
    with pytest.raises(NstkitError, match="content's shape"):
        load_regions(str(path), (60, 40), 2)


def test_grayscale_mask_is_one_styles_weight(tmp_path):
    from nstkit.media.masks import load_regions

    pixels = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    path = tmp_path / "ramp.png"
    Image.fromarray(pixels).save(path)
    regions = load_regions(str(path), (48, 64), 1)
    assert regions.labels == ("gray",) and regions.weights.shape == (48, 64, 1)
    np.testing.assert_allclose(regions.weights[0, :, 0], np.linspace(0, 1, 64), atol=0.01)
    with pytest.raises(NstkitError, match="grayscale"):
        load_regions(str(path), (48, 64), 2)


def test_a_mask_of_one_region_is_the_plain_style_loss(tmp_path):
    white = _mask(tmp_path, (255, 255, 255), (255, 255, 255))
    plain = nstkit.stylize(CONTENT, STYLE, steps=4, **TINY)
    masked = nstkit.stylize(CONTENT, STYLE, steps=4, mask=str(white), **TINY)
    np.testing.assert_allclose(masked.history["style"], plain.history["style"], rtol=2e-4)
    assert masked.record["inputs"]["mask"]["sha256"] == sha256(white)


@pytest.mark.slow  # end to end: the oldest-TF CI phase skips it
def test_each_region_takes_its_own_style(tmp_path):
    mask = _mask(tmp_path, (255, 0, 0), (0, 0, 255))
    dark, light = np.full((40, 40, 3), 30, np.uint8), np.full((40, 40, 3), 225, np.uint8)
    dark[::4], light[::4] = 90, 160  # some texture, so the network has statistics to match
    result = nstkit.stylize(CONTENT, [dark, light], steps=60, mask=str(mask), content_weight=0, learning_rate=8, **TINY)
    left, right = result.image[:, :24].mean(), result.image[:, 40:].mean()
    swapped = nstkit.stylize(CONTENT, [light, dark], steps=60, mask=str(mask), content_weight=0, learning_rate=8, **TINY)
    assert left < right and swapped.image[:, :24].mean() > swapped.image[:, 40:].mean()
    assert [r["region"] for r in result.record["regions"]] == ["#ff0000", "#0000ff"]


@pytest.mark.slow  # end to end: the oldest-TF CI phase skips it
def test_an_unstyled_region_keeps_the_contents_own_statistics(tmp_path):
    mask = _mask(tmp_path, (0, 0, 0), (255, 0, 0))
    for style_loss in ("gram", "mean_cov"):
        result = nstkit.stylize(CONTENT, STYLE, steps=30, mask=str(mask), style_loss=style_loss, **TINY)
        if style_loss == "mean_cov":  # the kept region reads 0 at the content; the styled half 1 x its share
            assert result.history["style"][0] == pytest.approx(0.5 * result.config.style_weight, rel=0.05)
        changed = np.abs(result.image.astype(float) - CONTENT).mean(axis=(0, 2))
        assert changed[:24].mean() < 0.8 * changed[40:].mean(), style_loss  # the unstyled half moved less
        assert result.record["regions"][-1]["region"] == "unstyled"


def test_mask_rules_are_one_line_each(tmp_path):
    mask = _mask(tmp_path, (255, 0, 0), (0, 0, 255))
    with pytest.raises(NstkitError, match="has 2 styled colour"):
        nstkit.stylize(CONTENT, STYLE, steps=1, mask=str(mask), **TINY)
    with pytest.raises(NstkitError, match="style_blend"):
        nstkit.StyleConfig(mask=str(mask), style_blend=[1, 1]).resolved()
    with pytest.raises(NstkitError, match="histogram"):
        nstkit.StyleConfig(mask=str(mask), style_loss="histogram").resolved()
    with pytest.raises(NstkitError, match="jitter"):
        nstkit.StyleConfig(mask=str(mask), jitter=2).resolved()
    with pytest.raises(NstkitError, match="normalize_style_layers"):
        nstkit.StyleConfig(mask=str(mask), normalize_style_layers=True).resolved()
    with pytest.raises(NstkitError, match="no mask"):
        nstkit.StyleConfig(mask=str(mask), tile_size=64).resolved()
    with pytest.raises(NstkitError, match="mask not found"):
        nstkit.stylize(CONTENT, STYLE, steps=1, mask=str(tmp_path / "none.png"), **TINY)


# --------------------------------------------------------------------------- start images

def test_start_images():
    from nstkit.media.start import initial_image

    config = nstkit.StyleConfig(seed=3)
    gray = initial_image(config.replace(init="gray"), CONTENT.astype(np.float32))
    assert gray.shape == CONTENT.shape and np.all(gray == 127.5)
    uniform = initial_image(config.replace(init="uniform"), CONTENT.astype(np.float32))
    assert np.array_equal(uniform, initial_image(config.replace(init="noise"), CONTENT.astype(np.float32)))
    style = np.random.default_rng(0).multivariate_normal([60, 120, 200], [[400, 200, 0], [200, 400, 0], [0, 0, 100]],
                                                         (64, 64)).clip(0, 255)
    stats = initial_image(config.replace(init="style_stats"), np.zeros((128, 128, 3), np.float32), [style], [1.0])
    np.testing.assert_allclose(stats.reshape(-1, 3).mean(0), style.reshape(-1, 3).mean(0), atol=3)
    np.testing.assert_allclose(np.cov(stats.reshape(-1, 3).T), np.cov(style.reshape(-1, 3).T), rtol=0.15, atol=15)
    assert abs(np.corrcoef(stats[:-1, :, 0].ravel(), stats[1:, :, 0].ravel())[0, 1]) < 0.05  # noise: no layout


def test_style_stats_start_runs_and_is_recorded():
    result = nstkit.stylize(CONTENT, STYLE, steps=2, init="style_stats", **TINY)
    assert result.record["config"]["init"] == "style_stats" and "init" not in result.record["inputs"]


# --------------------------------------------------------------------------- pooling

def test_avg_pooling_replaces_the_max_pool_by_an_average_of_the_same_window():
    import tensorflow as tf

    from nstkit.network.backbone import FeatureExtractor, load_backbone

    model, _ = load_backbone("resnet50", "random")
    image = tf.constant(np.random.default_rng(0).normal(0, 50, (1, 64, 64, 3)).astype(np.float32))
    layers = ["conv1_relu", "pool1_pool"]
    average = FeatureExtractor(model, layers, pooling="avg")(image)
    maximum = FeatureExtractor(model, layers)(image)
    np.testing.assert_allclose(average["conv1_relu"], maximum["conv1_relu"], rtol=1e-5, atol=1e-5)
    padded = tf.pad(average["conv1_relu"], [[0, 0], [1, 1], [1, 1], [0, 0]])  # ResNet-50's pool1_pad
    expected = tf.nn.avg_pool2d(padded, 3, 2, "VALID").numpy()
    np.testing.assert_allclose(average["pool1_pool"], expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(average["pool1_pool"], maximum["pool1_pool"])


@pytest.mark.slow  # end to end: the oldest-TF CI phase skips it
def test_pooling_reaches_the_run():
    result = nstkit.stylize(CONTENT, STYLE, steps=2, pooling="avg", **TINY)
    plain = nstkit.stylize(CONTENT, STYLE, steps=2, **TINY)
    assert result.record["config"]["pooling"] == "avg"
    assert result.history["style"][0] != pytest.approx(plain.history["style"][0], rel=1e-4)


# --------------------------------------------------------------------------- output formats

@pytest.fixture(scope="module")
def two_steps():
    return nstkit.stylize(CONTENT, STYLE, steps=2, **TINY)


def test_sixteen_bit_png_and_tiff_keep_the_unrounded_image(two_steps, tmp_path):
    import cv2
    import tifffile

    from nstkit.media.images import Encoding, to_uint16

    expected = to_uint16(two_steps.float_image)
    assert not np.array_equal(expected >> 8, expected / 257)  # it holds more than 8 bits' levels
    png = two_steps.save(tmp_path / "out.png", encoding=Encoding(bit_depth=16))
    read = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert read.dtype == np.uint16 and np.array_equal(read, expected)
    assert Image.open(png).info.get("icc_profile")  # the iCCP chunk is readable
    tif = two_steps.save(tmp_path / "out.tif", encoding=Encoding(bit_depth=16))
    with tifffile.TiffFile(tif) as handle:
        assert np.array_equal(handle.asarray(), expected) and 34675 in handle.pages[0].tags  # InterColorProfile
    record = json.loads(record_path(tif).read_text())
    assert record["encoding"] == {"format": "TIFF", "bit_depth": 16, "icc_profile": "sRGB"}


def test_eight_bit_formats_follow_the_extension_with_profile_quality_and_subsampling(two_steps, tmp_path):
    from PIL import JpegImagePlugin

    from nstkit.media.images import Encoding

    for suffix, pil_format in ((".png", "PNG"), (".jpg", "JPEG"), (".tiff", "TIFF"), (".webp", "WEBP")):
        path = two_steps.save(tmp_path / f"out{suffix}")
        opened = Image.open(path)
        assert opened.format == pil_format and opened.size == (64, 48)
        assert bool(opened.info.get("icc_profile")) == (pil_format != "WEBP"), suffix
    png = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(png, two_steps.image)
    jpeg = Image.open(tmp_path / "out.jpg")
    assert JpegImagePlugin.get_sampling(jpeg) == 0  # 4:4:4
    small = two_steps.save(tmp_path / "small.jpg", encoding=Encoding(quality=20, subsampling="4:2:0"))
    assert JpegImagePlugin.get_sampling(Image.open(small)) == 2
    assert small.stat().st_size < (tmp_path / "out.jpg").stat().st_size
    lossless = two_steps.save(tmp_path / "lossless.webp", encoding=Encoding(quality=100))
    assert np.array_equal(np.asarray(Image.open(lossless).convert("RGB")), two_steps.image)


def test_sixteen_bits_need_png_or_tiff(two_steps, tmp_path):
    from nstkit.media.images import Encoding

    with pytest.raises(NstkitError, match="--bit-depth 16 needs a .png or .tif"):
        two_steps.save(tmp_path / "out.jpg", encoding=Encoding(bit_depth=16))
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- CLI, record replay, sweep grid

@pytest.mark.slow  # end to end: the oldest-TF CI phase skips it
def test_controls_from_the_cli_and_their_record_replays(tiny_pair, tmp_path):
    content, style = tiny_pair
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(mask)
    out = tmp_path / "out.tif"
    done = run_cli("stylize", content, style, "-o", out, "--steps", "3", "--weights", "random", "--max-dim", "64",
                   "--style-loss", "wasserstein", "--style-scale", "1.5", "--mask", mask, "--pooling", "avg",
                   "--init", "gray", "--bit-depth", "16", "--precision", "float32", "--optimizer", "adam")
    # Adam: L-BFGS's line search can turn the float rounding between two processes (below) into a different
    # step length (once 46 levels of 65535 in CI, on a loaded machine); this test is about the controls.
    assert done.returncode == 0, done.stderr
    record = json.loads(record_path(out).read_text())
    config = record["config"]
    assert (config["style_loss"], config["style_scale"], config["pooling"], config["init"]) == (
        "wasserstein", [1.5], "avg", "gray")
    assert config["mask"] == str(mask) and record["encoding"]["bit_depth"] == 16
    replay = nstkit.stylize(str(content), str(style), nstkit.StyleConfig.from_dict(config))
    import tifffile

    from nstkit.media.images import to_uint16

    # The same run again, from its record: 16 bits see float rounding between processes (1-2 levels of 65535).
    difference = np.abs(tifffile.imread(out).astype(int) - to_uint16(replay.float_image).astype(int))
    assert difference.max() <= 2


@pytest.mark.slow
def test_a_palette_recolours_the_run_and_the_record_names_it_and_replays(tiny_pair, tmp_path):
    """--color-from IMAGE: content and style take the palette's colours before the run, so the result wears them."""
    content, style = tiny_pair
    palette = tmp_path / "palette.png"
    swatch = np.zeros((24, 24, 3), np.uint8)
    swatch[...] = (30, 60, 210)
    swatch[:8] = (200, 40, 160)  # a third magenta, the rest blue
    Image.fromarray(swatch).save(palette)
    common = ("--steps", "3", "--weights", "random", "--max-dim", "64", "--optimizer", "adam", "-q")
    plain, recoloured = tmp_path / "plain.png", tmp_path / "recoloured.png"
    assert run_cli("stylize", content, style, "-o", plain, *common).returncode == 0
    done = run_cli("stylize", content, style, "-o", recoloured, "--color-from", palette, *common)
    assert done.returncode == 0, done.stderr
    mean = {name: np.asarray(Image.open(path), float).reshape(-1, 3).mean(0) for name, path in
            (("plain", plain), ("recoloured", recoloured))}
    target = swatch.reshape(-1, 3).mean(0)
    assert np.abs(mean["recoloured"] - target).max() < 12 < np.abs(mean["plain"] - target).max()
    record = json.loads(record_path(recoloured).read_text())
    assert (record["config"]["color_transfer"], record["config"]["color_from"]) == ("histogram", str(palette))
    assert record["inputs"]["color_from"]["sha256"] == sha256(palette)
    replay = nstkit.stylize(str(content), str(style), nstkit.StyleConfig.from_record(record))
    assert replay.image.tobytes() == np.asarray(Image.open(recoloured)).tobytes()


def test_a_sweep_grid_can_vary_each_control():
    from nstkit.sweep.grid import expand_grid, parse_grid

    grid = parse_grid(["style_loss=gram,wasserstein", "style_scale=0.5;2", "pooling=max,avg", "init=gray,style_stats",
                       "color_transfer=none,mean_cov"])
    jobs = expand_grid(grid, nstkit.StyleConfig(weights="random"))
    assert len(jobs) == 32
    assert {(j.config.style_loss, tuple(j.config.style_scale), j.config.pooling, j.config.init,
             j.config.resolved().color_transfer) for j in jobs} == {
        (a, (b,), c, d, e) for a in ("gram", "wasserstein") for b in (0.5, 2.0) for c in ("max", "avg")
        for d in ("gray", "style_stats") for e in ("none", "mean_cov")}


def test_every_control_is_in_the_help_with_its_default():
    help_text = run_cli("stylize", "--help").stdout
    entries = {entry.split()[0]: " ".join(entry.split()) for entry in help_text.split("\n  --")[1:]}
    for flag, default in (("style-scale", "the style as loaded"), ("style-loss", "gram"), ("mask", None),
                          ("pooling", "max"), ("init", "content"), ("bit-depth", "8"), ("quality", "95"),
                          ("subsampling", "4:4:4")):
        assert flag in entries, flag
        assert default is None or f"(default: {default}" in entries[flag], (flag, entries[flag])


def test_a_sweep_refuses_a_bad_mask_or_scale_count_before_any_job_runs(tiny_pair, tmp_path):
    from nstkit.sweep import sweep

    content, style = tiny_pair
    mask = _mask(tmp_path, (255, 0, 0), (0, 0, 255))
    with pytest.raises(NstkitError, match=r"grid point .*has 2 styled colour"):
        sweep(str(content), str(style), {"style_weight": [1e6, 1e7]}, mask=str(mask), weights="random",
              out_dir=tmp_path / "out")
    with pytest.raises(NstkitError, match="style_scale has 2 factors for 1 style"):
        sweep(str(content), str(style), {"style_scale": [[1.0, 2.0]]}, weights="random", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
