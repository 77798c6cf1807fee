"""Reading clips (a video, a folder, a glob) and writing MP4s (`nstkit.media.clips`), and every bad input's one line."""

import os

import numpy as np
import pytest
from nst_helpers import smooth_image
from PIL import Image

from nstkit.core.errors import NstkitError
from nstkit.media.clips import check_video_output, read_clip, write_mp4


def frames(count=6, height=34, width=48):
    return [np.roll(smooth_image(1, height, width), 3 * i, axis=1) for i in range(count)]


@pytest.mark.parametrize("size", [(34, 48), (33, 47)])  # even: yuv420p; odd: yuv444p, the size kept either way
def test_an_mp4_keeps_its_frame_count_size_and_rate(tmp_path, size):
    written = frames(6, *size)
    path = write_mp4(tmp_path / "clip.mp4", written, fps=12.5)
    clip = read_clip(path)
    assert len(clip.frames) == 6 and clip.size == size and clip.fps == 12.5
    error = lambda a, b: np.abs(a.astype(int) - b).mean()  # noqa: E731
    assert error(clip.frames[3], written[3]) < 0.5 * error(clip.frames[3], written[2])  # lossy, but frame 3
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temp file left beside it


def test_the_same_frames_give_the_same_bytes(tmp_path):
    a = write_mp4(tmp_path / "a.mp4", frames(), fps=24)
    b = write_mp4(tmp_path / "b.mp4", frames(), fps=24)
    assert a.read_bytes() == b.read_bytes()


def test_a_folder_or_a_glob_of_frames_reads_in_natural_order_at_the_given_rate(tmp_path):
    for number, frame in enumerate(frames(3), start=8):  # frame8, frame9, frame10: natural order, not 10, 8, 9
        Image.fromarray(frame).save(tmp_path / f"frame{number}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    clip = read_clip(tmp_path, fps=10)
    assert clip.names == ["frame8.png", "frame9.png", "frame10.png"] and clip.fps == 10
    assert np.array_equal(clip.frames[2], frames(3)[2])
    globbed = read_clip(str(tmp_path / "frame*.png"), max_dim=24)
    assert globbed.fps == 24.0 and globbed.size == (17, 24) and len(globbed.frames) == 3


def _error(source, **options):
    with pytest.raises(NstkitError) as caught:
        read_clip(source, **options)
    return str(caught.value)


def test_bad_inputs_each_get_one_line_naming_the_problem(tmp_path):
    assert "no video or frame folder at" in _error(tmp_path / "missing.mp4")
    (tmp_path / "text.mp4").write_text("hello")
    assert "is not a video ffmpeg can read" in _error(tmp_path / "text.mp4")
    import subprocess

    import imageio_ffmpeg

    empty = tmp_path / "empty.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=red:s=32x32:d=1", "-frames:v", "0", str(empty)], check=True)
    assert "has no video stream (no frames)" in _error(empty)
    folder = tmp_path / "frames"
    folder.mkdir()
    assert "no frames in" in _error(folder)
    Image.fromarray(frames(1)[0]).save(folder / "a1.png")
    Image.fromarray(frames(1, 40, 50)[0]).save(folder / "a2.png")
    assert "frame a2.png is 50x40 px but a1.png is 48x34" in _error(folder)
    write_mp4(tmp_path / "ok.mp4", frames(2), fps=24)
    assert "keeps its own rate: drop --fps" in _error(tmp_path / "ok.mp4", fps=30)
    assert "--fps must be a positive" in _error(folder, fps=0)
    for message in (_error(tmp_path / "missing.mp4"), _error(folder)):
        assert "\n" not in message


def test_an_unwritable_or_wrong_output_is_refused_before_any_work(tmp_path):
    with pytest.raises(NstkitError, match="must end in .mp4"):
        check_video_output(tmp_path / "out.avi")
    with pytest.raises(NstkitError, match="does not exist"):
        check_video_output(tmp_path / "no" / "out.mp4")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK) and os.geteuid() == 0:  # root writes anywhere: make the folder a file instead
            os.chmod(locked, 0o700)
            locked.rmdir()
            locked.write_text("a file")
            with pytest.raises(NstkitError, match="is a file, not a folder"):
                check_video_output(locked / "out.mp4")
        else:
            with pytest.raises(NstkitError, match="not writable"):
                check_video_output(locked / "out.mp4")
    finally:
        if locked.is_dir():
            os.chmod(locked, 0o700)
    source = write_mp4(tmp_path / "in.mp4", frames(2), fps=24)
    with pytest.raises(NstkitError, match="same file as input"):
        check_video_output(source, inputs=(source,))


def test_a_clip_made_in_memory_is_downscaled_as_read_clip_would_read_it(tmp_path):
    from nstkit.media.clips import Clip, downscaled

    clip = Clip(frames(3, 34, 48), 12.0, "memory", ["a", "b", "c"])
    assert downscaled(clip, 48) is clip and downscaled(clip, None) is clip
    small = downscaled(clip, 24)
    assert small.size == (17, 24) and (small.fps, small.source, small.names) == (12.0, "memory", ["a", "b", "c"])
    for number, frame in enumerate(frames(3, 34, 48)):
        Image.fromarray(frame).save(tmp_path / f"f{number}.png")
    assert all(np.array_equal(a, b) for a, b in zip(small.frames, read_clip(tmp_path, max_dim=24).frames))


def test_a_clip_ffmpeg_could_not_finish_is_an_oserror_and_replaces_nothing(tmp_path, monkeypatch):
    from nstkit.media import clips

    path = write_mp4(tmp_path / "clip.mp4", frames(2), fps=24)
    before = path.read_bytes()
    # What a full disk leaves: ffmpeg exits without writing the index, and imageio raises nothing.
    monkeypatch.setattr(clips, "_probe", lambda _: "[mov,mp4] moov atom not found\nInvalid data found")
    with pytest.raises(OSError, match="ffmpeg could not finish clip.mp4"):
        write_mp4(path, frames(3), fps=24)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
