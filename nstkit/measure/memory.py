"""Predicting a run's peak memory before it starts.

Users meet out-of-memory errors at large sizes only after minutes of work;
`estimate_peak_bytes` answers before any pixel is computed (a few seconds to
import TensorFlow and build the network, then milliseconds per size). It
predicts the process's peak resident memory (peak RSS) of a CPU run, as a
small linear model::

    peak = runtime + weights + image buffers + targets + activation_factor(precision) × activations
           ───────   ───────   ─────────────   ───────                                 ───────────
           fitted    counted   counted         counted            fitted               from the graph

``activations`` is the sum of every layer's output in the truncated,
BatchNorm-folded network at this image size, read symbolically off the Keras
graph (no forward pass), times the compute precision's bytes per value. A
training step keeps most of them for the backward pass, and the gradient
flowing back needs buffers of the same sizes; how many copies the TensorFlow
runtime actually holds at its peak is what ``ACTIVATION_FACTOR`` measures.
On the calibration machine the estimate is within 10% of the measured peak
from 256 to 2048 px (BENCHMARKS.md); ``runtime`` is that machine's Python,
TensorFlow and oneDNN, so other builds may shift it by some 100 MiB.

A batch of B variants (`api.stylize.stylize_batch`) holds B members'
activations, targets and image buffers (measured: within 13%). The model is
for CPU runs, where everything lives in host RAM. On a GPU the activations
live in GPU memory, which this module does not estimate.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..core.catalog import MIN_IMAGE_SIDE
from ..core.config import LBFGS_OPTIMIZERS, StyleConfig, resolve_optimizer
from ..core.errors import NstkitError

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# Fitted by `benchmarks/memory.py --fit` (least squares on relative error) to measured peak RSS (VmHWM) of
# nstkit.stylize(steps=3, weights="random") in a fresh process: square images at 256, 512, 1024 and 2048 px,
# presets robust and vanilla, float32, bfloat16 and float16 (24 runs; rows in benchmarks/memory_rows.json).
# Held out: presets swag, relu and conv at 1024 px. A 2-core x86-64 box, 24 GB RAM, Python 3.11,
# TF 2.21 / Keras 3.15, oneDNN on, jit_compile off (the CPU default). Every fitted row's estimate was
# 0.90-1.04x its measured peak (BENCHMARKS.md, "Memory").
RUNTIME_BYTES = 787_000_000  # Python, TensorFlow, Keras and oneDNN before any image-sized buffer, less the weights
ACTIVATION_FACTOR = {"float32": 1.199, "bfloat16": 1.442, "float16": 1.325}  # the fit above: a Xeon with AMX
# bfloat16 on a CPU without AMX (AVX-512 BF16 only; AMD Zen 4 measured) holds fewer activation-sized buffers:
# with the AMX factor the estimate read 1.15-1.20x the measured peak at 1024-2048 px; refitted on those four
# rows (robust, vanilla; benchmarks/memory_rows_amd.json) it reads 0.97-1.02x. float32 read 1.05-1.09x there
# with the shared factor, so only bfloat16 differs by ISA. A CPU with no native bfloat16 is not measured.
BFLOAT16_FACTOR_WITHOUT_AMX = 1.126
# The style targets' eager forward pass holds every layer's output at once (measured at 512 px: 0.99x).
STYLE_FORWARD_FACTOR = 1.0
# Float32 content-sized arrays alive during a step: the image variable, Adam's two slots, the best image, the
# gradient, the step's read of the image, the preprocessed content, and the content and initial image as numpy
# arrays. The style image adds one style-sized array.
IMAGE_BUFFERS = 9
AVAILABLE_MEMORY_ENV = "NSTKIT_AVAILABLE_MEMORY"  # overrides available_memory_bytes(), e.g. "2GiB" (tests)
_UNITS = {"": 1, "b": 1, **{f"{p}{suffix}": 2 ** (10 * i) for i, p in enumerate("kmgt", 1) for suffix in ("", "ib")},
          **{f"{p}b": 10 ** (3 * i) for i, p in enumerate("kmgt", 1)}}


@dataclass(frozen=True)
class MemoryEstimate:
    """A predicted peak (bytes) and what it is made of (``breakdown`` sums to ``peak_bytes``)."""

    peak_bytes: int
    breakdown: dict[str, int]
    height: int
    width: int
    preset: str
    precision: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self, available_bytes: int | None = None) -> str:
        """``predicted peak memory: 3.1 GiB at 1024x768, preset robust, float32`` (and what is available)."""
        have = f" (this machine has {format_bytes(available_bytes)} available)" if available_bytes is not None else ""
        return (f"predicted peak memory: {format_bytes(self.peak_bytes)}{have} at {self.width}x{self.height}, "
                f"preset {self.preset}, {self.precision}")

    def breakdown_lines(self) -> list[str]:
        width = max(len(name) for name in self.breakdown)
        return [f"  {name:{width}}  {format_bytes(size):>10}" for name, size in self.breakdown.items()]


def style_loss_bytes(config: StyleConfig, graph: "_Graph", height: int, width: int) -> int:
    """Counted, not measured (the fit above is of Gram runs): what a style loss other than the Gram holds per
    member beyond the Grams counted as targets, in float32, summed over its style layers
    (`objective.style_stats`). The histogram: each channel's quantile function, and the sorted copy of the
    layer (and its gradient). ``remd`` and ``nn``: the style's kept points, the image's sampled positions, and
    the cost matrix between them (and its gradient). ``mrf``: the same over 3x3 patches (nine times the
    channels), plus the whole layer's patches, which the sampling reads. Measured at 512 px, float32: 0.95-1.14x
    the peak with ``vanilla`` and ``robust`` (BENCHMARKS.md, "Memory"). The mean and
    covariance losses hold a C x C matrix per layer, as the Gram does: nothing more."""
    from ..objective.style_stats import HISTOGRAM_QUANTILES, REMD_SAMPLES, REMD_STYLE_POINTS

    layer_values = graph.layer_values(height, width)
    total = 0
    for name in config.style_layers:
        channels, values = graph.channels[name], layer_values[name]
        if config.style_loss == "histogram":
            total += channels * HISTOGRAM_QUANTILES + 2 * values
        elif config.style_loss in ("remd", "nn", "mrf"):
            width_of_point = 9 * channels if config.style_loss == "mrf" else channels
            positions = values // channels
            total += (REMD_STYLE_POINTS + REMD_SAMPLES) * width_of_point + 2 * REMD_SAMPLES * REMD_STYLE_POINTS
            if config.style_loss == "mrf":
                total += positions * width_of_point
    return 4 * total


def format_bytes(size: int | float) -> str:
    """MiB below 1 GiB, else GiB with one decimal."""
    if abs(size) < 2 ** 30:
        return f"{size / 2 ** 20:.0f} MiB"
    return f"{size / 2 ** 30:.1f} GiB"


def parse_bytes(text: str) -> int:
    """``"1.5GiB"``, ``"800M"``, ``"2e9"`` -> bytes (K/M/G/T are binary units, KB/MB/GB/TB decimal)."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    try:
        number = float(match.group(1)) if match else math.nan
    except ValueError:
        number = math.nan
    if unit not in _UNITS or not math.isfinite(number) or number < 0:
        raise NstkitError(f"memory size {text!r} is not a size like 2GiB, 800MiB or 2000000000")
    return int(number * _UNITS[unit])


