"""Colour control (Gatys, Ecker, Bethge, Hertzmann, Shechtman, "Controlling Perceptual Factors in Neural
Style Transfer", CVPR 2017).

`transfer_colors` recolours images before a run (``color_transfer``, ``color_from``): the styles to the
content's colours, the content to the styles', or all of them to a palette image's; by each RGB channel's
histogram (`match_histogram`) or by the colours' mean and covariance (`match_color`, the paper's linear map).

Two ways to keep the content's colours while taking the style's texture (``preserve_color``):

- `match_color`: before the run, give the style image the content's colour mean and covariance
  (a linear map in RGB), so the style's palette no longer competes with the content's;
- `luminance_only`: run the transfer on luminance alone and put the content's chroma back afterwards
  (YIQ, as in the paper).
"""

from __future__ import annotations

import numpy as np

# RGB -> YIQ (NTSC), the colour space Gatys et al. 2017 used for luminance-only transfer.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], dtype=np.float64)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _moments(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = pixels.reshape(-1, 3).astype(np.float64)
    return flat.mean(axis=0), np.cov(flat, rowvar=False) + 1e-5 * np.eye(3)


def _sqrt_psd(matrix: np.ndarray, inverse: bool = False) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    values = np.clip(values, 1e-8, None) ** (-0.5 if inverse else 0.5)
    return (vectors * values) @ vectors.T


def match_color(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Linearly map ``source`` RGB so its mean and covariance equal ``target``'s (values may leave [0, 255];
    they are clipped, which only matters for extreme palettes)."""
    source_mean, source_cov = _moments(source)
    target_mean, target_cov = _moments(target)
    transform = _sqrt_psd(target_cov) @ _sqrt_psd(source_cov, inverse=True)
    flat = (source.reshape(-1, 3) - source_mean) @ transform.T + target_mean
    return np.clip(flat, 0, 255).reshape(source.shape).astype(np.float32)


def match_histogram(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` with each RGB channel's histogram made ``target``'s: each value goes to the target's quantile
    at that value's mid-rank (a monotone map per channel: equal values stay equal, the order is kept).

    Unlike `match_color` it moves every quantile, not only the first two moments, so a palette's separate hues
    come through and no value leaves the target's range. Not scikit-image's `match_histograms`: it
    interpolates between the target's distinct values by their cumulative counts, which for a swatch of a
    few flat colours (a common palette image) maps half of the pixels below the darkest colour's share.
    """
    source, target = np.asarray(source, np.float32), np.asarray(target, np.float32)
    matched = np.empty(source.shape, np.float32)
    for channel in range(3):
        values = source[..., channel]
        _, index, counts = np.unique(values.ravel(), return_inverse=True, return_counts=True)
        mid_ranks = (np.cumsum(counts) - counts / 2) / values.size
        reference = np.sort(target[..., channel].ravel())
        # np.quantile's linear rule, as one interpolation: its per-quantile work took 10 s a channel for the
        # 65536 distinct values of a float image.
        positions = mid_ranks * (reference.size - 1)
        matched[..., channel] = np.interp(positions, np.arange(reference.size), reference)[index].reshape(
            values.shape)
    return matched


def transfer_colors(method: str, source: str, content_rgb: np.ndarray, style_rgbs: list[np.ndarray],
                    palette_rgb: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(content, styles) recoloured before a run: ``method`` "histogram" or "mean_cov" ("none": as given).

    ``source`` "content": the styles take the content's colours, so the style's palette no longer competes
    with the content's (the paper's colour-preserving transfer); "style": the content (so a content start
    too) takes the styles' colours, all styles' pixels pooled, so the result wears the style's palette;
    otherwise ``palette_rgb``, a third image, gives its colours to the content and every style.
    """
    if method == "none":
        return content_rgb, style_rgbs
    match = match_histogram if method == "histogram" else match_color
    if source == "content":
        return content_rgb, [match(rgb, content_rgb) for rgb in style_rgbs]
    if source == "style":
        pooled = np.concatenate([rgb.reshape(-1, 1, 3) for rgb in style_rgbs])
        return match(content_rgb, pooled), style_rgbs
    return match(content_rgb, palette_rgb), [match(rgb, palette_rgb) for rgb in style_rgbs]


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    return (np.asarray(rgb, np.float64) @ _RGB_TO_YIQ.T).astype(np.float32)


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return (np.asarray(yiq, np.float64) @ _YIQ_TO_RGB.T).astype(np.float32)


def luminance_as_rgb(rgb: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Grey RGB image of ``rgb``'s luminance; with ``like``, its mean and spread matched to ``like``'s
    luminance (the paper's luminance histogram matching, to first and second moments)."""
    luminance = rgb_to_yiq(rgb)[..., 0]
    if like is not None:
        reference = rgb_to_yiq(like)[..., 0]
        luminance = (luminance - luminance.mean()) / (luminance.std() + 1e-6) * reference.std() + reference.mean()
    return np.repeat(np.clip(luminance, 0, 255)[..., None], 3, axis=2).astype(np.float32)


def with_content_chroma(stylized_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """Keep the stylized image's luminance, take I and Q (colour) from the content."""
    yiq = rgb_to_yiq(content_rgb)
    yiq[..., 0] = rgb_to_yiq(stylized_rgb)[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0, 255)


def prepare_for_color_mode(mode: str, content_rgb: np.ndarray, style_rgbs: list[np.ndarray],
                           init_rgb: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(content, styles, start image) as a run in ``preserve_color`` ``mode`` optimises them.

    ``match`` gives the styles the content's colours first; ``luminance``
    turns all three into grey luminance images (the styles' matched to the
    content's), and `restore_color` brings the content's chroma back at the end.
    """
    if mode == "match":  # the styles take the content's colour mean and covariance: color_transfer mean_cov's
        return (*transfer_colors("mean_cov", "content", content_rgb, style_rgbs), init_rgb)
    if mode == "luminance":
        return (luminance_as_rgb(content_rgb), [luminance_as_rgb(rgb, like=content_rgb) for rgb in style_rgbs],
                luminance_as_rgb(init_rgb))
    return content_rgb, style_rgbs, init_rgb


def restore_color(mode: str, stylized_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The finished image in colour: the content's chroma back under it in ``luminance`` mode."""
    return with_content_chroma(stylized_rgb, content_rgb) if mode == "luminance" else stylized_rgb
