"""Every preset and mode, on its defaults, improves on its start image within a few dozen steps.

Random weights and a real photograph and painting (the bundled chelsea and mosaic) at 64-128 px. Before
issue #13 the colour modes' first full-rate Adam step threw the loss up 23-130-fold, and no step in 30
came back below the start, so the output was the content image byte for byte.
"""

from __future__ import annotations

import numpy as np
import pytest

import nstkit
from nstkit.media.images import bundled_image

pytestmark = pytest.mark.slow  # end to end; the oldest-TF CI phase skips it (Makefile)

STEPS = 30
CASES = {
    **{f"preset {name}": dict(preset=name)
       for name in ("vanilla", "conv", "relu", "robust", "swag", "vgg19", "conv_relu:0.5")},
    "fourier": dict(param="fourier"),
    "luminance": dict(preserve_color="luminance"),
    "match": dict(preserve_color="match"),
    "robust luminance": dict(preset="robust", preserve_color="luminance"),
    "noise start": dict(init="noise"),
    "bfloat16": dict(precision="bfloat16"),
    "adam": dict(optimizer="adam"),  # the default is "auto": L-BFGS here, Adam for the tiled case
    "adam fourier": dict(optimizer="adam", param="fourier"),
    "lbfgsb": dict(optimizer="lbfgsb"),
    "coarse levels": dict(coarse_levels=1, max_dim=128),
    "tiled": dict(tile_size=64, tile_overlap=16, tile_start_dim=64, tile_start_steps=10, max_dim=128),
}


@pytest.mark.parametrize("name", list(CASES))
def test_defaults_improve_on_the_start(name):
    options = {"max_dim": 64, **CASES[name]}
    content = bundled_image("chelsea.jpg", options["max_dim"]).astype(np.float32)
    style = bundled_image("mosaic.png", options["max_dim"]).astype(np.float32)
    run = nstkit.stylize_tiled if "tile_size" in options else nstkit.stylize
    result = run(content, style, steps=STEPS, weights="random", **options)
    record = result.record
    assert result.no_improvement is None, result.no_improvement
    # The last stage's first loss is its start's (the content, or the earlier stage's image upsampled).
    last_started = sum(stage["steps_run"] for stage in record["stages"][:-1])
    assert record["best_stage"] == len(record["stages"]) - 1
    assert record["best_loss"] < result.history["total"][last_started]
