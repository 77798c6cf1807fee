"""Does bfloat16 change the picture? float32 vs bfloat16 runs from the same start, compared by SSIM.

    python benchmarks/precision_quality.py [--content nstkit/media/samples/content/astronaut.jpg] [--style nstkit/media/samples/style/hexagons.png]
                                           [--size 512] [--steps 200] [--presets robust vanilla] [--json out.json]

For each preset, three runs with the same seed and random weights:

* ``float32`` (the reference),
* ``bfloat16`` (network in bf16; image, losses and Adam stay float32),
* a **control**: float32 again, started from the content plus ±1 grey level of
  noise. It separates "bf16 is less accurate" from "any tiny difference grows":
  the optimisation (Adam at lr 20 on a non-convex loss) amplifies small
  perturbations whatever their source.

Reported: SSIM (scikit-image, RGB, data range 255; at full size and after a
4×4 mean downscale, which keeps the composition and drops the fine texture)
and mean absolute difference between each run's image and the reference at a few steps and at
the end (the best image), each run's final and best loss, its SSIM to the
content (`nstkit.measure.metrics.content_ssim`, luminance) and its seconds per step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import numpy as np  # noqa: E402


def image_similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Full-size SSIM (fine texture counts), SSIM at 1/4 scale (what a viewer sees), mean |difference|."""
    from skimage.metrics import structural_similarity
    from skimage.transform import downscale_local_mean

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    small_a, small_b = (downscale_local_mean(x, (4, 4, 1)) for x in (a, b))
    return {"ssim": float(structural_similarity(a, b, channel_axis=2, data_range=255.0)),
            "ssim_quarter_scale": float(structural_similarity(small_a, small_b, channel_axis=2, data_range=255.0)),
            "mean_abs_diff": float(np.abs(a - b).mean())}


def run(content, style, preset: str, precision: str, size: int, steps: int, checkpoints: list[int],
        init: str = "content") -> dict:
    import nstkit
    from nstkit.measure.metrics import content_ssim

    snapshots: dict[int, np.ndarray] = {}

    def snapshot(progress) -> None:
        if progress.step in checkpoints:
            snapshots[progress.step] = progress.image()

    result = nstkit.stylize(content, style, preset=preset, precision=precision, steps=steps, max_dim=size,
                            weights="random", seed=0, init=init, callbacks=[snapshot], optimizer="adam")
    content_rgb = nstkit.media.images.load_image(content, size)
    return {"image": result.image, "snapshots": snapshots,
            "final_loss": result.record["final_losses"]["total"], "best_loss": result.record["best_loss"],
            "best_step": result.record["best_step"], "seconds_per_step": result.record["seconds_per_step"],
            "content_ssim": content_ssim(result.image, content_rgb)["ssim_luminance"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", default=str(ROOT / "nstkit/media/samples/content/astronaut.jpg"))
    parser.add_argument("--style", default=str(ROOT / "nstkit/media/samples/style/hexagons.png"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--presets", nargs="+", default=["robust"])
    parser.add_argument("--low", default="bfloat16", help="the low precision to compare (bfloat16 or float16)")
    parser.add_argument("--no-control", action="store_true", help="skip the perturbed float32 control run")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--save-images", type=Path, help="write each run's image here as PNG")
    args = parser.parse_args()

    from measure import machine

    import nstkit.media.images

    checkpoints = sorted({s for s in (1, 10, 50, 100, args.steps) if s <= args.steps})
    content_rgb = nstkit.media.images.load_image(args.content, args.size)
    rng = np.random.default_rng(1)
    perturbed = np.clip(np.round(content_rgb) + rng.integers(-1, 2, content_rgb.shape), 0, 255).astype(np.uint8)
    info = machine()
    print(f"# {info['cpu']}, {info['cores']} cores, TF {info['tensorflow']}, load {info['loadavg']}; "
          f"{Path(args.content).name} x {Path(args.style).name}, {content_rgb.shape[1]}x{content_rgb.shape[0]} px, "
          f"{args.steps} steps, random weights (seed 0)", flush=True)
    results = {"machine": info, "content": args.content, "style": args.style, "size": args.size,
               "steps": args.steps, "presets": {}}
    with tempfile.TemporaryDirectory() as scratch:
        init_path = Path(scratch) / "content_plus_noise.png"
        nstkit.media.images.save_image(init_path, perturbed)
        for preset in args.presets:
            runs = {"float32": run(args.content, args.style, preset, "float32", args.size, args.steps, checkpoints),
                    args.low: run(args.content, args.style, preset, args.low, args.size, args.steps, checkpoints)}
            if not args.no_control:
                runs["float32, init ±1"] = run(args.content, args.style, preset, "float32", args.size, args.steps,
                                               checkpoints, init=str(init_path))
            reference = runs["float32"]
            rows = {}
            for name, outcome in runs.items():
                row = {k: v for k, v in outcome.items() if k not in ("image", "snapshots")}
                if name != "float32":
                    row["vs_float32"] = image_similarity(outcome["image"], reference["image"])
                    row["vs_float32_by_step"] = {step: image_similarity(outcome["snapshots"][step],
                                                                        reference["snapshots"][step])
                                                 for step in checkpoints}
                rows[name] = row
                if args.save_images:
                    args.save_images.mkdir(parents=True, exist_ok=True)
                    file_name = f"{preset}_{name.replace(', init ±1', '_control')}.png"
                    nstkit.media.images.save_image(args.save_images / file_name, outcome["image"])
            results["presets"][preset] = rows
            print(table(preset, rows, checkpoints), flush=True)
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def table(preset: str, rows: dict, checkpoints: list[int]) -> str:
    lines = [f"\n## {preset}\n",
             "| run | s/step | final loss | best loss | SSIM to content | SSIM to float32 | "
             "same, at 1/4 scale | mean abs diff to float32 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        versus = row.get("vs_float32")
        cells = (f"{versus['ssim']:.4f} | {versus['ssim_quarter_scale']:.4f} | {versus['mean_abs_diff']:.2f}"
                 if versus else "– | – | –")
        lines.append(f"| {name} | {row['seconds_per_step']:.3f} | {row['final_loss']:.4g} | {row['best_loss']:.4g} | "
                     f"{row['content_ssim']:.4f} | {cells} |")
    lines += ["", "SSIM (mean abs diff, grey levels) to the float32 run's image after N steps:", "",
              "| run | " + " | ".join(f"step {s}" for s in checkpoints) + " |",
              "|---|" + "---:|" * len(checkpoints)]
    for name, row in rows.items():
        if "vs_float32_by_step" in row:
            lines.append(f"| {name} | " + " | ".join(
                f"{row['vs_float32_by_step'][s]['ssim']:.4f} ({row['vs_float32_by_step'][s]['mean_abs_diff']:.2f})"
                for s in checkpoints) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
