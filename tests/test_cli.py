"""The CLI end to end as a user runs it: in a new process where that is what is tested (the terminal's stderr,
signals, another process's bytes), otherwise in this one (`nst_helpers.run_cli`)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from nst_helpers import ROOT, bad_images, run_cli, run_cli_process, sha256
from PIL import Image

from nstkit.core.record import record_path

FAST = ["--weights", "random", "--max-dim", "64"]


def test_stylize_end_to_end_with_snapshots(tiny_pair, tmp_path):
    content, style = tiny_pair
    before = sha256(content), sha256(style)
    out = tmp_path / "out.png"
    done = run_cli_process("stylize", content, style, "-o", out, "--steps", "4", "--save-every", "2", "--seed", "5",
                           *FAST)
    assert done.returncode == 0, done.stderr
    assert (sha256(content), sha256(style)) == before
    assert Image.open(out).size == Image.open(content).size
    record = json.loads(record_path(out).read_text())
    assert record["weights"]["source"] == "random" and record["steps_run"] == 4
    assert record["config"]["seed"] == 5 and record["config"]["steps"] == 4
    assert record["inputs"]["content"]["sha256"] == before[0]
    for step in (2, 4):
        snapshot = tmp_path / f"out_step{step:05d}.png"
        assert snapshot.exists() and json.loads(record_path(snapshot).read_text())["step"] == step
    assert "random" in done.stdout and str(out) in done.stdout
    assert "step/s" in done.stderr or "s/step" in done.stderr  # the tqdm bar with its rate and ETA
    # TF's C++ start-up lines (oneDNN notice, CUDA probing) are kept off the terminal.
    assert not any(noise in done.stderr for noise in ("absl", "oneDNN", "cuInit", "cuda"))

    # Another process, same seed: the same bytes.
    again = tmp_path / "again.png"
    assert run_cli_process("stylize", content, style, "-o", again, "--steps", "4", "--seed", "5", "-q",
                           *FAST).returncode == 0
    assert sha256(again) == sha256(out)


def test_python_api_and_cli_defaults_agree():
    done = run_cli("stylize", "--help")
    assert done.returncode == 0
    for flag in ("--preset", "--style-layers", "--content-layers", "--content-weight", "--style-weight", "--lr",
                 "--steps", "--max-dim", "--init", "--seed", "--weights", "--save-every", "--epsilon", "--beta1"):
        assert flag in done.stdout
    text = " ".join(done.stdout.split())
    assert ("default: the preset's, else 20 in caffe pixel units; 0.05 with --param fourier" in text
            and "default: robust" in text and "default: the preset's, else 1e7" in text)
    for flag in ("--swag", "--swag-temperature", "--param", "--jitter", "--normalize-style-layers",
                 "--preserve-color"):
        assert flag in text


def test_layers_and_presets_listings():
    relu = run_cli("layers", "--kind", "relu")
    assert relu.returncode == 0
    rows = relu.stdout.strip().splitlines()[1:]
    assert len(rows) == 33 and all(" relu " in row for row in rows)
    presets = run_cli("presets")
    assert presets.returncode == 0
    for name in ("vanilla", "conv", "relu", "conv_relu", "robust"):
        assert f"\n{name}" in "\n" + presets.stdout
    assert "conv2_block2_1_relu:4" in presets.stdout


def _bad_cli_cases(tmp_path, content, style):
    cases = [([path, style, "-o", tmp_path / "o.png"], message) for path, message in bad_images(tmp_path)]
    two_colours = tmp_path / "two_colours.png"
    mask = np.zeros((48, 64, 3), np.uint8)
    mask[:, :32], mask[:, 32:] = (255, 0, 0), (0, 0, 255)
    Image.fromarray(mask).save(two_colours)
    out = ["-o", tmp_path / "o.png"]
    one_pixel = tmp_path / "one_pixel.png"
    Image.new("RGB", (1, 1), (10, 200, 30)).save(one_pixel)
    cases += [
        ([content, style, *out, "--style-layers", "conv4_block2_2_rellu"], "did you mean conv4_block2_2_relu"),
        ([content, style, *out, "--content-layers", "conv9_out"], "unknown ResNet-50 layer"),
        ([content, style, *out, "--preset", "robst"], "unknown preset"),
        ([content, style, *out, "--style-weight", "nan"], "style_weight"),
        ([content, style, *out, "--content-weight", "-5"], "content_weight"),
        ([content, style, *out, "--lr", "0"], "learning_rate"),
        ([content, style, *out, "--steps", "0"], "steps"),
        ([content, style, *out, "--steps", "-10"], "steps"),
        ([content, style, *out, "--steps", "2.5"], "whole number"),
        ([content, style, *out, "--steps", "many"], "not a number"),
        ([content, style, *out, "--weights", tmp_path / "none.h5"], "weights file not found"),
        ([content, style, "-o", content], "same file as input"),
        ([content, style, "-o", style.with_suffix(".png")], "same file as input"),
        ([content, style, "-o", tmp_path / "missing_dir" / "o.png"], "does not exist"),
        ([content, style, "-o", "/proc/nstkit-out.png"], "not writable"),
        ([content, style, "-o", tmp_path / "o.gif"], ".png, .jpg"),
        ([content, style, "-o", tmp_path / "o.jpg", "--bit-depth", "16"], "--bit-depth 16 needs a .png or .tif"),
        ([content, style, *out, "--quality", "101"], "quality must be a whole number from 1 to 100"),
        ([content, style, *out, "--style-loss", "gramm"], "invalid choice"),
        ([content, style, *out, "--style-scale", "0"], "style_scale"),
        ([content, style, *out, "--style-scale", "500"], "past 8192 px: use a smaller style_scale"),
        ([content, style, *out, "--mask", tmp_path / "no_mask.png"], "mask not found"),
        ([content, style, *out, "--mask", two_colours], "has 2 styled colour(s) (#ff0000, #0000ff)"),
        ([content, style, *out, "--mask", two_colours, "--style-loss", "histogram"], "not per mask region"),
        ([content, style, *out, "--swag", "softmax", "--swag-layers", "conv3_block4_out,conv4_block6_out"],
         "swag layer(s) conv3_block4_out, conv4_block6_out feed no loss"),
        ([content, style, *out, "--swag", "softmax", "--swag-temperature", "0.5"], "swag softmax has no temperature"),
        ([content, style, *out, "--swag-layers", "conv4_block2_2_conv"], "and swag is none"),
        ([content, style, *out, "--color-from", tmp_path / "palette.png"], "no file at"),
        ([content, style, *out, "--color-from", "style", "--preserve-color", "match"], "drop one"),
        ([content, style, *out, "--color-from", one_pixel, "--color-transfer", "mean_cov"], "has one pixel"),
    ]
    return cases


def test_every_bad_input_is_one_line_exit_2_and_touches_nothing(tiny_pair, tmp_path):
    content, style = tiny_pair
    cases = _bad_cli_cases(tmp_path, content, style)
    files = sorted(p for p in tmp_path.iterdir() if p.is_file())
    before = {p: sha256(p) for p in files}
    for args, message in cases:
        started = time.perf_counter()
        done = run_cli("stylize", *FAST, "--steps", "1", *args)  # the case's own flags come last and win
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, ([str(a) for a in args[2:]], done.stderr[-300:])
        assert len(lines) == 1 and lines[0].startswith("nstkit"), (args, done.stderr)
        assert message in lines[0], (args, lines[0])
        assert "Traceback" not in done.stderr + done.stdout
        assert time.perf_counter() - started < 20  # refused before any network or optimisation work
    assert {p: sha256(p) for p in files} == before
    assert sorted(p for p in tmp_path.iterdir() if p.is_file()) == files  # nothing new written


def test_sigterm_stops_early_and_saves_the_best_so_far(tiny_pair, tmp_path):
    content, style = tiny_pair
    out = tmp_path / "long.png"
    process = subprocess.Popen(
        [sys.executable, "-m", "nstkit", "stylize", content, style, "-o", out, "--steps", "5000",
         "--save-every", "1", "-q", *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    first_snapshot = tmp_path / "long_step00001.png"
    deadline = time.time() + 180
    while not first_snapshot.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert first_snapshot.exists(), process.communicate()[1]
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr  # 128 + SIGTERM: `nstkit stylize ... && next` does not carry on
    record = json.loads(record_path(out).read_text())
    assert record["stopped_early"] and 1 <= record["steps_run"] < 5000
    assert Image.open(out).size == Image.open(content).size
    assert "stopped (SIGTERM) at step" in stdout


def test_fewer_coarse_levels_than_asked_is_one_warning_line(tiny_pair, tmp_path):
    content, style = tiny_pair
    done = run_cli("stylize", content, style, "-o", tmp_path / "out.png", "--weights", "random", "--steps", "1",
                   "--max-dim", "64", "--coarse-levels", "8", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    warned = [line for line in done.stderr.splitlines() if "coarse_levels 8" in line]
    assert warned == ["nstkit: warning: coarse_levels 8: 0 coarse level(s) run, since level 1 would be under 32 px "
                      "at 64x48 px; lower coarse_levels or raise max_dim"], done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "UserWarning" not in done.stderr


def test_estimate_says_when_the_image_is_smaller_than_max_dim_and_offers_no_other_backbone(tiny_pair):
    content, _ = tiny_pair  # 64x48
    done = run_cli("estimate", content, "--max-dim", "4096")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is 64x48 px and nstkit never upscales, so this is the estimate at 64x48, not at --max-dim 4096" \
        in done.stderr and "at 64x48" in done.stdout
    refused = run_cli("estimate", content, "--backbone", "vgg19")
    assert refused.returncode == 2 and "unrecognized arguments: --backbone" in refused.stderr
