"""FLOPs of one compiled nstkit step, from TensorFlow's own cost registry, checked against the layer shapes.

TF's FLOP counter (``tf.compat.v1.profiler`` with ``float_operation()``) sums
the statistics registered per op type (``@ops.RegisterStatistics(op, "flops")``,
in ``tensorflow/python/profiler/internal/flops_registry.py`` and ``nn_ops.py``)
over a graph's static shapes. Run on the step's ``tf.function`` graph it has
two blind spots, both handled here:

* **It counts dead code.** The gradient of a ``Conv2D`` is built as *both*
  ``Conv2DBackpropInput`` (needed: the image's gradient flows through it) and
  ``Conv2DBackpropFilter`` (not needed: the weights are constants here), the
  same for ``BiasAddGrad``. The function runtime prunes the unused ones before
  running (stateless ops that feed no output or stateful op), but the
  profiler's total still includes them. `step_flops` counts only the live
  ops, with the same registry, and keeps the profiler's raw total beside it.
* **Some ops have no entry.** ``Einsum`` is not registered, nor
  ``Relu``/``ReluGrad``, ``Cast``, ``Pad``, ``Sqrt`` ... Einsum is counted here
  from its equation (2 × the product of all index sizes); the elementwise rest
  is left out and listed in ``uncounted_ops``.
* **One entry is wrong.** The ``BatchMatMulV2``/``V3`` statistic reads the
  attribute ``transpose_a``, which those ops do not have (theirs is ``adj_x``),
  so the Gram's ``FᵀF`` (N positions × C channels) is counted as 2·C³ instead
  of 2·N·C². `batch_matmul_flops` reads ``adj_x``.

`forward_conv_flops` is the independent check: 2·kh·kw·Cin·Cout·Hout·Wout per
``Conv2D`` layer of the Keras model, from the layer's kernel and the
catalog's stride, without looking at the TF graph.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

# Ops a step always has and that do no arithmetic: not worth listing as "uncounted".
_NO_ARITHMETIC = {
    "Const", "Placeholder", "ReadVariableOp", "Identity", "IdentityN", "NoOp", "Reshape", "Squeeze", "Shape",
    "ShapeN", "StridedSlice", "Slice", "Pack", "Unpack", "ConcatV2", "AssignVariableOp", "AssignAddVariableOp",
    "AssignSubVariableOp", "VarHandleOp", "StopGradient", "ZerosLike", "OnesLike", "Fill", "Tile", "Pad",
    "Cast", "Transpose", "BroadcastTo", "BroadcastArgs", "BroadcastGradientArgs", "SelectV2", "Select",
}


def live_ops(graph) -> list:
    """The ops the function runtime keeps: stateful ops, outputs, and everything they depend on.

    Mirrors ``PruneFunctionBody`` (tensorflow/core/common_runtime): a stateless
    op that feeds neither a return value nor a stateful op is removed before the
    function runs, so its FLOPs are never spent.
    """
    seeds = [t.op for t in getattr(graph, "outputs", [])] + list(getattr(graph, "control_outputs", []))
    seeds += [op for op in graph.get_operations() if op.op_def is not None and op.op_def.is_stateful]
    keep, stack = set(), list(seeds)
    while stack:
        op = stack.pop()
        if op.name in keep:
            continue
        keep.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in keep]


def einsum_flops(op) -> int | None:
    """2 × product of every index's size, for a two-operand einsum with static shapes (a Gram: 2·H·W·C²)."""
    equation = op.get_attr("equation")
    equation = equation.decode() if isinstance(equation, bytes) else equation
    inputs_spec = equation.split("->")[0].split(",")
    if len(inputs_spec) != 2 or "." in equation:
        return None
    sizes: dict[str, int] = {}
    for spec, tensor in zip(inputs_spec, op.inputs):
        shape = tensor.shape
        if not shape.is_fully_defined():
            return None
        sizes.update(zip(spec, shape.as_list()))
    return 2 * math.prod(sizes.values())