def activation_factor(precision: str) -> float:
    """How many activation-sized buffers a step holds at its peak, for this precision on this CPU's ISA."""
    from ..network.device import cpu_features

    if precision == "bfloat16" and "amx_bf16" not in cpu_features():
        return BFLOAT16_FACTOR_WITHOUT_AMX
    return ACTIVATION_FACTOR[precision]


def estimate_peak_bytes(height: int, width: int, config: StyleConfig, *,
                        style_shape: tuple[int, int] | None = None, weights: str = "random",
                        batch: int = 1) -> MemoryEstimate:
    """Predict the peak RSS of ``stylize`` at a ``height`` × ``width`` content image (CPU, host RAM).

    ``config`` is resolved here (layers from its preset). ``style_shape`` is
    the (height, width) of the style image as loaded; the content's by
    default. ``weights`` only decides which cached backbone builds the graph
    (memory does not depend on weight values): pass the run's own to reuse
    its network, "random" to avoid loading ImageNet weights. ``batch`` is the
    number of variants a `stylize_batch` call runs together: each member
    holds its own activations, targets and image buffers (the union of the
    members' layers counts for every member; give ``config`` that union).
    """
    from ..network.device import resolve_precision

    config = resolve_optimizer(resolve_precision(config)[0], batch=batch)[0].resolved()  # "auto": what the run will take here
    if config.backbone != "resnet50":
        raise NstkitError(f"memory estimates are calibrated for resnet50 only, not {config.backbone}")
    if min(height, width) < MIN_IMAGE_SIDE:
        raise NstkitError(f"image is {width}x{height} px; ResNet-50 needs both sides >= {MIN_IMAGE_SIDE} px")
    graph = _graph(config, weights)
    dtype_bytes = DTYPE_BYTES[config.precision]
    style_shape = tuple(style_shape or (height, width))
    layer_values = graph.layer_values(height, width)
    activations = sum(layer_values[name] for name in graph.computed) * dtype_bytes
    style_activations = sum(graph.layer_values(*style_shape)[name] for name in graph.computed) * dtype_bytes
    # The step's peak, or the eager forward pass that computes the style targets, if that is larger: Keras
    # holds every layer's output until an eager call returns (measured: 1.0x the activations).
    if batch < 1:
        raise NstkitError(f"batch must be at least 1, got {batch}")
    activation_peak = max(activation_factor(config.precision) * activations * batch,
                          STYLE_FORWARD_FACTOR * style_activations)
    # Targets: the content layers' activations (float32) and one C×C Gram per style layer.
    targets = 4 * batch * (sum(layer_values[name] for name in config.content_layers)
                           + sum(graph.channels[name] ** 2 for name in config.style_layers))
    image_buffers = 4 * 3 * batch * (IMAGE_BUFFERS * height * width + style_shape[0] * style_shape[1])
    breakdown = {
        "runtime": RUNTIME_BYTES,
        "weights": graph.weight_bytes,
        "activations": int(activation_peak),
        "image buffers": image_buffers,
        "targets": targets,
    }
    loss_state = style_loss_bytes(config, graph, height, width) * batch
    if loss_state:
        breakdown["style loss"] = loss_state
    values = 3 * height * width
    if config.optimizer == "lbfgs":
        # Counted, not measured: in-graph L-BFGS keeps 2 x memory correction pairs, the iterate, its gradient,
        # the direction and the box's two bounds in float32 (`optim.lbfgs.LBFGS`); Adam's two slots are absent.
        from ..optim.lbfgs import MEMORY

        breakdown["lbfgs state"] = 4 * values * (2 * MEMORY + 5) - 4 * values * 2
    elif config.optimizer == "lbfgsb":
        # Counted, not measured: scipy's L-BFGS-B keeps 2 x memory correction vectors, its workspace (about
        # 6 more) and the two bounds in float64, one value per pixel and channel; the float64 point and
        # gradient the engine hands over add two more. Adam's two float32 slots are then absent.
        from ..optim.lbfgs import LBFGSB

        breakdown["lbfgs state"] = 8 * values * (2 * LBFGSB.memory + 6 + 2 + 2) - 4 * values * 2
    estimate = MemoryEstimate(sum(breakdown.values()), breakdown, height, width, config.preset, config.precision,
                              details={"activation_bytes": activations, "style_activation_bytes": style_activations,
                                       "layers": len(graph.computed), "batch": batch})
    if config.float32_finish and config.precision != "float32" and config.optimizer in LBFGS_OPTIMIZERS:
        # Counted, not measured: a float32 finish (`run.schedule.float32_finish`) ends as a float32 run does,
        # with the run's own network still built beside its float32 one.
        finish = estimate_peak_bytes(height, width, config.replace(precision="float32", float32_finish=False),
                                     style_shape=style_shape, weights=weights, batch=batch)
        held = {**finish.breakdown, "weights": finish.breakdown["weights"] + graph.weight_bytes}
        if sum(held.values()) > estimate.peak_bytes:
            return dataclasses.replace(finish, peak_bytes=sum(held.values()), breakdown=held)
    return estimate


