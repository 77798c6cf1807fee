
import numpy as np
import pytest
from nst_helpers import bad_images, sha256, smooth_image
from PIL import Image

from nstkit.core.errors import NstkitError
from nstkit.media.images import deprocess, load_image, preprocess, save_image, to_uint8


def test_preprocess_is_keras_resnet50_preprocess_input():
    from keras.applications import resnet50

    rgb = smooth_image(0).astype(np.float32)
    np.testing.assert_allclose(preprocess(rgb), resnet50.preprocess_input(rgb[None].copy()), atol=1e-4)


def test_deprocess_is_the_exact_inverse():
    rgb = smooth_image(3)
    assert np.array_equal(to_uint8(deprocess(preprocess(rgb))), rgb)
    floats = np.random.default_rng(0).uniform(0, 255, (5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(deprocess(preprocess(floats)), floats, atol=1e-4)


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"),
                                         ("TIFF", ".tif")])
def test_reads_common_formats(tmp_path, fmt, suffix):
    rgb = smooth_image(4)
    path = tmp_path / f"x{suffix}"
    Image.fromarray(rgb).save(path, format=fmt, **({"quality": 98} if fmt in ("JPEG", "WEBP") else {}))
    loaded = load_image(path)
    assert loaded.shape == rgb.shape and loaded.dtype == np.float32
    assert np.abs(loaded - rgb).mean() < 4


def test_exif_orientation_is_honoured(tmp_path):
    rgb = smooth_image(5, 40, 64)  # landscape pixels...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...stored rotated: display needs a 90° turn
    path = tmp_path / "phone.jpg"
    Image.fromarray(rgb).save(path, exif=exif, quality=98)
    assert load_image(path).shape == (64, 40, 3)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:, 20:, 3] = 255  # left half transparent
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    loaded = load_image(path)
    assert np.all(loaded[:, :20] == 255) and np.all(loaded[:, 20:] == (10, 20, 30))


def test_grayscale_palette_and_16_bit(tmp_path):
    grey = (np.arange(40 * 40).reshape(40, 40) % 256).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    assert np.array_equal(load_image(tmp_path / "g.png")[..., 1], grey)

    Image.fromarray(smooth_image(6)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (48, 64, 3)

    deep = (grey.astype(np.uint16) * 257)
    Image.fromarray(deep).save(tmp_path / "d16.png")  # 16-bit greyscale
    loaded = load_image(tmp_path / "d16.png")
    np.testing.assert_allclose(loaded[..., 0], grey, atol=0.01)


def test_downscales_to_max_dim_and_never_upscales():
    rgb = smooth_image(7, 100, 200)
    assert load_image(rgb, 64).shape == (32, 64, 3)
    assert load_image(rgb, 400).shape == (100, 200, 3)


def test_bad_images_give_one_clear_line(tmp_path):
    for path, message in bad_images(tmp_path):
        before = sha256(path) if path.exists() else None
        with pytest.raises(NstkitError, match=message) as error:
            load_image(path, 512, what="content image")
        assert "\n" not in str(error.value)
        assert (sha256(path) if path.exists() else None) == before


def test_thin_after_downscaling_mentions_max_dim():
    with pytest.raises(NstkitError, match="after downscaling"):
        load_image(np.zeros((60, 2000, 3), np.uint8), 512)


def test_save_is_atomic_png_and_jpeg_and_refuses_inputs(tmp_path):
    rgb = smooth_image(9)
    png = save_image(tmp_path / "out.png", rgb)
    assert np.array_equal(np.asarray(Image.open(png)), rgb)
    jpg = save_image(tmp_path / "out.jpg", rgb)
    assert Image.open(jpg).format == "JPEG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.png"]  # no temp files left

    before = sha256(png)
    with pytest.raises(NstkitError, match="same file as input"):
        save_image(tmp_path / "." / "out.png", np.zeros_like(rgb), protect=(png,))
    assert sha256(png) == before
    with pytest.raises(NstkitError, match="does not exist"):
        save_image(tmp_path / "nowhere" / "x.png", rgb)
    with pytest.raises(NstkitError, match=r"\.png, \.jpg"):
        save_image(tmp_path / "x.gif", rgb)


def test_outputs_get_the_umask_mode_not_the_temp_files_private_one(tmp_path):
    import os
    import stat

    from nstkit.core.record import write_record

    previous = os.umask(0o022)
    try:
        saved = save_image(tmp_path / "out.png", np.zeros((8, 8, 3), np.uint8))
        record = write_record(saved, {"a": 1})
        assert stat.S_IMODE(saved.stat().st_mode) == 0o644 and stat.S_IMODE(record.stat().st_mode) == 0o644
        os.umask(0o077)
        private = save_image(tmp_path / "private.png", np.zeros((8, 8, 3), np.uint8))
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        os.chmod(saved, 0o640)  # replacing a file keeps the mode its owner gave it
        save_image(saved, np.ones((8, 8, 3), np.uint8))
        assert stat.S_IMODE(saved.stat().st_mode) == 0o640
    finally:
        os.umask(previous)
