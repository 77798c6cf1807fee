"""Video (`nstkit video`, `nstkit.stylize_video`): a clip end to end, compiled once, resumable, its bad inputs,
and nothing lost to a signal, a failing folder or a damaged frames folder."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from nst_helpers import ROOT, run_cli, sigterm_at, smooth_image
from PIL import Image

from nstkit.core.errors import NstkitError, NstkitWarning
from nstkit.core.record import record_path
from nstkit.media.clips import Clip, read_clip, write_mp4

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
    record = json.loads(record_path(out).read_text())
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
    _when_finished(process, record_path(frames_dir / "frame_00002.png"))
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "rerun with --resume to finish" in stderr, stderr[-500:]
    so_far = len(read_clip(out).frames)
    assert 2 <= so_far < 6 and json.loads(record_path(out).read_text())["stopped_early"]

    refused = run_cli(*args)  # without --resume the finished frames are not overwritten
    assert refused.returncode == 2 and "--resume to continue it" in refused.stderr

    process = _start([*args, "--resume"])
    _when_finished(process, record_path(frames_dir / f"frame_{so_far + 1:05d}.png"))
    process.send_signal(signal.SIGKILL)  # no chance to clean up: what a crash or a lost machine leaves
    process.communicate()
    finished = len(list(frames_dir.glob("frame_*.png.json")))
    assert so_far < finished < 6

    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads(record_path(out).read_text())
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
    from nstkit.api.video import video_config
    from nstkit.core.config import VIDEO_TEMPORAL_WEIGHT

    assert video_config().temporal_weight == VIDEO_TEMPORAL_WEIGHT
    assert video_config(StyleConfig(temporal_weight=0.0)).temporal_weight == 0.0
    assert video_config(temporal_weight=0.0).temporal_weight == 0.0
    assert StyleConfig().resolved().temporal_weight == 0.0  # an image has no temporal term
    with pytest.raises(NstkitError, match="drop lr_decay for video"):
        from nstkit.api.video import _check

        _check(video_config(lr_decay=0.5))


# --------------------------------------------------------------------------- what a pan brings into the frame


def textured_pan(count=3, shift=8, height=64, width=96):
    """A camera pan over a textured image (DIS needs texture at every scale): each frame ``shift`` px further
    right, so a strip ``shift`` px wide enters on the right of every later frame."""
    wide = width + shift * count
    noise = np.random.default_rng(0).uniform(0, 80, (height, wide, 1))
    base = np.clip(smooth_image(1, height, wide).astype(np.float32) * 0.6 + noise, 0, 255).astype(np.uint8)
    return [base[:, shift * i: shift * i + width] for i in range(count)]


def test_the_strip_a_pan_brings_in_starts_from_the_new_frame_not_from_streaks_of_the_edge():
    from skimage.metrics import structural_similarity

    from nstkit.api.video import stylize_video

    shift = 8
    frames = textured_pan(3, shift)
    clip = Clip(frames, 10.0, "pan", ["1", "2", "3"])
    options = {"weights": "random", "steps": 4, "frame_steps": 4, "max_dim": 96, "precision": "float32",
               "progress": False}
    independent = stylize_video(clip, STYLE, None, warm_start=False, temporal_weight=0.0, **options)
    warm = stylize_video(clip, STYLE, None, **options)

    def entering(result, index):  # how much of the content the entering strip keeps (SSIM against it)
        return structural_similarity(np.asarray(result.frames[index])[:, -shift:], frames[index][:, -shift:],
                                     channel_axis=-1, data_range=255)

    for index in (1, 2):  # the edge column smeared across the strip scores about 0.2, then 0.02
        assert entering(warm, index) > entering(independent, index) - 0.05, (index, entering(warm, index))


# --------------------------------------------------------------------------- nothing lost to a failing folder

TINY = {"weights": "random", "steps": 1, "frame_steps": 1, "max_dim": 48, "precision": "float32", "progress": False}


def tiny_clip():
    """Three 64x48 frames, made in memory: ``max_dim`` 48 downscales them to 48x36, as `read_clip` would."""
    return Clip(textured_pan(3, 4, 48, 64), 10.0, "pan", ["1", "2", "3"])


def failing(real, *calls, error=errno.ENOSPC):
    """``real``, raising OSError(``error``) on the given calls (1-based; none given: on every call)."""
    made = []

    def fails(*args, **kwargs):
        made.append(1)
        if not calls or len(made) in calls:
            raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)

    return fails


@pytest.mark.parametrize("fault", ["disk full at the second frame", "frames folder deleted mid-run"])
def test_a_frame_the_frames_folder_cannot_take_is_one_warning_and_the_clip_is_still_whole(tmp_path, monkeypatch, fault):
    from nstkit.api.video import stylize_video
    from nstkit.media import images

    frames_dir, out = tmp_path / "frames", tmp_path / "out.mp4"
    callbacks = []
    if fault == "disk full at the second frame":
        monkeypatch.setattr(images, "save_image", failing(images.save_image, 2))
        reason = "No space left on device"
    else:
        callbacks = [lambda progress: progress.frame == 1 and shutil.rmtree(frames_dir, ignore_errors=True)]
        reason = "No such file or directory"
    with pytest.warns(NstkitWarning, match=rf"could not keep frame 2 in .*frames \({reason}\)") as caught:
        result = stylize_video(tiny_clip(), STYLE, out, frames_dir=frames_dir, callbacks=callbacks, **TINY)
    assert len([w for w in caught if issubclass(w.category, NstkitWarning)]) == 1  # once, not once per frame
    assert len(result.frames) == 3 and len(read_clip(out).frames) == 3 and not result.stopped_early
    assert result.frames[0].shape == (36, 48, 3)  # the flow, too, between frames of the size the runs see
    assert json.loads(record_path(out).read_text())["frames_done"] == 3
    assert not list(tmp_path.glob("**/.*.tmp"))  # no half-written file left behind


@pytest.mark.parametrize("fault", ["clip", "record", "everywhere"])
def test_a_clip_its_folder_cannot_take_is_saved_elsewhere_and_the_error_says_where(tmp_path, monkeypatch, fault):
    from nstkit.api import video
    from nstkit.core import record
    from nstkit.run.result import OutputNotSaved

    if fault == "record":
        monkeypatch.setattr(record, "write_record", failing(record.write_record, 1))
    else:
        monkeypatch.setattr(video, "write_mp4", failing(video.write_mp4, *((1,) if fault == "clip" else ())))
    out = tmp_path / "out.mp4"
    with pytest.raises(OutputNotSaved) as caught:
        video.stylize_video(tiny_clip(), STYLE, out, **TINY)
    lost, hidden = caught.value, tmp_path / ".out.frames"
    message = str(lost)
    assert lost.exit_code == 74 and "\n" not in message and "No space left on device" in message
    assert f"the finished frames are kept in {hidden}" in message and hidden.is_dir()  # not removed: not where asked
    assert len(lost.result.frames) == 3 and lost.result.record["frames_done"] == 3  # in memory, for Python
    if fault == "everywhere":
        assert lost.saved_to is None and "nor anywhere else" in message
        return
    rescued = lost.saved_to
    assert rescued.parent == tmp_path and ".rescued-" in rescued.name and f"saved the clip to {rescued}" in message
    assert len(read_clip(rescued).frames) == 3 and lost.result.path == rescued
    assert json.loads(record_path(rescued).read_text())["asked_for"] == str(out)
    assert ("but could not write its record" in message) == (fault == "record")


def test_a_work_folder_that_cannot_be_removed_is_a_warning_and_the_clip_is_kept(tmp_path, monkeypatch):
    import pathlib

    from nstkit.api.video import stylize_video

    out, hidden = tmp_path / "out.mp4", tmp_path / ".out.frames"
    real_unlink = pathlib.Path.unlink

    def unlink(path, *args, **kwargs):
        if path.parent == hidden:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    with pytest.warns(NstkitWarning, match=r"could not remove the work folder .*\.out\.frames \(Permission denied\)"):
        result = stylize_video(tiny_clip(), STYLE, out, **TINY)
    assert result.path == out and len(read_clip(out).frames) == 3 and hidden.is_dir()


def test_the_cli_rescues_a_clip_with_exit_74_and_a_warning_starts_its_own_line_under_the_bar(tmp_path, monkeypatch,
                                                                                           capsys):
    from nstkit.api import video
    from nstkit.media import images
    from nstkit.ui.cli import main

    source = write_mp4(tmp_path / "pan.mp4", textured_pan(3, 4, 48, 64), fps=10)
    out = tmp_path / "out.mp4"
    monkeypatch.setattr(images, "save_image", failing(images.save_image, 2))  # frame 2 not kept: a warning
    monkeypatch.setattr(video, "write_mp4", failing(video.write_mp4, 1))  # the clip not where asked: rescued
    status = main(["video", str(source), "-s", str(STYLE), "-o", str(out), "--steps", "2", "--frame-steps", "2",
                   *map(str, FAST)])  # no -q: the bar is drawn
    err = capsys.readouterr().err
    assert status == 74, err
    warning = err.index("nstkit: warning: could not keep frame 2")
    assert warning == 0 or err[warning - 1] in "\r\n", repr(err[max(0, warning - 80): warning + 20])  # not after the bar
    errors = [line for line in err.split("\n") if "nstkit: error:" in line]
    assert len(errors) == 1 and "saved the clip to" in errors[0] and ".rescued-" in errors[0]
    assert "Traceback" not in err


# --------------------------------------------------------------------------- a damaged frames folder on --resume


def test_a_damaged_frames_folder_on_resume_is_one_line_naming_the_file_and_the_file_stays(tmp_path, capsys):
    from nstkit.ui.cli import main

    source = write_mp4(tmp_path / "pan.mp4", textured_pan(3, 4, 48, 64), fps=10)
    frames_dir = tmp_path / "frames"
    args = ["video", str(source), "-s", str(STYLE), "-o", str(tmp_path / "out.mp4"), "--steps", "1",
            "--frame-steps", "1", "--frames-dir", str(frames_dir), "-q", *map(str, FAST)]
    assert main(args) == 0, capsys.readouterr().err
    good = {path.name: path.read_bytes() for path in frames_dir.iterdir()}
    png, facts = good["frame_00002.png"], "frame_00002.png.json"
    other_size = frames_dir / "other.png"
    Image.new("RGB", (40, 32)).save(other_size)
    damages = [("frame_00002.png", png[: len(png) // 2], "not a whole image"),
               ("frame_00002.png", b"not a picture", "not a whole image"),
               ("frame_00002.png", other_size.read_bytes(), "40x32 px, the clip's frames 64x48"),
               ("frame_00002.npy", good["frame_00002.npy"][:100], "not a whole array"),
               (facts, b'{"frame": 2, "steps', "not JSON"),
               (facts, b"[1, 2, 3]\n", "not frame 2's record"),
               (facts, good["frame_00001.png.json"], "not frame 2's record"),
               (facts, b'{"frame": 2}\n', "not frame 2's record")]
    other_size.unlink()
    for name, damaged, problem in damages:
        for each, data in good.items():
            (frames_dir / each).write_bytes(data)
        (frames_dir / name).write_bytes(damaged)
        assert main([*args, "--resume"]) == 2, name
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and str(frames_dir / name) in lines[0] and problem in lines[0], (name, lines)
        assert "delete it and rerun with --resume" in lines[0]
        assert (frames_dir / name).read_bytes() == damaged  # left as it was, for whoever looks into it

    for each, data in good.items():  # a frames folder of nstkit before 0.2: frame_NNNNN.json
        (frames_dir / each).write_bytes(data)
    (frames_dir / facts).rename(frames_dir / "frame_00002.json")
    assert main([*args, "--resume"]) == 0
    record = json.loads(record_path(tmp_path / "out.mp4").read_text())
    assert [frame.get("resumed") for frame in record["frames"]] == [True] * 3


# --------------------------------------------------------------------------- SIGTERM



@pytest.mark.slow
@pytest.mark.parametrize("when", ["during the second frame", "between frames"])
def test_sigterm_after_the_first_frame_writes_the_clip_so_far_and_exits_143(tmp_path, monkeypatch, when):
    module, owner, attribute, call = {"during the second frame": ("run.gradients", "WholeImage", "step", 4),
                                      "between frames": ("media.flow", "", "optical_flow", 1)}[when]
    source = write_mp4(tmp_path / "pan.mp4", textured_pan(3, 4, 48, 64), fps=10)
    out = tmp_path / "out.mp4"
    sigterm_at(monkeypatch, module, owner, attribute, call, "before")  # in this process: the CLI's handlers meet it
    done = run_cli("video", source, "-s", STYLE, "-o", out, "--steps", "2", "--frame-steps", "20", "-q", *FAST)
    assert done.returncode == 143, done.stderr[-2000:]  # 128 + SIGTERM, as stylize: `nstkit video ... && next` stops
    assert "Traceback" not in done.stderr and "stopped (SIGTERM) after 1 of 3 frames" in done.stderr, done.stderr
    record = json.loads(record_path(out).read_text())
    assert record["stopped_early"] and record["stopped_by"] == "SIGTERM" and record["frames_done"] == 1
    assert len(read_clip(out).frames) == 1
