"""What `suite.py` and `gpu.py` share: timing one nstkit run, and describing the machine it ran on."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import numpy as np


def nstkit_run(size: int, preset: str, precision: str, jit_compile: bool | None, steps: int, warmup: int,
               cost: bool = True) -> dict[str, Any]:
    """Time ``steps`` steps of `nstkit.stylize` after ``warmup`` (≥ 1, the first traces) on a size×size image.

    Seconds per step are the gaps between consecutive callback calls: what a
    user's loop sees, Python bookkeeping included. ``peak_rss_bytes`` is this
    process's peak so far (run it in a fresh process to make it this run's).
    With ``cost``, adds the step's FLOPs (`flops.step_cost`).
    """
    import nstkit

    if warmup < 1:
        raise ValueError("warmup must be at least 1: the first step includes tracing")
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    stamps: list[float] = []
    cpu_stamps: list[float] = []
    steps_seen: list[Any] = []

    def on_step(progress) -> None:
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        if not steps_seen:
            steps_seen.append(progress.compiled_step)  # for its FLOPs

    started = time.perf_counter()
    # Adam: the seed's step, which these timings set against the seed's loop step for step (an L-BFGS step is
    # one evaluation: benchmarks/time_to_quality.py times it).
    result = nstkit.stylize(content, style, preset=preset, weights="random", steps=warmup + steps, max_dim=size,
                            precision=precision, jit_compile=jit_compile, callbacks=[on_step], optimizer="adam")
    wall = time.perf_counter() - started
    times = np.diff(stamps[warmup - 1:])
    cpu_times = np.diff(cpu_stamps[warmup - 1:])
    row = {
        # The precision the run took ("auto" made concrete by the device).
        "size": size, "preset": preset, "precision": result.config.precision, "asked_precision": precision,
        "jit_compile": result.record["jit_compile"],
        "steps": len(times), "warmup": warmup,
        "seconds_per_step": float(np.median(times)),
        "steps_per_second": float(1.0 / np.median(times)),
        "step_seconds": [round(float(t), 4) for t in times],
        # Process CPU seconds (all threads) per step: the work, much less sensitive to other processes' load.
        "cpu_seconds_per_step": float(np.median(cpu_times)),
        "first_step_seconds": float(stamps[0] - started),  # includes building the model and tracing
        "wall_seconds": wall,
        "peak_rss_bytes": peak_rss_bytes(),
        "device": result.record["device"],
    }
    if cost:
        from flops import step_cost

        layers = [*result.config.style_layers, *result.config.content_layers]
        row.update(step_cost(steps_seen[0], (size, size), layers))
        row["gflops_per_second"] = row["flops"] / row["seconds_per_step"] / 1e9
        from nstkit.network.device import cpu_peak_flops

        peak, how = cpu_peak_flops(result.config.precision)  # set every figure against the physical limit
        row["peak_gflops"], row["peak_basis"] = (peak / 1e9 if peak else None), how
        row["share_of_peak"] = row["gflops_per_second"] / row["peak_gflops"] if peak else None
    return row


def seed_loop_run(size: int, preset: str, steps: int, warmup: int) -> dict[str, Any]:
    """Time the seed's eager loop (`seed_loop.py`) like `nstkit_run`: the median of ``steps`` after ``warmup``."""
    from seed_loop import eager_step_times

    cpu_times: list[float] = []
    times = eager_step_times(size, steps, warmup, preset, cpu_times)
    return {"size": size, "preset": preset, "steps": len(times),
            "seconds_per_step": float(np.median(times)), "steps_per_second": float(1 / np.median(times)),
            "cpu_seconds_per_step": float(np.median(cpu_times)), "step_seconds": [round(t, 4) for t in times],
            "peak_rss_bytes": peak_rss_bytes()}


def peak_rss_bytes() -> int:
    from nstkit.measure.memory import measured_peak_rss_bytes

    return measured_peak_rss_bytes()


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, TF/Keras versions, GPUs, load average: the header of every result."""
    import keras
    import tensorflow as tf

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = None
    try:
        with open("/proc/meminfo") as handle:
            memory = int(next(line.split()[1] for line in handle if line.startswith("MemTotal"))) * 1024
    except (OSError, StopIteration):
        pass
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1) if memory else None,
        "gpus": [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
