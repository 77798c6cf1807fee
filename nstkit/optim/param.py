"""How the optimised image is represented (after lucid's `optvis/param`).

The loop asks a parameterisation for the image in caffe-BGR pixel space and
lets Adam move the parameterisation's variable:

- `PixelImage`: the pixels themselves, clipped to the valid range after every
  step, as the seed did;
- `FourierImage`: a colour-decorrelated, frequency-scaled Fourier spectrum
  (Mordvintsev, Pezzotti, Schubert, Olah, "Differentiable Image
  Parameterizations", Distill 2018). Gradient steps in this basis move low
  frequencies as easily as high ones and all colours alike, which is what let
  style transfer work on non-VGG networks there. A sigmoid keeps pixels valid,
  so no clipping is needed.

::

    spectrum ──× 1/f scale──> irfft2 ──> decorrelated colour ──> sigmoid ──> RGB [0,255] ──> caffe BGR
"""

from __future__ import annotations

import numpy as np

from ..media.images import IMAGENET_MEAN_BGR, pixel_bounds, preprocess

# Square root of ImageNet's colour correlation, by SVD (lucid, optvis/param/color.py).
_COLOR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02],
                                        [0.27, 0.00, -0.05],
                                        [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR_CORRELATION = _COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(_COLOR_CORRELATION_SVD_SQRT, axis=0))
_SPECTRUM_GAIN = 4.0  # lucid's scale between the spectrum and the decorrelated image


def _frequency_scale(height: int, width: int, decay_power: float = 1.0) -> np.ndarray:
    """1/f weights for each rfft2 coefficient, so every frequency band starts with equal energy."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    frequencies = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(frequencies, 1.0 / max(height, width)) ** decay_power
    return (scale * np.sqrt(height * width)).astype(np.float32)  # as lucid: steps of one size at any image size


class PixelImage:
    """The image as a variable in caffe space; clipped to valid pixels after each step."""

    def __init__(self, rgb: np.ndarray):
        import tensorflow as tf

        self.variable = tf.Variable(preprocess(rgb), name="image")
        # The bounds differ per channel. Clipping (B, H, W, 3) against (3,) bounds takes TF's general
        # broadcasting kernel: 5 ms a step at 512 px on 2 CPU cores. Clipping rows of W·3 values against
        # one tiled row of bounds is a plain elementwise kernel: 1 ms.
        width = self.variable.shape[2]
        self._low, self._high = (tf.constant(np.tile(bound, width)[None].astype(np.float32))
                                 for bound in pixel_bounds())

    def image(self):
        return self.variable

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) for every entry of the variable: the box L-BFGS-B keeps the pixels in."""
        low, high = pixel_bounds()
        shape = tuple(self.variable.shape)
        return np.broadcast_to(low, shape).astype(np.float64), np.broadcast_to(high, shape).astype(np.float64)

    def after_step(self) -> None:
        import tensorflow as tf

        rows = tf.reshape(self.variable, [-1, self._low.shape[1]])
        self.variable.assign(tf.reshape(tf.clip_by_value(rows, self._low, self._high), tf.shape(self.variable)))


class FourierImage:
    """The image as a scaled, colour-decorrelated Fourier spectrum; see the module docstring."""

    def __init__(self, rgb: np.ndarray, decay_power: float = 1.0):
        import tensorflow as tf

        self.height, self.width = rgb.shape[:2]
        self.scale = tf.constant(_frequency_scale(self.height, self.width, decay_power)[None])  # (1, H, W//2+1)
        self.variable = tf.Variable(self.spectrum_of(rgb), name="spectrum")

    def spectrum_of(self, rgb: np.ndarray) -> np.ndarray:
        """Parameters whose image is ``rgb`` (the exact inverse of `rgb`, up to the sigmoid's range)."""
        unit = np.clip(np.asarray(rgb, np.float64) / 255.0, 1e-4, 1 - 1e-4)
        logits = np.log(unit / (1 - unit))
        decorrelated = logits.reshape(-1, 3) @ np.linalg.inv(COLOR_CORRELATION.T.astype(np.float64))
        channels = decorrelated.reshape(self.height, self.width, 3).transpose(2, 0, 1) * _SPECTRUM_GAIN
        spectrum = np.fft.rfft2(channels) / self.scale.numpy()
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)

    def rgb(self):
        """The image as RGB in [0, 255], shape (1, H, W, 3)."""
        import tensorflow as tf

        spectrum = tf.complex(self.variable[..., 0], self.variable[..., 1]) * tf.cast(self.scale, tf.complex64)
        channels = tf.signal.irfft2d(spectrum, fft_length=[self.height, self.width]) / _SPECTRUM_GAIN
        flat = tf.reshape(tf.transpose(channels, [1, 2, 0]), [-1, 3])
        correlated = tf.matmul(flat, tf.constant(COLOR_CORRELATION.T))
        return tf.reshape(tf.sigmoid(correlated) * 255.0, [1, self.height, self.width, 3])

    def image(self):
        """The image in caffe BGR space, as the network sees it."""
        return self.rgb()[..., ::-1] - IMAGENET_MEAN_BGR

    def bounds(self) -> None:
        return None  # the sigmoid keeps every pixel valid: the spectrum is unbounded

    def after_step(self) -> None:
        pass  # the sigmoid already keeps every pixel valid
