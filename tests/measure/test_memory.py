"""The memory estimate: close to a real run's peak, scales like the activations, and the CLI says so."""

import json
import os
import re
import subprocess
import sys

import pytest
from nst_helpers import ROOT, run_cli, smooth_image
from PIL import Image

from nstkit import NstkitError, StyleConfig
from nstkit.core.record import record_path
from nstkit.measure.memory import (
    AVAILABLE_MEMORY_ENV,
    MemoryEstimate,
    estimate_peak_bytes,
    format_bytes,
    largest_fitting_side,
    parse_bytes,
    shortfall,
)
from nstkit.ui import cli

ROBUST = StyleConfig(preset="robust", weights="random")
# A run's own peak RSS: a fresh process, so nothing else this test session loaded counts.
MEASURE = """
import json, sys
import numpy as np
import nstkit
from nstkit.measure.memory import measured_peak_rss_bytes
size, batch = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
image = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
options = dict(preset="robust", steps=2, max_dim=size, weights="random")
if batch == 1:
    nstkit.stylize(image, image[::-1], **options)
else:
    nstkit.stylize_batch(image, image[::-1], [{"style_weight": 10.0 ** (6 + i)} for i in range(batch)], **options)
print(json.dumps(measured_peak_rss_bytes()))
"""


@pytest.mark.slow
def test_estimate_is_within_20_percent_of_a_measured_peak():
    runs = ((96, 1), (192, 1), (256, 6))  # (size, batch): the last, one stylize_batch call of 6 variants, is
    # 1.7x a single run's peak: ignoring the batch would fail the check
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    children = [subprocess.Popen([sys.executable, "-c", MEASURE, str(size), str(batch)], cwd=ROOT, env=env,
                                 text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for size, batch in runs]
    for (size, batch), child in zip(runs, children):
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
        measured = json.loads(out.strip().splitlines()[-1])
        estimate = estimate_peak_bytes(size, size, ROBUST, batch=batch).peak_bytes
        assert 0.8 <= estimate / measured <= 1.2, (size, batch, format_bytes(estimate), format_bytes(measured))


def test_estimate_grows_like_the_activations():
    small, large = (estimate_peak_bytes(h, w, ROBUST) for h, w in ((128, 160), (256, 320)))
    assert isinstance(small, MemoryEstimate) and small.peak_bytes == sum(small.breakdown.values())
    # Four times the pixels: four times the activations (to ResNet's rounding of odd sizes), the rest fixed.
    assert 3.8 <= large.breakdown["activations"] / small.breakdown["activations"] <= 4.2
    assert large.breakdown["runtime"] == small.breakdown["runtime"] > 0
    assert large.breakdown["weights"] == small.breakdown["weights"] > 0
    assert large.peak_bytes > small.peak_bytes
    # Any shape works (a tile), and the estimate is monotone in it.
    tile = estimate_peak_bytes(100, 300, ROBUST)
    assert small.peak_bytes < tile.peak_bytes < large.peak_bytes
    # vanilla reaches stage 5: more layers, more activations at the same size.
    vanilla = estimate_peak_bytes(256, 320, ROBUST.replace(preset="vanilla"))
    assert vanilla.details["layers"] > large.details["layers"]
    assert vanilla.details["activation_bytes"] > large.details["activation_bytes"]


def test_a_batch_multiplies_what_each_member_holds():
    one, four = estimate_peak_bytes(256, 256, ROBUST), estimate_peak_bytes(256, 256, ROBUST, batch=4)
    for part in ("activations", "targets", "image buffers"):
        assert four.breakdown[part] == pytest.approx(4 * one.breakdown[part], rel=1e-6), part
    assert four.breakdown["runtime"] == one.breakdown["runtime"]
    with pytest.raises(NstkitError, match="batch must be at least 1"):
        estimate_peak_bytes(256, 256, ROBUST, batch=0)


def test_the_sampled_and_histogram_losses_count_what_they_hold():
    from nstkit.objective.style_stats import REMD_SAMPLES, REMD_STYLE_POINTS

    layer = "conv3_block4_out"  # 64 x 64 x 512 at 512 px
    one = ROBUST.replace(style_layers=layer, preset="vanilla", optimizer="adam")  # the sampled losses take Adam
    gram = estimate_peak_bytes(512, 512, one)
    assert "style loss" not in gram.breakdown and "style loss" not in estimate_peak_bytes(
        512, 512, one.replace(style_loss="mean_cov")).breakdown
    points = 4 * (2 * REMD_SAMPLES * REMD_STYLE_POINTS + (REMD_SAMPLES + REMD_STYLE_POINTS) * 512)
    remd = estimate_peak_bytes(512, 512, one.replace(style_loss="remd"))
    assert remd.breakdown["style loss"] == points
    assert remd.peak_bytes == gram.peak_bytes + points
    mrf = estimate_peak_bytes(512, 512, one.replace(style_loss="mrf"))
    patches = 4 * (2 * REMD_SAMPLES * REMD_STYLE_POINTS + (REMD_SAMPLES + REMD_STYLE_POINTS) * 9 * 512
                   + 64 * 64 * 9 * 512)
    assert mrf.breakdown["style loss"] == patches
    histogram = estimate_peak_bytes(512, 512, one.replace(style_loss="histogram"))
    assert gram.peak_bytes < histogram.peak_bytes < remd.peak_bytes < mrf.peak_bytes
    assert estimate_peak_bytes(512, 512, one.replace(style_loss="remd"), batch=2).breakdown[
        "style loss"] == 2 * points


def test_bfloat16_predicts_less_than_float32():
    full = estimate_peak_bytes(512, 512, ROBUST)
    half = estimate_peak_bytes(512, 512, ROBUST.replace(precision="bfloat16"))
    assert half.details["activation_bytes"] * 2 == full.details["activation_bytes"]
    assert half.peak_bytes < full.peak_bytes
    assert half.describe().endswith("at 512x512, preset robust, bfloat16")


def test_a_float32_finish_is_estimated_at_its_float32_end_with_both_networks_held():
    full = estimate_peak_bytes(512, 512, ROBUST.replace(optimizer="lbfgs"))
    low = ROBUST.replace(optimizer="lbfgs", precision="bfloat16")
    finished = estimate_peak_bytes(512, 512, low.replace(float32_finish=True))
    assert finished.precision == "float32" and finished.peak_bytes > full.peak_bytes > \
        estimate_peak_bytes(512, 512, low).peak_bytes
    assert finished.breakdown["weights"] == 2 * full.breakdown["weights"]


def test_a_larger_style_image_can_set_the_peak():
    same = estimate_peak_bytes(128, 128, ROBUST)
    big_style = estimate_peak_bytes(128, 128, ROBUST, style_shape=(1024, 1024))
    assert big_style.breakdown["activations"] > 10 * same.breakdown["activations"]


def test_largest_fitting_side_is_the_edge_of_the_budget():
    budget = estimate_peak_bytes(400, 400, ROBUST).peak_bytes
    side = largest_fitting_side(ROBUST, budget)
    assert side is not None and 395 <= side <= 405
    assert estimate_peak_bytes(side, side, ROBUST).peak_bytes <= budget
    assert estimate_peak_bytes(side + 1, side + 1, ROBUST).peak_bytes > budget
    wide = largest_fitting_side(ROBUST, budget, aspect=2.0)  # width = 2 x height: a longer long side fits
    assert wide > side
    assert largest_fitting_side(ROBUST, 10 * 2 ** 20) is None  # 10 MiB: not even the runtime fits


def test_shortfall_compares_with_the_available_memory(monkeypatch):
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "1TiB")
    assert shortfall(256, 256, ROBUST) is None
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "100MiB")
    needed, available = shortfall(256, 256, ROBUST)
    assert available == 100 * 2 ** 20 and needed == estimate_peak_bytes(256, 256, ROBUST).peak_bytes
    with pytest.raises(NstkitError, match="resnet50 only"):
        estimate_peak_bytes(256, 256, StyleConfig(preset="vgg19"))