def batch_matmul_flops(op) -> int | None:
    """2 × inner size × output elements of a BatchMatMul, with the inner size taken from the right axis."""
    a_shape, out_shape = op.inputs[0].shape, op.outputs[0].shape
    if not (a_shape.is_fully_defined() and out_shape.is_fully_defined()):
        return None
    inner = a_shape[-2] if op.get_attr("adj_x") else a_shape[-1]
    return 2 * int(inner) * math.prod(out_shape.as_list())


_OURS = {"Einsum": einsum_flops, "BatchMatMul": batch_matmul_flops, "BatchMatMulV2": batch_matmul_flops,
         "BatchMatMulV3": batch_matmul_flops}


def step_flops(graph) -> dict[str, Any]:
    """FLOPs of one run of ``graph`` (a tf.function's concrete graph), by op type, live ops only.

    Returns ``flops`` (live registry counts, ours for Einsum and BatchMatMul), ``by_op`` (live, per op
    type), ``tf_profiler_total`` (what ``tf.compat.v1.profiler`` reports for
    the whole graph, dead gradient ops included), ``dead_flops`` (registry
    FLOPs of pruned ops) and ``uncounted_ops`` (live op types that do
    arithmetic but have no FLOP entry).
    """
    import tensorflow as tf
    from tensorflow.python.framework import ops as tf_ops

    def registered(op) -> float | None:
        if op.type in _OURS:
            return _OURS[op.type](op)
        try:
            stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
        except Exception:  # ValueError on unknown shapes
            return None
        return None if stats.value is None else float(stats.value)

    live = live_ops(graph)
    live_names = {op.name for op in live}
    by_op: Counter = Counter()
    uncounted: Counter = Counter()
    for op in live:
        value = registered(op)
        if value is None:
            if op.type not in _NO_ARITHMETIC:
                uncounted[op.type] += 1
            continue
        by_op[op.type] += value
    dead = sum(v for op in graph.get_operations() if op.name not in live_names
               for v in [registered(op)] if v is not None)

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, options=options)
    return {
        "flops": int(sum(by_op.values())),
        "by_op": {k: int(v) for k, v in by_op.most_common()},
        "tf_profiler_total": int(profile.total_float_ops),
        "dead_flops": int(dead),
        "dead_ops": dict(Counter(op.type for op in graph.get_operations() if op.name not in live_names
                                 and op.type not in _NO_ARITHMETIC)),
        "uncounted_ops": dict(uncounted),
    }


def _output_side(side: int, stride: int) -> int:
    """ResNet-50 halves with ceil at every stride-2 conv/pool (SAME 3x3, VALID 1x1 stride 2, padded 7x7 and pool)."""
    while stride > 1:
        side, stride = -(-side // 2), stride // 2
    return side


def forward_conv_flops(model, height: int, width: int) -> int:
    """Analytic forward FLOPs of every ``Conv2D`` layer in a Keras ResNet-50 (sub)model at ``height × width``."""
    import keras

    from nstkit.core.catalog import CATALOG

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            stride = CATALOG[layer.name].stride
            total += 2 * kh * kw * cin * cout * _output_side(height, stride) * _output_side(width, stride)
    return int(total)


def step_cost(step, content_shape: tuple[int, int], layer_names) -> dict[str, Any]:
    """`step_flops` of a run's compiled step, plus the analytic forward conv FLOPs of the same layers.

    ``step`` is ``progress.compiled_step`` from a `nstkit.stylize` callback.
    """
    from nstkit.network.backbone import FeatureExtractor, load_resnet50

    graph = step.get_concrete_function().graph
    cost = step_flops(graph)
    model, _ = load_resnet50("random")
    cost["forward_conv_flops_analytic"] = forward_conv_flops(FeatureExtractor(model, layer_names, fold=False).model,
                                                              *content_shape)
    return cost
