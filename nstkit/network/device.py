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


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flops_per_cycle(precision: str = "float32") -> tuple[int, str]:
    """(FLOPs per cycle per core this CPU can do natively in ``precision``, what that rests on).

    A fused multiply-add counts two. AVX-512 on AMD's Zen 4 (family 25) runs
    on 256-bit units, so it peaks as AVX2 does; Intel's server cores and Zen 5
    have two 512-bit FMA units. AVX-512 BF16's dot product doubles the float32
    rate; AMX's tile unit does 1024 bfloat16 FLOPs a cycle. Without native
    bfloat16 the float32 rate is the ceiling (bfloat16 is converted around it).
    """
    features = cpu_features()
    amd_256 = _cpuinfo_field("vendor_id") == "AuthenticAMD" and _cpuinfo_field("cpu family") in ("23", "25")
    if "avx512f" in features and not amd_256:
        float32, why = 64, "two 512-bit FMA units"
    elif "avx512f" in features or {"avx2", "fma"} <= features:
        float32, why = 32, "two 256-bit FMA units" + (" (AVX-512 on Zen 4 runs on them)" if amd_256 else "")
    else:
        float32, why = 16, "no FMA detected"
    if precision != "bfloat16":
        return float32, why
    if "amx_bf16" in features:
        return 1024, "AMX tiles"
    if "avx512_bf16" in features:
        return 2 * float32, f"AVX-512 BF16 dot products on {why}"
    return float32, f"no native bfloat16: {why}"


def cpu_peak_flops(precision: str = "float32") -> tuple[float | None, str]:
    """(this machine's peak FLOP/s in ``precision``, how it was worked out), from its cores, clock and ISA.

    The clock is the one the OS reports (``cpu MHz``): on a VM the base clock,
    so a boosting CPU can beat 100%. None where the OS says nothing.
    """
    megahertz = _cpuinfo_field("cpu MHz")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not megahertz or not cores:
        return None, "the clock or the core count is not reported here"
    per_cycle, why = cpu_flops_per_cycle(precision)
    peak = cores * float(megahertz) * 1e6 * per_cycle
    return peak, f"{cores} cores x {float(megahertz) / 1000:.2f} GHz x {per_cycle} FLOP/cycle ({why})"


def gpu_details() -> list[dict]:
    """One dict per GPU TensorFlow sees: its name and compute capability (major, minor) where known."""
    tf, gpus = import_tensorflow_quietly()
    found = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        found.append({"name": details.get("device_name", gpu.name),
                      "compute_capability": details.get("compute_capability")})
    return found


def gpu_driver_present() -> bool:
    """Whether an NVIDIA driver is installed here (its kernel module, WSL's GPU device, or its user library).

    Without one, TensorFlow's CUDA start-up error ("failed call to cuInit ...") says only that there is no GPU,
    in words that read like a fault: the device line then says "no GPU driver" instead.
    """
    import ctypes.util

    if any(os.path.exists(path) for path in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg")):
        return True
    return ctypes.util.find_library("cuda") is not None


def why_no_gpu() -> str:
    """One line: why TensorFlow sees no GPU (a CPU-only build, no driver, or the CUDA error it printed at
    start-up where a driver is installed and failed)."""
    tf, _ = import_tensorflow_quietly()
    if not tf.test.is_built_with_cuda():
        return "this TensorFlow build has no CUDA support (on Linux: pip install 'tensorflow[and-cuda]')"
    if not gpu_driver_present():
        return "no GPU driver on this machine"
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


def resolve_precision(config):
    """``config`` with precision "auto" replaced by the precision that keeps quality here, and why (for the record).

    Measured (BENCHMARKS.md, "Time to quality"), bfloat16 failed the issue's
    rule (the final image's float32 loss within 2% of the float32 run's) with
    both optimisers, so "auto" is float32 even where the hardware computes
    bfloat16 natively, and the record says what it passed over: Adam in
    bfloat16 ended 11% above float32's loss at 512 px; L-BFGS in bfloat16
    reached the seed's 500-step loss 1.4x sooner than float32 at 512 px, but
    at 256 px its line search stalled on the rounded loss values 7.7x above
    float32's loss after 400 evaluations; and with a float32 finish
    (``float32_finish``: the bfloat16 stage hands over once its loss stops
    falling) it ended 15-56% above float32's loss after 300 evaluations at
    256 and 512 px on three pairs (the bfloat16 stage falls more slowly per
    evaluation than float32 long before it is flat). ``--precision bfloat16`` is the
    user's choice of speed over that. float16 also needs loss scaling, which
    L-BFGS's line search does not have. Any precision given is kept.
    Returns ``(config, reason or None)``.
    """
    from ..core.config import AUTO_PRECISION

    if config.precision != AUTO_PRECISION:
        return config, None
    choice = preferred_precision()
    if import_tensorflow_quietly()[1]:
        why = f"the GPU's ({gpu_details()[0]['name']})"
    elif cpu_has_native_bfloat16():
        why = "this CPU's native bfloat16 (" + ", ".join(sorted({"avx512_bf16", "amx_bf16"} & cpu_features())) + ")"
    else:
        why = "no native bfloat16 on this CPU"
    if choice != "float32":
        cost = ("L-BFGS in {} stalls above float32's loss" if config.optimizer != "adam"
                else "Adam in {} ends above float32's loss").format(choice)
        if choice == "float16":  # never measured: it would need loss scaling, which L-BFGS's line search lacks
            cost = "float16 needs loss scaling (unmeasured here)"
        choice, why = "float32", f"{why}, but {cost} (BENCHMARKS.md, time to quality)"
    return config.replace(precision=choice), f"auto: {choice}, from {why}"

