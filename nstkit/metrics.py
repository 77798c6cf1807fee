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

from .errors import NstkitError
from .images import ImageInput

JUDGE_WEIGHTS = "random:20211"  # a seed no preset or test optimises with
JUDGE_LAYERS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2gray

    return rgb2gray(np.asarray(rgb, np.float64) / 255.0)


def _same_size(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    from .images import resize_to

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
    from .backbone import FeatureExtractor, load_resnet50
    from .images import preprocess
    from .losses import gram_matrix

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
    from .images import load_image

    output, content, style = (load_image(image, what=what) for image, what in
                              ((output, "output image"), (content, "content image"), (style, "style image")))
    return {**content_ssim(output, content),
            "gram_distance": gram_distance(output, style, judge_weights=judge_weights,
                                           optimised_with=optimised_with),
            **color_distance(output, style)}
