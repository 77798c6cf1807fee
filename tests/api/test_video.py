"""Video (`nstkit video`, `nstkit.stylize_video`): a clip end to end, compiled once, resumable, and its bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from nst_helpers import ROOT, run_cli, smooth_image
from PIL import Image

from nstkit.core.errors import NstkitError
from nstkit.media.clips import read_clip, write_mp4

STYLE = ROOT / "nstkit" / "media" / "samples" / "style" / "hexagons.png"
FAST = ("--weights", "random", "--max-dim", "96", "--precision", "float32")


def pan(count=6, fps=10.0):
    """A camera pan over a smooth image: each frame 2 px further right."""
    base = smooth_image(1, 80, 120)
    return [base[4:68, 2 * i: 2 * i + 96] for i in range(count)]


@pytest.fixture
def clip(tmp_path):
    return write_mp4(tmp_path / "pan.mp4", pan(), fps=10)


def test_temporal_loss_is_zero_for_a_perfectly_warped_frame_and_only_counts_where_the_flow_holds():
    import tensorflow as tf

    from nstkit.objective.losses import temporal_loss

    frame = tf.constant(np.random.default_rng(0).normal(0, 50, (1, 8, 8, 3)).astype(np.float32))
    ones, zeros = tf.ones([1, 8, 8, 1]), tf.zeros([1, 8, 8, 1])
    assert float(temporal_loss(frame, frame, ones)[0]) == 0.0
    assert float(temporal_loss(frame + 3.0, frame, ones)[0]) == pytest.approx(9.0)
    assert float(temporal_loss(frame + 3.0, frame, zeros)[0]) == 0.0
    half = tf.concat([ones[:, :4], zeros[:, 4:]], axis=1)
    assert float(temporal_loss(frame + 3.0, frame, half)[0]) == pytest.approx(4.5)


@pytest.mark.slow
def test_a_clip_end_to_end_keeps_count_size_and_rate_and_compiles_one_step(clip, tmp_path):
    from nstkit.api.video import stylize_video

    out = tmp_path / "styled.mp4"
    result = stylize_video(clip, STYLE, out, weights="random", steps=4, frame_steps=2, max_dim=96,
                           precision="float32")
    written = read_clip(out)
    assert len(written.frames) == 6 and written.size == (64, 96) and written.fps == 10.0
    record = json.loads(out.with_suffix(".json").read_text())
    assert [frame["steps"] for frame in record["frames"]] == [4, 2, 2, 2, 2, 2]
    assert [frame["step_traces"] for frame in record["frames"]] == [1] * 6
    assert record["compiled_steps"] == 1  # one compiled step for the whole clip, traced once
    first, *later = [frame["start_loss"] for frame in record["frames"]]
    assert max(later) < 0.5 * first  # each later frame starts from the previous stylised one, not the content
    assert all("temporal" in frame["final_losses"] for frame in record["frames"])
    assert record["frames"][0]["warping_error"] is None and all(f["warping_error"] >= 0 for f in record["frames"][1:])
    assert record["inputs"]["styles"][0]["sha256"] and record["seconds_per_frame"]["later_median"] > 0
    assert not (tmp_path / ".styled.frames").exists()  # the hidden work folder goes once the clip is whole
    assert [np.asarray(f).shape for f in result.frames] == [(64, 96, 3)] * 6


def _start(args):
    return subprocess.Popen([sys.executable, "-m", "nstkit", *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _when_finished(process, marker, seconds=240):
    deadline = time.time() + seconds
    while not marker.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), process.communicate()[1][-500:]


@pytest.mark.slow
def test_ctrl_c_writes_the_clip_so_far_and_a_killed_run_resumes_to_the_same_frames(clip, tmp_path):
    frames_dir, out = tmp_path / "frames", tmp_path / "resumed.mp4"
    args = ["video", clip, "-s", STYLE, "-o", out, "--steps", "4", "--frame-steps", "30",
            "--frames-dir", frames_dir, "-q", *FAST]
    process = _start(args)
    _when_finished(process, frames_dir / "frame_00002.json")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "rerun with --resume to finish" in stderr, stderr[-500:]
    so_far = len(read_clip(out).frames)
    assert 2 <= so_far < 6 and json.loads(out.with_suffix(".json").read_text())["stopped_early"]

    refused = run_cli(*args)  # without --resume the finished frames are not overwritten
    assert refused.returncode == 2 and "--resume to continue it" in refused.stderr

    process = _start([*args, "--resume"])
    _when_finished(process, frames_dir / f"frame_{so_far + 1:05d}.json")
    process.send_signal(signal.SIGKILL)  # no chance to clean up: what a crash or a lost machine leaves
    process.communicate()
    finished = len(list(frames_dir.glob("frame_*.json")))
    assert so_far < finished < 6

    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert sum(bool(frame.get("resumed")) for frame in record["frames"]) == finished
    whole = run_cli(*[a if a != frames_dir else tmp_path / "whole" for a in args])
    assert whole.returncode == 0, whole.stderr
    for name in (f"frame_{i:05d}.png" for i in range(1, 7)):
        assert np.array_equal(np.asarray(Image.open(frames_dir / name)), np.asarray(Image.open(tmp_path / "whole" / name)))


def test_bad_video_inputs_are_one_line_exit_2_before_any_work(tmp_path, clip):
    (tmp_path / "text.mp4").write_text("not a video")
    import imageio_ffmpeg

    empty = tmp_path / "empty.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=red:s=32x32:d=1", "-frames:v", "0", str(empty)], check=True)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(pan(1)[0]).save(mixed / "f1.png")
    Image.fromarray(smooth_image(2, 70, 90)).save(mixed / "f2.png")
    cases = [
        ((tmp_path / "missing.mp4", "-o", tmp_path / "o.mp4"), "no video or frame folder at"),
        ((tmp_path / "text.mp4", "-o", tmp_path / "o.mp4"), "is not a video ffmpeg can read"),
        ((empty, "-o", tmp_path / "o.mp4"), "has no video stream (no frames)"),
        ((mixed, "-o", tmp_path / "o.mp4"), "every frame of a clip must have one size"),
        ((clip, "-o", tmp_path / "no" / "o.mp4"), "does not exist"),
        ((clip, "-o", tmp_path / "o.avi"), "must end in .mp4"),
        ((clip, "-o", clip), "same file as input"),
        ((clip, "-o", tmp_path / "o.mp4", "--coarse-levels", "1"), "drop coarse_levels and tile_size"),
        ((clip, "-o", tmp_path / "o.mp4", "--jitter", "2"), "jitter shifts the image against the previous frame"),
    ]
    for args, message in cases:
        done = run_cli("video", args[0], "-s", STYLE, *args[1:], "--steps", "1", *FAST)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], (args, done.stderr[-400:])
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_the_temporal_loss_on_an_image_is_refused_in_one_line(tmp_path):
    from nstkit import stylize

    with pytest.raises(NstkitError, match="use nstkit video"):
        stylize(smooth_image(1, 64, 64), STYLE, temporal_weight=1.0, weights="random", steps=1, max_dim=64)


@pytest.mark.slow
@pytest.mark.parametrize("options", [dict(optimizer="lbfgs"), dict(preserve_color="luminance"),
                                     dict(style_loss="histogram"), dict(param="fourier"),
                                     dict(precision="bfloat16")], ids=lambda o: "-".join(map(str, o.values())))
def test_the_image_options_work_for_a_clip_and_keep_one_compiled_step(tmp_path, options):
    from nstkit.api.video import stylize_video

    source = write_mp4(tmp_path / "pan.mp4", pan(3), fps=10)
    result = stylize_video(source, STYLE, None, weights="random", steps=3, frame_steps=2, max_dim=64,
                           **{"precision": "float32", **options})
    assert len(result.frames) == 3 and result.record["compiled_steps"] == 1
    assert result.record["config"][next(iter(options))] == next(iter(options.values()))
    assert all(np.isfinite(frame["final_losses"]["total"]) for frame in result.record["frames"])


def test_a_frames_folder_that_is_not_ours_or_holds_the_inputs_is_refused(tmp_path):
    from nstkit.api.video import stylize_video

    frames = tmp_path / "frames"
    frames.mkdir()
    for number, frame in enumerate(pan(3), start=1):
        Image.fromarray(frame).save(frames / f"frame_{number:05d}.png")  # ffmpeg's own naming
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    options = dict(weights="random", steps=1, frame_steps=1, max_dim=64)
    with pytest.raises(NstkitError, match="is where the input frames are"):
        stylize_video(frames, STYLE, None, frames_dir=frames / "styled", **options)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(NstkitError, match="holds files that are not an nstkit clip's"):
        stylize_video(frames, STYLE, None, frames_dir=other, **options)
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before and (other / "notes.txt").exists()


def test_temporal_weight_zero_given_is_kept_and_none_takes_the_video_default():
    from nstkit import StyleConfig
    from nstkit.core.config import VIDEO_TEMPORAL_WEIGHT
    from nstkit.api.video import video_config

    assert video_config().temporal_weight == VIDEO_TEMPORAL_WEIGHT
    assert video_config(StyleConfig(temporal_weight=0.0)).temporal_weight == 0.0
    assert video_config(temporal_weight=0.0).temporal_weight == 0.0
    assert StyleConfig().resolved().temporal_weight == 0.0  # an image has no temporal term
    with pytest.raises(NstkitError, match="drop lr_decay for video"):
        from nstkit.api.video import _check

        _check(video_config(lr_decay=0.5))
