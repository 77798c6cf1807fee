"""Offline quality metrics: content kept, style matched, colours moved.

ImageNet weights cannot be downloaded on machines without a network, so
quality has to be measurable without them:

- **content**: SSIM (scikit-image) between output and content, on luminance
  and on Sobel edge maps;
- **style**: Gram-matrix distance to the style image in a *held-out*
  network, a ResNet-50 with differently seeded random weights. The network
  that optimised an image is never its judge: it would grade its own answers;
- **colour**: distance between Lab colour histograms, and between Lab means
  and standard deviations.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import NstkitError
from ..media.images import ImageInput

JUDGE_WEIGHTS = "random:20211"  # a seed no preset or test optimises with
JUDGE_LAYERS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray

    return rgb2gray(np.asarray(rgb, np.float64) / 255.0)


def _same_size(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    from ..media.images import resize_to

    return resize_to(np.asarray(reference, np.float32), *np.asarray(output).shape[:2])


def content_ssim(output: np.ndarray, content: np.ndarray) -> dict[str, float]:
    """SSIM of luminance and of edge maps (1 = structure fully kept)."""
    from skimage.filters import sobel
    from skimage.metrics import structural_similarity

    out, ref = _luminance(output), _luminance(_same_size(output, content))
    edges_out, edges_ref = sobel(out), sobel(ref)
    edge_range = max(float(edges_out.max()), float(edges_ref.max()), 1e-6)
    return {"ssim_luminance": float(structural_similarity(out, ref, data_range=1.0)),
            "ssim_edges": float(structural_similarity(edges_out, edges_ref, data_range=edge_range))}


def gram_distance(output: np.ndarray, style: np.ndarray, *, judge_weights: str = JUDGE_WEIGHTS,
                  layers: Sequence[str] = JUDGE_LAYERS, optimised_with: str | None = None) -> float:
    """Mean over ``layers`` of ||G(output) - G(style)||_F / ||G(style)||_F in the judge network.

    ``optimised_with`` is the weights string the output was made with; the
    judge must differ from it.
    """
    if optimised_with is not None and optimised_with == judge_weights:
        raise NstkitError(f"the judge network ({judge_weights}) is the one that made the image: "
                          "choose other judge_weights so the metric is held out")
    from ..media.images import preprocess
    from ..network.backbone import FeatureExtractor, load_resnet50
    from ..objective.losses import gram_matrix

    model, _ = load_resnet50(judge_weights)
    extractor = FeatureExtractor(model, list(layers))
    out_features = extractor(preprocess(np.asarray(output, np.float32)))
    style_features = extractor(preprocess(np.asarray(style, np.float32)))
    distances = []
    for name in extractor.layer_names:
        g_out = gram_matrix(out_features[name]).numpy()
        g_style = gram_matrix(style_features[name]).numpy()
        distances.append(np.linalg.norm(g_out - g_style) / max(np.linalg.norm(g_style), 1e-12))
    return float(np.mean(distances))


def color_distance(output: np.ndarray, reference: np.ndarray, bins: int = 16) -> dict[str, float]:
    """Lab histogram distance (half the L1 distance of normalised 3-D histograms, in [0, 1]) and the
    distance between Lab means and standard deviations."""
    from skimage.color import rgb2lab

    lab_out = rgb2lab(np.asarray(output, np.float64) / 255.0).reshape(-1, 3)
    lab_ref = rgb2lab(np.asarray(reference, np.float64) / 255.0).reshape(-1, 3)
    ranges = [(0, 100), (-128, 128), (-128, 128)]
    hist_out, _ = np.histogramdd(lab_out, bins=bins, range=ranges)
    hist_ref, _ = np.histogramdd(lab_ref, bins=bins, range=ranges)
    histogram = 0.5 * np.abs(hist_out / hist_out.sum() - hist_ref / hist_ref.sum()).sum()
    moments = np.linalg.norm(np.r_[lab_out.mean(0) - lab_ref.mean(0), lab_out.std(0) - lab_ref.std(0)])
    return {"color_histogram": float(histogram), "color_moments": float(moments)}


def evaluate(output: ImageInput, content: ImageInput, style: ImageInput, *, optimised_with: str | None = None,
             judge_weights: str = JUDGE_WEIGHTS) -> dict[str, float]:
    """Every metric for one output: content SSIMs, held-out Gram distance, colour distances to the style.

    Each image is a path, a PIL image or an array, as `nstkit.stylize` takes them.
    """
    from ..media.images import load_image

    output, content, style = (load_image(image, what=what) for image, what in
                              ((output, "output image"), (content, "content image"), (style, "style image")))
    return {**content_ssim(output, content),
            "gram_distance": gram_distance(output, style, judge_weights=judge_weights,
                                           optimised_with=optimised_with),
            **color_distance(output, style)}


# ---- A style distance that needs no network -------------------------------------------------------------------
# A random network's Gram distance sees palette and fine texture only. This one compares the images' patch
# distributions directly: all 7x7 RGB patches at three scales (full, half, quarter size), a sample of each,
# and the sliced Wasserstein distance between the output's and the style's (POT). It needs no weights, so it
# judges the same way offline and with ImageNet; `validate_patch_distance` checks it ranks what it should.
PATCH_SIZE = 7
PATCH_SCALES = (1.0, 0.5, 0.25)
PATCH_SAMPLES = 4096  # patches drawn per image and scale: the distance's spread over seeds is ~1% then
PATCH_PROJECTIONS = 256
SHUFFLE_TILE = 8  # px: the tiles `shuffle_patches` permutes, about one patch wide


def _ot():
    """POT, with its optional TensorFlow/PyTorch/JAX back ends off: importing them costs seconds and memory,
    and this metric hands it numpy arrays only."""
    import os

    for backend in ("TENSORFLOW", "PYTORCH", "JAX", "CUPY"):
        os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")
    import ot

    return ot


def _patches(rgb: np.ndarray, scale: float, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` flattened PATCH_SIZE^2 x 3 patches of ``rgb`` rescaled by ``scale``, values in [0, 1]."""
    from skimage.transform import rescale

    image = np.asarray(rgb, np.float64) / 255.0
    if scale != 1.0:
        image = rescale(image, scale, channel_axis=-1, anti_aliasing=True)
    if min(image.shape[:2]) < PATCH_SIZE:
        raise NstkitError(f"an image of {rgb.shape[1]}x{rgb.shape[0]} px is too small for the patch distance at "
                          f"scale {scale}: it needs {PATCH_SIZE / scale:.0f} px on each side")
    windows = np.lib.stride_tricks.sliding_window_view(image, (PATCH_SIZE, PATCH_SIZE), axis=(0, 1))  # a view
    count = windows.shape[0] * windows.shape[1]
    chosen = rng.choice(count, size=min(samples, count), replace=False)
    rows, cols = np.unravel_index(chosen, windows.shape[:2])  # gather the sample only, not every window
    return windows[rows, cols].reshape(len(chosen), -1)


