"""A sweep run one by one vs as one batch (`stylize_batch`), measured in one run.

    python benchmarks/batch.py [--sizes 64 128 256] [--variants 4] [--steps 20]

The sweep is notebook 04's: the same content and style at several style
weights. Wall time includes what a user waits for: building the step
(tracing) and every optimisation step. Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def measure(size: int, variants: int, steps: int) -> dict:
    import nstkit

    content, style = ROOT / "nstkit/media/samples/content/astronaut.jpg", ROOT / "nstkit/media/samples/style/hexagons.png"
    options = dict(weights="random", max_dim=size, steps=steps, optimizer="adam")  # a batch runs Adam: so its parts
    weights = [10.0 ** (6 + k) for k in range(variants)]
    nstkit.stylize(content, style, **{**options, "steps": 1})  # load the backbone once, outside both timings
    started = time.perf_counter()
    for weight in weights:
        nstkit.stylize(content, style, style_weight=weight, **options)
    one_by_one = time.perf_counter() - started
    started = time.perf_counter()
    nstkit.stylize_batch(content, style, [{"style_weight": w} for w in weights], **options)
    batched = time.perf_counter() - started
    return {"size": size, "variants": variants, "steps": steps, "one_by_one_s": round(one_by_one, 2),
            "batch_s": round(batched, 2), "speedup": round(one_by_one / batched, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print("| px | variants | steps | one by one (s) | batch (s) | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        row = measure(size, args.variants, args.steps)
        print(f"| {row['size']} | {row['variants']} | {row['steps']} | {row['one_by_one_s']} | {row['batch_s']} "
              f"| {row['speedup']}x |", flush=True)


if __name__ == "__main__":
    main()
