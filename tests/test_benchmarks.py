"""The benchmark suite's own machinery: the FLOP counter and the GPU script's CPU smoke mode (no timing asserts)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import flops  # noqa: E402

import nstkit  # noqa: E402


def test_einsum_flops_and_pruning_on_a_tiny_graph():
    """A Gram einsum counts 2·B·H·W·C², and a conv's unused filter gradient is recognised as dead."""
    image = tf.Variable(tf.zeros([1, 8, 8, 3]))
    kernel = tf.constant(np.ones((3, 3, 3, 4), np.float32))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            features = tf.nn.conv2d(image, kernel, 1, "SAME")
            gram = tf.einsum("bijc,bijd->bcd", features, features)
            loss = tf.reduce_sum(gram)
        image.assign_sub(tape.gradient(loss, image))
        return loss

    graph = step.get_concrete_function().graph
    einsum = next(op for op in graph.get_operations() if op.type == "Einsum")
    assert flops.einsum_flops(einsum) == 2 * 1 * 8 * 8 * 4 * 4
    cost = flops.step_flops(graph)
    assert cost["by_op"]["Conv2D"] == 2 * 3 * 3 * 3 * 4 * 8 * 8
    assert "Conv2DBackpropInput" in cost["by_op"]  # the image's gradient: live
    assert "Conv2DBackpropFilter" not in cost["by_op"] and cost["dead_ops"].get("Conv2DBackpropFilter") == 1
    assert cost["tf_profiler_total"] > cost["flops"] - cost["by_op"]["Einsum"]  # TF's total includes the dead op


def test_step_flops_match_the_analytic_conv_count():
    """On a real 64 px robust step: TF's Conv2D count equals 2·k²·Cin·Cout·H·W summed over the Keras layers."""
    steps = []
    content = np.random.default_rng(0).uniform(0, 255, (64, 64, 3)).astype(np.float32)
    result = nstkit.stylize(content, content, preset="robust", weights="random", steps=1, max_dim=64,
                            callbacks=[lambda progress: steps.append(progress.compiled_step)])
    cost = flops.step_cost(steps[0], (64, 64), [*result.config.style_layers, *result.config.content_layers])
    analytic = cost["forward_conv_flops_analytic"]
    assert cost["by_op"]["Conv2D"] == pytest.approx(analytic, rel=1e-6)
    # The input gradient of each conv costs what its forward does (conv1's VALID padding differs by ~1%).
    assert cost["by_op"]["Conv2DBackpropInput"] == pytest.approx(analytic, rel=0.03)
    assert cost["dead_ops"]["Conv2DBackpropFilter"] == 31  # robust runs 31 convs; no filter gradient is live
    # Each style layer's Gram: FᵀF forward and one product F(dG + dGᵀ) backward, 2·N·C² each.
    from nstkit.network.backbone import FeatureExtractor

    model, _ = nstkit.network.backbone.load_resnet50("random")
    shapes = [f.shape for f in FeatureExtractor(model, list(result.config.style_layers))(content[None]).values()]
    assert cost["by_op"]["BatchMatMulV2"] == sum(4 * h * w * c * c for _, h, w, c in shapes)
    assert cost["flops"] > 2 * analytic


@pytest.mark.slow
def test_gpu_script_smoke_mode_on_cpu():
    """`gpu.py --quick --allow-cpu` runs end to end and prints one JSON line per configuration, then a summary."""
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--quick", "--allow-cpu"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert "machine" in rows[0] and rows[0]["size"] == 64
    timed = rows[1:]
    assert [r.get("kind") for r in timed] == ["nstkit", "nstkit", "seed_loop"]
    for row in timed:
        assert row["steps_per_second"] > 0 and row["seconds_per_step"] > 0
    for row in timed[:2]:
        assert row["flops"] > row["forward_conv_flops_analytic"] > 0 and row["gflops_per_second"] > 0
        assert row["jit_compile"] is False and row["peak_rss_bytes"] > 0
    assert any(line.startswith("target ≥ 200 steps/s") and "not tested" in line for line in lines)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a GPU is visible")
def test_gpu_script_refuses_a_cpu_without_allow_cpu():
    done = subprocess.run([sys.executable, "benchmarks/gpu.py", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "no GPU visible" in done.stderr and done.stdout == ""
