"""Clips in and out: a video file, a folder of frames or a glob, read into frames of one size; H.264 MP4s written.

Video goes through imageio's ffmpeg plugin with the ffmpeg binary that `imageio-ffmpeg` installs from the
package registry, so no system ffmpeg is needed (on Colab either). A clip is read whole, downscaled to
``max_dim`` as it is read: at 512 px a minute at 24 fps is about 1 GB. Every problem with an input is
one `NstkitError` line naming it and the fix.

Frames keep their size in the MP4: even sizes are written as yuv420p (what every player and browser
plays), odd ones as yuv444p (H.264 4:4:4, which some players cannot play), since yuv420p needs even sides.
"""

from __future__ import annotations

import glob as globbing
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core.errors import NstkitError

DEFAULT_FPS = 24.0  # frames from a folder or a glob; a video keeps its own rate
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass
class Clip:
    """A clip's frames (uint8 RGB, all one size), its frame rate, and where it came from."""

    frames: list[np.ndarray]
    fps: float
    source: str
    names: list[str]  # one per frame: its file's name, or frame_NNNNN for a video's

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.frames[0].shape[:2]


def _natural(path: Path) -> list:
    """frame2 before frame10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(source: str | os.PathLike) -> list[Path] | None:
    """The frame files a folder or a glob names, in natural order; None when ``source`` is neither."""
    text = os.fspath(source)
    if _GLOB_CHARACTERS.search(text) and not os.path.exists(text):
        return sorted((Path(p) for p in globbing.glob(text) if Path(p).suffix.lower() in FRAME_SUFFIXES), key=_natural)
    if os.path.isdir(text):
        return sorted((p for p in Path(text).iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_natural)
    return None


def read_clip(source: str | os.PathLike, *, fps: float | None = None, max_dim: int | None = None) -> Clip:
    """Read a video file, a folder of frames or a glob of frames, downscaled so the long side is at most
    ``max_dim``. ``fps`` is for frames (default `DEFAULT_FPS`); a video keeps its own rate."""
    if fps is not None and not fps > 0:
        raise NstkitError(f"--fps must be a positive number of frames per second, not {fps:g}")
    files = frame_files(source)
    if files is not None:
        return _read_frames(os.fspath(source), files, fps or DEFAULT_FPS, max_dim)
    path = Path(source)
    if not path.exists():
        raise NstkitError(f"no video or frame folder at {path}: check the path (a glob such as 'frames/*.png' "
                          "needs quotes in a shell)")
    if fps is not None:
        raise NstkitError(f"--fps is for frame folders and globs; the video {path.name} keeps its own rate: drop --fps")
    return _read_video(path, max_dim)


def downscaled(clip: Clip, max_dim: int | None) -> Clip:
    """``clip`` with its long side at most ``max_dim``, as `read_clip` would have read it: a clip made in memory
    may be larger, and its frames must be the size the runs see, or the flow between them would not fit."""
    if max_dim is None or max(clip.size) <= max_dim:
        return clip
    return Clip([_resized(frame, max_dim) for frame in clip.frames], clip.fps, clip.source, clip.names)


def _resized(frame: np.ndarray, max_dim: int | None) -> np.ndarray:
    from .images import resize_max_dim

    return frame if max_dim is None else resize_max_dim(frame, max_dim)


def _read_frames(source: str, files: Sequence[Path], fps: float, max_dim: int | None) -> Clip:
    from .images import load_image

    if not files:
        raise NstkitError(f"no frames in {source}: it holds no {', '.join(FRAME_SUFFIXES)} files")
    frames, size = [], None
    for path in files:
        frame = load_image(path, what=f"frame {path.name}")
        if size is None:
            size = frame.shape[:2]
        elif frame.shape[:2] != size:
            raise NstkitError(f"frame {path.name} is {frame.shape[1]}x{frame.shape[0]} px but {files[0].name} is "
                              f"{size[1]}x{size[0]}: every frame of a clip must have one size (resize them first)")
        frames.append(_resized(frame, max_dim))
    return Clip(frames, float(fps), source, [path.name for path in files])


def _probe(path: Path) -> str:
    """ffmpeg's description of ``path`` (its stderr for ``ffmpeg -i``)."""
    import imageio_ffmpeg

    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True, errors="replace")
    return run.stderr


def _read_video(path: Path, max_dim: int | None) -> Clip:
    import imageio.v3 as iio

    description = _probe(path)
    if "Input #0" not in description:
        raise NstkitError(f"{path} is not a video ffmpeg can read: give an MP4/MOV/WebM/AVI file, a folder of "
                          "frames or a glob")
    if not re.search(r"Stream #\S+.*: Video:", description):
        raise NstkitError(f"{path} has no video stream (no frames): give a video with frames")
    try:
        fps = float(iio.immeta(path, plugin="FFMPEG")["fps"])
        frames = [_resized(np.asarray(frame, np.uint8)[..., :3], max_dim) for frame in iio.imiter(path, plugin="FFMPEG")]
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        why = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise NstkitError(f"{path} could not be decoded ({why}): re-encode it, e.g. "
                          "ffmpeg -i IN -c:v libx264 OUT.mp4") from None
    if not frames:
        raise NstkitError(f"{path} has no frames: give a video with frames")
    return Clip(frames, fps, str(path), [f"frame_{number:05d}" for number in range(1, len(frames) + 1)])


def check_video_output(path: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Fail before any compute if ``path`` is not a writable .mp4 or would replace an input."""
    from .images import check_output_path

    return check_output_path(path, inputs, formats=(".mp4",))


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write ``frames`` (uint8 RGB, one size) as an H.264 MP4, atomically: a reader never sees half a file,
    and an existing file is replaced only once the new one is whole.

    A folder that cannot take it (full, read-only, gone) raises `OSError`, as any write does: ffmpeg failing
    as it finishes the file (no room for its index) is not raised by imageio, so the file is probed first.
    """
    import tempfile

    import imageio

    path = Path(path)
    frames = list(frames)
    if not frames:
        raise NstkitError(f"no frames to write to {path}")
    height, width = frames[0].shape[:2]
    pixel_format = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        writer = imageio.get_writer(temporary, format="FFMPEG", fps=fps, codec="libx264", quality=None,
                                    pixelformat=pixel_format, macro_block_size=1, ffmpeg_log_level="error",
                                    # CRF 18: visually lossless for most footage; one thread: the same bytes each time
                                    output_params=["-crf", "18", "-threads", "1"])
        with writer:
            for frame in frames:
                writer.append_data(np.asarray(frame, np.uint8))
        if "Input #0" not in _probe(Path(temporary)):
            raise OSError(f"ffmpeg could not finish {path.name} (is the disk full?)")
        from ..core.files import _output_mode

        os.chmod(temporary, _output_mode(path))  # mkstemp's 0600 would hide the clip from other users
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