def largest_fitting_side(config: StyleConfig, available_bytes: int, *, aspect: float = 1.0,
                         weights: str = "random") -> int | None:
    """The longest image side (px) whose run is predicted to fit in ``available_bytes``; None if none does.

    ``aspect`` is width / height of the image (or tile). For a tiled mode:
    tiles up to this side fit; the result is exact to 1 px of the model.
    """
    def shape(side: int) -> tuple[int, int]:
        if aspect >= 1:
            return max(MIN_IMAGE_SIDE, round(side / aspect)), side
        return side, max(MIN_IMAGE_SIDE, round(side * aspect))

    def fits(side: int) -> bool:
        return estimate_peak_bytes(*shape(side), config, weights=weights).peak_bytes <= available_bytes

    low = MIN_IMAGE_SIDE
    if not fits(low):
        return None
    high = low * 2
    while fits(high):
        low, high = high, high * 2
        if high > 1 << 17:  # 131072 px: far beyond any machine
            return low
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def available_memory_bytes(*, this_process: bool = False) -> int:
    """Host RAM a run can use: psutil's "available" now, or ``$NSTKIT_AVAILABLE_MEMORY`` if set (e.g. ``2GiB``).

    ``this_process``: for a run in this very process, add what the process
    already holds (the estimate counts the runtime and weights it has loaded).
    The environment variable is taken as the whole budget either way.
    """
    override = os.environ.get(AVAILABLE_MEMORY_ENV)
    if override:
        return parse_bytes(override)
    import psutil

    held = psutil.Process().memory_info().rss if this_process else 0
    return int(psutil.virtual_memory().available) + held


