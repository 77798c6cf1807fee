"""Does a random ResNet-50 stylise better with PyTorch's initialisation? (#26 item 7, SWAG's random-ResNet claim)

    python benchmarks/random_init.py [--size 256] [--steps 200] [--pairs chelsea.jpg:mosaic.png ...]

Keras' default initialisation (``--weights random``: Glorot-uniform kernels, identity BatchNorm) against
PyTorch's ResNet one (``--weights random-kaiming``: Kaiming-normal, fan-out, the ReLU gain), each with the
seed's loss weights, with ``--normalize-gradients`` (the per-layer normalisation that makes the init's
activation scale irrelevant), and with SWAG's objective (``--preset swag``, Wang et al. CVPR 2021, who report
that a randomly initialised ResNet-50 with softmax smoothing stylises comparably to a pretrained VGG). Adam,
float32, one run each, side by side in one process. Judged without ImageNet weights: the patch distance to
the style (`patch_distance`, lower is closer), the Gram distance in a held-out, differently seeded network
(`gram_distance`), and the content SSIM (luminance). Random weights see palette and fine texture, not shapes.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RUNS = {
    "random": {"weights": "random"},
    "random-kaiming": {"weights": "random-kaiming"},
    "random --normalize-gradients": {"weights": "random", "normalize_gradients": True},
    "random-kaiming --normalize-gradients": {"weights": "random-kaiming", "normalize_gradients": True},
    "random --preset swag": {"weights": "random", "preset": "swag"},
    "random-kaiming --preset swag": {"weights": "random-kaiming", "preset": "swag"},
    "random-kaiming --preset swag --normalize-gradients": {"weights": "random-kaiming", "preset": "swag",
                                                           "normalize_gradients": True},
}


def main() -> None:
    import numpy as np

    import nstkit
    from nstkit.measure.metrics import content_ssim, gram_distance, patch_distance
    from nstkit.media.images import bundled_image
    from nstkit.network.device import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--pairs", nargs="+", default=["chelsea.jpg:mosaic.png", "astronaut.jpg:hexagons.png"])
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args()
    print(f"machine: {describe()}\n{args.size} px, Adam {args.steps} steps, float32, one run each")
    rows = []
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        content, style = bundled_image(content_name, args.size), bundled_image(style_name, args.size)
        print(f"{content_name} x {style_name}")
        for label, options in RUNS.items():
            result = nstkit.stylize(content, style, steps=args.steps, max_dim=args.size, precision="float32",
                                    optimizer="adam", progress=False, **options)
            image = result.float_image
            total = result.history["total"]
            row = {"pair": pair, "run": label, "patch_distance": patch_distance(image, style),
                   "gram_distance": gram_distance(image, style),
                   "content_ssim": content_ssim(image, content)["ssim_luminance"],
                   "start_loss": total[0], "best_loss": float(np.min(total))}
            rows.append(row)
            print(f"  {label:52s} patch {row['patch_distance']:.4f}  gram {row['gram_distance']:.4g}  "
                  f"SSIM {row['content_ssim']:.3f}  loss {row['start_loss']:.3g} -> {row['best_loss']:.3g}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": describe(), "size": args.size, "steps": args.steps, "rows": rows}, handle,
                      indent=1)


if __name__ == "__main__":
    main()