def test_sizes_read_and_print():
    assert parse_bytes("2GiB") == parse_bytes("2 g") == 2 * 2 ** 30
    assert parse_bytes("800MB") == 800 * 10 ** 6 and parse_bytes("12345") == 12345
    for bad in ("lots", "-1G", "2 furlongs", ""):
        with pytest.raises(NstkitError, match="not a size"):
            parse_bytes(bad)
    assert format_bytes(300 * 2 ** 20) == "300 MiB" and format_bytes(3.14 * 2 ** 30) == "3.1 GiB"


@pytest.fixture
def content_file(tmp_path):
    path = tmp_path / "content.png"
    Image.fromarray(smooth_image(1, 120, 160)).save(path)
    return path


def test_estimate_command_prints_the_prediction(content_file, monkeypatch, capsys):
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "5GiB")
    # In this process (the network is already built); the bad-input cases below run the real command.
    assert cli.main(["estimate", str(content_file), "--max-dim", "128", "--preset", "vanilla",
                     "--precision", "bfloat16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"predicted peak memory: \d+(\.\d)? (MiB|GiB) \(this machine has 5\.0 GiB available\) "
                        r"at 128x96, preset vanilla, bfloat16", lines[0]), lines[0]
    parts = [line.strip() for line in lines[1:]]
    for part in ("runtime", "weights", "activations", "image buffers", "targets"):
        assert any(line.startswith(part) and line.endswith("B") for line in parts), parts


@pytest.mark.parametrize("args, message", [
    (["missing.png"], "content image not found"),
    (["{content}", "--preset", "robst"], "unknown preset"),
    (["{content}", "--style", "nowhere.jpg"], "style image not found"),
    (["{content}", "--max-dim", "8"], "max_dim"),
    (["{content}", "--precision", "float64"], "invalid choice"),
    (["{content}", "--preset", "vgg19"], "resnet50 only"),
])
def test_estimate_command_bad_input_is_one_line_exit_2(content_file, tmp_path, args, message):
    done = run_cli("estimate", *[str(a).format(content=content_file) for a in args], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""


def test_stylize_warns_when_the_run_will_not_fit_and_runs_anyway(content_file, tmp_path, monkeypatch, capsys):
    style = tmp_path / "style.png"
    Image.fromarray(smooth_image(2, 64, 64)).save(style)
    out = tmp_path / "out.png"
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "200MiB")
    assert cli.main(["stylize", str(content_file), str(style), "-o", str(out), "--steps", "1", "--max-dim", "64",
                     "--weights", "random", "-q", "--precision", "bfloat16", "--no-jit-compile"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nstkit: warning:")]
    assert len(warnings) == 1, warnings
    # Already in bfloat16: the advice is the size alone.
    assert re.fullmatch(r"nstkit: warning: this run needs about \d+(\.\d)? (MiB|GiB) but only 200 MiB is "
                        r"available; lower --max-dim", warnings[0]), warnings[0]
    record = json.loads(record_path(out).read_text())  # warned, and ran anyway, with the flags given
    assert record["config"]["precision"] == "bfloat16" and record["config"]["jit_compile"] is False
    # In float32 the warning also suggests bfloat16; with enough memory it says nothing.
    cli._warn_if_short_of_memory(ROBUST.resolved(), (64, 64), (64, 64))
    assert capsys.readouterr().err.strip().endswith("is available; lower --max-dim or use --precision bfloat16")
    monkeypatch.setenv(AVAILABLE_MEMORY_ENV, "1TiB")
    cli._warn_if_short_of_memory(ROBUST.resolved(), (64, 64), (64, 64))
    assert capsys.readouterr().err == ""


def test_the_bfloat16_activation_factor_follows_the_cpus_isa(monkeypatch):
    """Measured: AMX kernels hold more buffers than AVX-512 BF16 ones (1.442 vs 1.126); float32 is shared."""
    from nstkit.measure import memory
    from nstkit.network import device

    monkeypatch.setattr(device, "cpu_features", lambda: frozenset({"avx512_bf16", "amx_bf16", "amx_tile"}))
    assert memory.activation_factor("bfloat16") == memory.ACTIVATION_FACTOR["bfloat16"]
    with_amx = memory.estimate_peak_bytes(512, 512, memory.StyleConfig(precision="bfloat16")).breakdown
    monkeypatch.setattr(device, "cpu_features", lambda: frozenset({"avx512_bf16"}))
    assert memory.activation_factor("bfloat16") == memory.BFLOAT16_FACTOR_WITHOUT_AMX
    assert memory.activation_factor("float32") == memory.ACTIVATION_FACTOR["float32"]
    without = memory.estimate_peak_bytes(512, 512, memory.StyleConfig(precision="bfloat16")).breakdown
    ratio = without["activations"] / with_amx["activations"]
    assert ratio == pytest.approx(memory.BFLOAT16_FACTOR_WITHOUT_AMX / memory.ACTIVATION_FACTOR["bfloat16"], rel=1e-3)
