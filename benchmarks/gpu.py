"""GPU speed check: nstkit's steps/s at 512 px on the GPU TensorFlow sees (target: ≥ 200 steps/s on an H200).

Setup on a fresh GPU machine (Colab, a lent H200), from the repository root::

    pip install "tensorflow[and-cuda]==2.21.*" && pip install -e .
    python benchmarks/gpu.py                        # ~2-4 minutes, stops starting configurations after --budget-s
    python benchmarks/gpu.py --quick --allow-cpu    # smoke test on a CPU: 64 px, 3 steps, < 1 minute

Runs in one process (TensorFlow starts once), most important configuration
first: robust with the defaults (precision "auto", XLA on: what a user gets),
then at bfloat16 / float32 / float16 with XLA on and off, the deepest preset (vanilla), and the seed's eager loop for
the ratio. Prints one JSON line per configuration (``steps_per_second``,
``seconds_per_step``, peak GPU memory, the step's FLOPs and GFLOP/s), then a
summary that says whether the 200 steps/s target is met. Weights are random:
speed does not depend on their values, and the machine needs no download.

Exit status: 0 when every configuration ran; 1 if one failed; 2 when
TensorFlow or nstkit is missing, or no GPU is visible (unless ``--allow-cpu``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

TARGET_STEPS_PER_SECOND = 200.0
TARGET_SIZE = 512


def configurations(quick: bool) -> list[dict]:
    """(preset, precision, XLA) in the order they matter; ``seed_loop`` is the eager baseline."""
    if quick:
        return [{"preset": "robust", "precision": "float32", "jit_compile": False},
                {"preset": "robust", "precision": "bfloat16", "jit_compile": False},
                {"preset": "robust", "kind": "seed_loop"}]
    return [{"preset": "robust", "precision": "auto", "jit_compile": True},  # what a user gets: the defaults
            {"preset": "robust", "precision": "bfloat16", "jit_compile": True},
            {"preset": "robust", "precision": "float32", "jit_compile": True},
            {"preset": "robust", "precision": "float16", "jit_compile": True},
            {"preset": "robust", "precision": "bfloat16", "jit_compile": False},
            {"preset": "robust", "precision": "float32", "jit_compile": False},
            {"preset": "robust", "kind": "seed_loop"},
            {"preset": "vanilla", "precision": "bfloat16", "jit_compile": True},
            {"preset": "vanilla", "precision": "float32", "jit_compile": True}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=TARGET_SIZE)
    parser.add_argument("--steps", type=int, default=200, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (tracing, XLA, autotuning)")
    parser.add_argument("--seed-loop-steps", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=240.0,
                        help="start no new configuration after this many seconds")
    parser.add_argument("--quick", action="store_true", help="64 px, 3 steps, 3 configurations (a CPU smoke test)")
    parser.add_argument("--allow-cpu", action="store_true", help="run even when no GPU is visible")
    args = parser.parse_args()
    if args.quick:
        args.size, args.steps, args.warmup, args.seed_loop_steps = 64, 3, 2, 2

    try:
        import tensorflow as tf
    except ImportError:
        print('gpu.py: TensorFlow is not installed: pip install "tensorflow[and-cuda]==2.21.*" && pip install -e .',
              file=sys.stderr)
        return 2
    try:
        import nstkit  # noqa: F401
    except ImportError as exc:
        print(f"gpu.py: nstkit cannot be imported ({exc}): run `pip install -e .` in the repository root",
              file=sys.stderr)
        return 2
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print(f"gpu.py: no GPU visible to TensorFlow {tf.__version__} (CUDA build: {tf.test.is_built_with_cuda()}); "
              'install "tensorflow[and-cuda]==2.21.*", check nvidia-smi, or pass --allow-cpu', file=sys.stderr)
        return 2
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)

    from measure import machine, nstkit_run, peak_rss_bytes, seed_loop_run

    info = machine()
    print(json.dumps({"machine": info, "size": args.size}), flush=True)
    started = time.perf_counter()
    rows, failed = [], False
    for config in configurations(args.quick):
        if time.perf_counter() - started > args.budget_s:
            rows.append({**config, "skipped": f"over the {args.budget_s:.0f} s budget"})
            print(json.dumps(rows[-1]), flush=True)
            continue
        if gpus:
            tf.config.experimental.reset_memory_stats("GPU:0")
        try:
            if config.get("kind") == "seed_loop":
                row = {**config, **seed_loop_run(args.size, config["preset"], args.seed_loop_steps, 2)}
            else:
                row = {"kind": "nstkit", **nstkit_run(args.size, config["preset"], config["precision"],
                                                      config["jit_compile"], args.steps, args.warmup)}
            for key in ("by_op", "dead_ops", "uncounted_ops", "step_seconds"):
                row.pop(key, None)
        except Exception as exc:  # one failed configuration should not cost the others' device time
            failed = True
            row = {**config, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
            traceback.print_exc(file=sys.stderr)
        if gpus and "error" not in row:
            row["peak_gpu_bytes"] = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        row["process_peak_rss_bytes"] = peak_rss_bytes()  # cumulative over the configurations so far
        row["elapsed_s"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(summary(rows, args.size, bool(gpus)))
    return 1 if failed else 0


def summary(rows: list[dict], size: int, on_gpu: bool) -> str:
    seed = next((r for r in rows if r.get("kind") == "seed_loop" and "seconds_per_step" in r), None)
    lines = [f"# summary at {size} px ({'GPU' if on_gpu else 'CPU'})"]
    for row in rows:
        label = "seed eager loop" if row.get("kind") == "seed_loop" else \
            f"{row.get('precision')} XLA {'on' if row.get('jit_compile') else 'off'}"
        label = f"{row['preset']:<8} {label:<20}"
        if "seconds_per_step" not in row:
            lines.append(f"{label} {row.get('error') or row.get('skipped')}")
            continue
        extra = ""
        if row.get("kind") == "nstkit":
            extra = f"  {row['gflops_per_second']:8.0f} GFLOP/s"
            if seed:
                extra += f"  {seed['seconds_per_step'] / row['seconds_per_step']:6.1f}× the seed loop"
            if "peak_gpu_bytes" in row:
                extra += f"  peak GPU {row['peak_gpu_bytes'] / 2**30:.2f} GiB"
        lines.append(f"{label} {row['steps_per_second']:8.1f} steps/s  {row['seconds_per_step'] * 1e3:8.2f} ms/step"
                     + extra)
    timed = [r for r in rows if r.get("kind") == "nstkit" and "steps_per_second" in r]
    if timed:
        best = max(timed, key=lambda r: r["steps_per_second"])
        if on_gpu and size == TARGET_SIZE:
            verdict = "met" if best["steps_per_second"] >= TARGET_STEPS_PER_SECOND else "NOT met"
        else:
            verdict = f"not tested (this run: {'GPU' if on_gpu else 'CPU'}, {size} px)"
        lines.append(f"target ≥ {TARGET_STEPS_PER_SECOND:.0f} steps/s at {TARGET_SIZE} px on a GPU: {verdict}; "
                     f"best {best['steps_per_second']:.1f} steps/s "
                     f"({best['preset']}, {best['precision']}, XLA {'on' if best['jit_compile'] else 'off'})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
