import numpy as np
from nst_helpers import smooth_image

from nstkit.media.images import deprocess, pixel_bounds
from nstkit.optim.param import FourierImage, PixelImage


def test_fourier_round_trip_image_to_parameters_to_image():
    rgb = np.clip(smooth_image(1, 48, 64).astype(np.float32), 3, 252)  # inside the sigmoid's open range
    fourier = FourierImage(rgb)
    np.testing.assert_allclose(fourier.rgb().numpy()[0], rgb, atol=0.05)
    np.testing.assert_allclose(deprocess(fourier.image().numpy()), rgb, atol=0.05)


def test_fourier_image_is_always_valid_whatever_the_parameters():
    fourier = FourierImage(smooth_image(2, 32, 40).astype(np.float32))
    fourier.variable.assign(np.random.default_rng(0).normal(0, 1e3, fourier.variable.shape).astype(np.float32))
    rgb = fourier.rgb().numpy()
    assert rgb.shape == (1, 32, 40, 3) and rgb.min() >= 0 and rgb.max() <= 255


def test_fourier_spectrum_is_odd_width_safe():
    rgb = np.clip(smooth_image(3, 37, 51).astype(np.float32), 3, 252)
    np.testing.assert_allclose(FourierImage(rgb).rgb().numpy()[0], rgb, atol=0.05)


def test_pixel_image_clips_to_valid_pixels():
    pixels = PixelImage(smooth_image(4, 32, 32).astype(np.float32))
    pixels.variable.assign(pixels.variable * 50)
    pixels.after_step()
    low, high = pixel_bounds()
    values = pixels.image().numpy()
    assert np.all(values >= low - 1e-4) and np.all(values <= high + 1e-4)
