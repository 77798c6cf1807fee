"""What this run computes on: the GPU TensorFlow sees (or why it sees none), the CPU's features, and the
defaults that follow from them (XLA, the precision that pays).

CPU features are read, never assumed: on an Intel Xeon with AMX, bfloat16
made a step 2.6x faster than float32; on an AMD EPYC with AVX-512 BF16 (no
AMX) 1.7x; a CPU with neither emulates bfloat16, which is slower.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

from .quiet import import_messages, import_tensorflow_quietly

# CPU flags (Linux /proc/cpuinfo names) that decide what runs natively.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
# Words in TensorFlow's start-up lines that explain a missing GPU.
_GPU_HINTS = ("cuInit", "cuda", "CUDA", "libcud", "GPU will not be used", "Cannot dlopen")


@lru_cache(maxsize=1)
def cpu_features() -> frozenset[str]:
    """The `CPU_FLAGS` this CPU has (empty where the OS does not say, e.g. not Linux)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(set(line.split(":", 1)[1].split()) & set(CPU_FLAGS))
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bfloat16() -> bool:
    """AVX-512 BF16 or AMX: bfloat16 products in hardware (measured 1.7x and 2.6x faster than float32)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_features())


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_details() -> list[dict]:
    """One dict per GPU TensorFlow sees: its name and compute capability (major, minor) where known."""
    tf, gpus = import_tensorflow_quietly()
    found = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        found.append({"name": details.get("device_name", gpu.name),
                      "compute_capability": details.get("compute_capability")})
    return found


def why_no_gpu() -> str:
    """One line: why TensorFlow sees no GPU (a CPU-only build, or the CUDA error it printed at start-up)."""
    tf, _ = import_tensorflow_quietly()
    if not tf.test.is_built_with_cuda():
        return "this TensorFlow build has no CUDA support (on Linux: pip install 'tensorflow[and-cuda]')"
    hints = [line for line in import_messages() if any(hint in line for hint in _GPU_HINTS)]
    if not hints:
        return "TensorFlow found no GPU device"
    reason = hints[-1]
    return reason.split("] ", 1)[-1].strip()[:200]  # drop the absl prefix (time, thread, file:line)


def describe() -> str:
    """``GPU: NVIDIA A100-SXM4-40GB (compute capability 8.0)`` or ``CPU: AMD EPYC, 2 cores, AVX-512 BF16
    (no GPU: <why>)``: what every notebook prints at set-up."""
    gpus = gpu_details()
    if gpus:
        first = gpus[0]
        capability = first["compute_capability"]
        more = f" (+{len(gpus) - 1} more)" if len(gpus) > 1 else ""
        return (f"GPU: {first['name']}" + (f" (compute capability {capability[0]}.{capability[1]})"
                                            if capability else "") + more)
    bf16 = ("AMX" if "amx_bf16" in cpu_features() else "AVX-512 BF16" if cpu_has_native_bfloat16() else
            "no native bfloat16")
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores, {bf16} (no GPU: {why_no_gpu()})"


def device_name() -> str:
    """The device as the run record names it."""
    gpus = gpu_details()
    if gpus:
        return f"GPU ({gpus[0]['name']})"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def default_jit_compile() -> bool:
    """XLA where it pays: on GPUs; not on CPUs, where it measured no faster and 30-45% heavier (BENCHMARKS.md)."""
    return bool(import_tensorflow_quietly()[1])


def preferred_precision() -> str:
    """The network precision that pays on this device.

    GPUs by their tensor cores (NVIDIA's published support; not measured
    here, no GPU was available): bfloat16 from compute capability 8.0 (A100,
    L4, H100), float16 on 7.x (V100, T4: no bfloat16 units; loss scaling
    keeps it in range), else float32. CPUs: bfloat16 where it is native
    (measured 1.7-2.6x), else float32.
    """
    gpus = gpu_details()
    if gpus:
        capability = gpus[0]["compute_capability"] or (0, 0)
        return "bfloat16" if capability >= (8, 0) else "float16" if capability >= (7, 0) else "float32"
    return "bfloat16" if cpu_has_native_bfloat16() else "float32"