def measured_peak_rss_bytes() -> int:
    """This process's peak resident memory so far: what the estimate is compared with.

    On Linux it is ``VmHWM`` of /proc/self/status, which belongs to the
    current program image. ``getrusage``'s ``ru_maxrss`` survives ``execve``,
    so a child started from a large process (pytest after a hundred tests)
    reports its parent's size instead of its own (CI measured 3.0 GiB for a
    0.9 GiB run that way). Elsewhere, ``ru_maxrss`` is the best there is.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource
    import sys

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def shortfall(height: int, width: int, config: StyleConfig, *, style_shape: tuple[int, int] | None = None,
              weights: str = "random") -> tuple[int, int] | None:
    """``(predicted peak, available)`` if a run in this process is predicted not to fit, else None.

    None too where the estimate does not apply: with a GPU (see `gpu_note`) or another backbone.
    """
    config = config.resolved()
    if config.backbone != "resnet50" or gpu_note() is not None:
        return None
    estimate = estimate_peak_bytes(height, width, config, style_shape=style_shape, weights=weights)
    available = available_memory_bytes(this_process=True)
    return (estimate.peak_bytes, available) if estimate.peak_bytes > available else None


def gpu_note() -> str | None:
    """A caveat when TensorFlow sees a GPU: the activations then live in GPU memory, which we do not estimate.

    TensorFlow reports a GPU's current and peak use (`get_memory_info`) but not its capacity, so there is
    nothing reliable to compare against.
    """
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    return ("a GPU is visible: this estimate is for a CPU run in host RAM; "
            "on the GPU the activations use GPU memory, which nstkit does not estimate")


class _Graph:
    """The truncated, folded network of one layer selection, with every layer's output exposed symbolically."""

    def __init__(self, config: StyleConfig, weights: str):
        import keras

        from ..network.backbone import FeatureExtractor, inference_graph, load_backbone

        model, _ = load_backbone(config.backbone, weights)
        self.features = list(dict.fromkeys([*config.style_layers, *config.content_layers]))
        extractor = FeatureExtractor(model, self.features, config.backbone, config.precision)
        # Every layer that makes a new tensor: not the input, nor the identity layers folding leaves behind.
        self.layers = [layer for layer in extractor.model.layers
                       if not isinstance(layer, keras.layers.InputLayer) and type(layer).__name__ != "PassThrough"]
        self.computed = [layer.name for layer in self.layers]
        exposed = self.layers + [extractor.model.get_layer(name) for name in self.features
                                 if name not in self.computed]
        self.names = [layer.name for layer in exposed]
        self.all_outputs = keras.Model(extractor.model.input, [layer.output for layer in exposed])
        self.channels = {layer.name: int(layer.output.shape[-1]) for layer in exposed}
        # The run holds two full copies of the weights (float32 variables whatever the precision): Keras' model
        # and its BatchNorm-folded clone, of which the extractor uses the layers up to its deepest tap.
        folded = inference_graph(model, self.features, config.precision)
        self.weight_bytes = 4 * (model.count_params() + folded.count_params())
        self._cache: dict[tuple[int, int], dict[str, int]] = {}

    def layer_values(self, height: int, width: int) -> dict[str, int]:
        """Number of values in each layer's output for one ``height`` × ``width`` image (read symbolically)."""
        if (height, width) not in self._cache:
            import keras

            specs = self.all_outputs.compute_output_spec(keras.KerasTensor((1, height, width, 3)))
            self._cache[height, width] = {name: math.prod(spec.shape) for name, spec in zip(self.names, specs)}
        return self._cache[height, width]


_GRAPHS: dict[tuple, _Graph] = {}


def _graph(config: StyleConfig, weights: str) -> _Graph:
    key = (config.backbone, weights, config.precision, tuple(config.style_layers), tuple(config.content_layers))
    if key not in _GRAPHS:
        _GRAPHS[key] = _Graph(config, weights)
    return _GRAPHS[key]
