"""Measured peak memory of a run vs `nstkit.measure.memory`'s estimate.

    python benchmarks/memory.py [--sizes 256 512 1024 2048] [--presets robust vanilla]
                                [--precisions float32] [--batch N] [--save rows.json] [--load rows.json] [--fit]

Each (size, preset, precision) runs ``nstkit.stylize(..., steps=3, weights="random")``
on a square size×size image in a fresh subprocess, which reports its own peak
RSS (`nstkit.measure.memory.measured_peak_rss_bytes`: VmHWM on Linux) at the end: the peak
belongs to that run alone. Prints measured vs estimated and their ratio.

``--fit`` refits the estimate's two constants (``RUNTIME_BYTES`` and
``ACTIVATION_FACTOR[precision]`` in nstkit/measure/memory.py) by least squares on the
relative error; ``--save`` / ``--load`` keep the measurements, so a refit does
not rerun them. A 2048 px vanilla run takes about a minute on 2 cores: run
the big sizes once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys
import numpy as np
import nstkit
from nstkit.measure.memory import measured_peak_rss_bytes
size, preset, precision, steps, batch = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
content = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
style = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
options = dict(preset=preset, precision=precision, steps=steps, max_dim=size, weights="random")
if batch == 1:
    result = nstkit.stylize(content, style, **options)
else:  # a style-weight sweep, as notebook 04 runs it
    result = nstkit.stylize_batch(content, style, [{"style_weight": 10.0 ** (6 + i)} for i in range(batch)],
                                  **options)[0]
print(json.dumps({"peak_rss_bytes": measured_peak_rss_bytes(),
                  "seconds_per_step": result.record["seconds_per_step"]}))
"""


def measure(size: int, preset: str, precision: str, steps: int = 3, batch: int = 1) -> dict:
    """Peak RSS of one run (``batch`` > 1: one `stylize_batch` call) in a fresh process."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(size), preset, precision, str(steps), str(batch)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise SystemExit(f"run at {size} px, {preset}, {precision} failed:\n{done.stderr[-2000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {**row, "size": size, "preset": preset, "precision": precision, "wall_s": time.perf_counter() - started,
            **({"batch": batch} if batch > 1 else {})}


def with_estimate(row: dict) -> dict:
    from nstkit.core.config import StyleConfig
    from nstkit.measure.memory import estimate_peak_bytes

    config = StyleConfig(preset=row["preset"], precision=row["precision"], weights="random")
    estimate = estimate_peak_bytes(row["size"], row["size"], config, batch=row.get("batch", 1))
    fitted = {"runtime", "activations"}
    return {**row, "estimate_bytes": estimate.peak_bytes,
            "activation_bytes": estimate.details["activation_bytes"] * estimate.details["batch"],
            "counted_bytes": sum(v for k, v in estimate.breakdown.items() if k not in fitted)}


def fit(rows: list[dict]) -> tuple[float, dict[str, float]]:
    """Least squares on relative error: measured ≈ counted + runtime + factor[precision] × activations."""
    import numpy as np

    precisions = sorted({row["precision"] for row in rows})
    design = np.zeros((len(rows), 1 + len(precisions)))
    target = np.zeros(len(rows))
    for i, row in enumerate(rows):
        scale = 1.0 / row["peak_rss_bytes"]
        design[i, 0] = scale
        design[i, 1 + precisions.index(row["precision"])] = row["activation_bytes"] * scale
        target[i] = (row["peak_rss_bytes"] - row["counted_bytes"]) * scale
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return float(solution[0]), dict(zip(precisions, map(float, solution[1:])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--presets", nargs="+", default=["robust", "vanilla"])
    parser.add_argument("--precisions", nargs="+", default=["float32"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="variants per run (a stylize_batch call) if above 1")
    parser.add_argument("--save", type=Path, help="write the measurements to this JSON file")
    parser.add_argument("--load", type=Path, action="append", help="use measurements saved earlier, not new runs")
    parser.add_argument("--fit", action="store_true", help="print refitted constants for nstkit/measure/memory.py")
    args = parser.parse_args()

    import psutil

    print(f"# {platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2 ** 30:.0f} GiB RAM, "
          f"Python {platform.python_version()}")
    if args.load:
        rows = [row for path in args.load for row in json.loads(path.read_text())]
    else:
        rows = [measure(size, preset, precision, args.steps, args.batch)
                for precision in args.precisions for preset in args.presets for size in args.sizes]
    if args.save:
        args.save.write_text(json.dumps(rows, indent=1))
    rows = [with_estimate(row) for row in rows]
    print("| size | preset | precision | batch | measured peak RSS | estimate | estimate / measured |")
    print("|---|---|---|---:|---|---|---|")
    for row in rows:
        print(f"| {row['size']} | {row['preset']} | {row['precision']} | {row.get('batch', 1)} "
              f"| {row['peak_rss_bytes'] / 2 ** 20:,.0f} MiB "
              f"| {row['estimate_bytes'] / 2 ** 20:,.0f} MiB | {row['estimate_bytes'] / row['peak_rss_bytes']:.2f} |")
    if args.fit:
        runtime, factors = fit(rows)
        print(f"RUNTIME_BYTES = {runtime:.0f}  # {runtime / 2 ** 20:.0f} MiB")
        print("ACTIVATION_FACTOR =", {k: round(v, 3) for k, v in factors.items()})


if __name__ == "__main__":
    main()
