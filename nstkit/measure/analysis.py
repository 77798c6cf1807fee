"""Per-layer feature statistics: why ResNet-50 features stylize poorly.

Wang, Li & Vasconcelos ("Rethinking and Improving the Robustness of Image
Style Transfer", CVPR 2021) traced ResNet's weak stylization to *peaky*,
low-entropy activations: residual connections let a few large entries
dominate, so the Gram matrix is matched by a few channels and the rest of
the style is ignored. These two numbers make that visible layer by layer:

- peakiness = max|x| / mean|x|: large when a few entries dominate;
- normalised entropy of |x| / sum|x|, in [0, 1]: 1 for a flat spread, near 0
  when the mass sits in a few entries.

Both are computed for a layer's activations and for its Gram matrix.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def peakiness(values: np.ndarray) -> float:
    magnitude = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    mean = magnitude.mean()
    return float(magnitude.max() / mean) if mean > 0 else float("nan")


def normalised_entropy(values: np.ndarray) -> float:
    magnitude = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    total = magnitude.sum()
    if total <= 0 or magnitude.size < 2:
        return float("nan")
    p = magnitude[magnitude > 0] / total
    return float(-(p * np.log(p)).sum() / np.log(magnitude.size))


def layer_statistics(image_rgb: np.ndarray, layer_names: Iterable[str], weights: str = "random") -> list[dict]:
    """One row per layer: stage, kind, and peakiness / entropy of its features and Gram matrix."""
    from ..core.catalog import CATALOG
    from ..media.images import preprocess
    from ..network.backbone import FeatureExtractor, load_resnet50
    from ..objective.losses import gram_matrix

    names = list(dict.fromkeys(layer_names))
    model, _ = load_resnet50(weights)
    features = FeatureExtractor(model, names)(preprocess(image_rgb))
    rows = []
    for name in names:
        activation = features[name].numpy()
        gram = gram_matrix(features[name]).numpy()
        info = CATALOG[name]
        rows.append({"layer": name, "stage": info.stage, "kind": info.kind,
                     "feature_peakiness": peakiness(activation), "feature_entropy": normalised_entropy(activation),
                     "gram_peakiness": peakiness(gram), "gram_entropy": normalised_entropy(gram)})
    return rows
