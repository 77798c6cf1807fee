"""Which style weight makes each normalised style loss pull about as hard as the Gram default: one run, side by side.

    python benchmarks/style_loss_weights.py [--size 192] [--steps 200] [--weights random]

The Gram loss keeps the seed's raw scale (robust: style weight 1e7, content 1e2). Every other statistic reads 1
at the content image, so its weight is a different number. For each statistic and a few weights, this runs the
robust preset on the bundled chelsea.jpg x mosaic.png and prints the offline metrics (content SSIM, held-out
Gram distance to the style, Lab colour-histogram distance) beside the Gram default's, and the share of the loss that is
content at the end. nstkit's default (config.NORMALISED_STYLE_WEIGHT) is the weight whose held-out Gram
distance (the style's pull) came closest to the Gram default's. Random weights: the balance of the two pulls, not how the results look.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

WEIGHTS = (1e3, 1e4, 1e5)
LOSSES = ("mean_cov", "wasserstein", "histogram")


def main() -> None:
    import nstkit
    from nstkit.measure.metrics import evaluate
    from nstkit.media.images import bundled_image
    from nstkit.network.device import describe
    from nstkit.ui.notebook import table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--weights", default="random")
    args = parser.parse_args()
    content, style = bundled_image("chelsea.jpg", args.size), bundled_image("mosaic.png", args.size)
    print(f"machine: {describe()}; {args.size} px, {args.steps} steps, weights {args.weights}, float32")
    runs = [("gram", None)] + [(loss, weight) for loss in LOSSES for weight in WEIGHTS]
    rows = []
    for loss, weight in runs:
        options = {"style_weight": weight} if weight is not None else {}
        result = nstkit.stylize(content, style, preset="robust", style_loss=loss, steps=args.steps,
                                max_dim=args.size, weights=args.weights, precision="float32", optimizer="adam",
                                **options)
        scores = evaluate(result.image, content, style)
        history = result.history
        rows.append({"style_loss": loss, "style_weight": f"{result.config.style_weight:g}",
                     "ssim_luminance": float(scores["ssim_luminance"]),
                     "gram_distance": float(scores["gram_distance"]),
                     "color_histogram": float(scores["color_histogram"]),
                     "content share at the end": float(history["content"][-1] / history["total"][-1]),
                     "s/step": float(result.record["seconds_per_step"])})
        print(table(rows[-1:]), flush=True)
    print()
    print(table(rows))
    reference = rows[0]["gram_distance"]
    for loss in LOSSES:
        mine = [row for row in rows if row["style_loss"] == loss]
        best = min(mine, key=lambda row: abs(np.log(row["gram_distance"] / reference)))
        print(f"{loss}: the weight whose held-out Gram distance is nearest the Gram default's ({reference:.3f}): "
              f"{best['style_weight']} ({best['gram_distance']:.3f}; content SSIM {best['ssim_luminance']:.3f} "
              f"against {rows[0]['ssim_luminance']:.3f})")


if __name__ == "__main__":
    main()