def patch_distance(output: np.ndarray, style: np.ndarray, *, seed: int = 0, samples: int = PATCH_SAMPLES,
                   scales: Sequence[float] = PATCH_SCALES) -> float:
    """Mean over ``scales`` of the sliced Wasserstein distance between the two images' 7x7 patch
    distributions (0 = the same patches; the sizes may differ). ``seed`` fixes the patch sample and the
    projections, so one pair of images always gets one number."""
    ot = _ot()
    rng = np.random.default_rng(seed)
    distances = []
    for scale in scales:
        ours, theirs = _patches(output, scale, samples, rng), _patches(style, scale, samples, rng)
        distances.append(float(ot.sliced_wasserstein_distance(ours, theirs, n_projections=PATCH_PROJECTIONS,
                                                              seed=int(rng.integers(2**31)))))
    return float(np.mean(distances))


def shuffle_patches(rgb: np.ndarray, tile: int = SHUFFLE_TILE, seed: int = 0) -> np.ndarray:
    """``rgb`` cut into ``tile`` x ``tile`` squares, permuted at random: the same pixels and nearly the same
    small patches, but no structure larger than a tile (the part past the last whole tile is cropped)."""
    rows, cols = rgb.shape[0] // tile, rgb.shape[1] // tile
    tiles = (np.asarray(rgb)[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile, -1)
             .transpose(0, 2, 1, 3, 4).reshape(rows * cols, tile, tile, -1))
    tiles = tiles[np.random.default_rng(seed).permutation(len(tiles))]
    return tiles.reshape(rows, cols, tile, tile, -1).transpose(0, 2, 1, 3, 4).reshape(rows * tile, cols * tile, -1)


BLEND_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the blend's checked points; tenths are reported as well


def validate_patch_distance(pairs: Sequence[tuple[str, str]], size: int = 256, seed: int = 0,
                            tenths: bool = True) -> dict:
    """Check, per (content, style) pair of bundled images at ``size`` px, that `patch_distance` to the
    style's left three quarters (the reference) ranks: its right three quarters (another crop of the
    same style) nearest, that crop with its tiles shuffled next, the content (same crop size) far; and
    that it falls at every step of a pixel blend from the content to the other crop (`BLEND_STEPS`).

    Returns ``{"passed": bool, "pairs": [...]}`` with every distance, so a report can show why it failed;
    with ``tenths``, also the blend's distance at every tenth (``blend_tenths``, for the report's curve: six
    more distances a pair, which the check itself does not need).
    """
    from ..media.images import bundled_image, resize_to

    checks = []
    for content_name, style_name in pairs:
        style = np.asarray(bundled_image(style_name, size), np.float32)
        width = style.shape[1] * 3 // 4
        reference, other = style[:, :width], style[:, -width:]
        content = resize_to(np.asarray(bundled_image(content_name, size), np.float32), *other.shape[:2])
        distance = lambda image: patch_distance(image, reference, seed=seed)  # noqa: E731
        d_other, d_shuffled, d_content = (distance(image) for image in
                                          (other, shuffle_patches(other, seed=seed), content))
        blend = {t: distance((1 - t) * content + t * other)
                 for t in sorted({*BLEND_STEPS, *(np.arange(11) / 10 if tenths else ())})}
        along = [blend[t] for t in BLEND_STEPS]
        ranked = d_other < d_shuffled < d_content
        monotone = all(later < earlier for earlier, later in zip(along, along[1:]))
        checks.append({"pair": [content_name, style_name], "other_crop": d_other, "shuffled": d_shuffled,
                       "content": d_content, "blend": {f"{t:g}": blend[t] for t in BLEND_STEPS},
                       **({"blend_tenths": [blend[t] for t in np.arange(11) / 10]} if tenths else {}),
                       "ranked": ranked, "monotone": monotone})
    return {"passed": all(c["ranked"] and c["monotone"] for c in checks), "size": size, "seed": seed,
            "pairs": checks}
