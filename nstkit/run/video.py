"""Stylise a clip without flicker: Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016).

Each frame optimised on its own lands in another local minimum, so the clip flickers. Here:

- **warm start**: frame t starts from stylised frame t-1 warped onto it by the optical flow of the input
  frames (`flow`: OpenCV's DIS, no weights to download), so it starts near the previous frame's minimum;
- **temporal loss** (``temporal_weight``, `objective.temporal_term`): ||c * (x_t - warp(x_{t-1}))||², with c
  0 at occlusions and motion boundaries (`flow.reliable`), keeps it there where the flow holds;
- **compiled once**: the network, the style targets and the compiled step are built for the first frame
  and reused by every later frame of the clip (`engine.Compiled`): a frame costs its steps only;
- **fewer steps after the first frame** (``frame_steps``, default 150, against ``steps`` for the first):
  each later frame starts near its answer.

A long job keeps everything it finished. Each finished frame is a PNG (and, for the warm start, its
unrounded image) in the frames folder (``frames_dir``, else a hidden folder beside the output, removed
once the clip is whole); ``resume=True`` skips them; Ctrl-C or a ``stop_event`` keeps them and writes the
clip so far. The clip's run record (beside the MP4) has the config, the inputs' hashes, s/frame, each
frame's losses and the warping error between consecutive outputs (`flow.warping_error`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..core.config import VIDEO_TEMPORAL_WEIGHT, StyleConfig
from ..core.errors import NstkitError
from ..media.clips import Clip, check_video_output, read_clip, write_mp4
from ..media.images import ImageInput
from .progress import progress_bar

VIDEO_FRAME_STEPS = 150  # steps of every frame after the first (the first takes the config's ``steps``)
FLOW_METHOD = "OpenCV DIS optical flow, medium preset, between the input frames"


@dataclass
class FrameProgress:
    """What a video callback sees after each step: the frame, and the step within it and over the clip."""

    frame: int  # 0-based
    frames: int
    step: int  # steps so far over the clip
    steps: int  # steps planned over the clip
    losses: dict[str, float]
    elapsed: float


@dataclass
class VideoResult:
    """The stylised frames (uint8 RGB), the rate, the clip's run record, and where the MP4 went."""

    frames: list[np.ndarray]
    fps: float
    record: dict[str, Any]
    path: Path | None
    stopped_early: bool = False


def video_config(config: StyleConfig | None = None, **options: Any) -> StyleConfig:
    """The config a clip runs with: ``options`` over ``config``, the video's temporal weight by default."""
    config = (config or StyleConfig()).replace(**options)
    return config if config.temporal_weight is not None else config.replace(temporal_weight=VIDEO_TEMPORAL_WEIGHT)


def _check(config: StyleConfig) -> None:
    if config.coarse_levels or config.tile_size:
        raise NstkitError("nstkit video runs each frame in one pass at its size, compiled once for the clip: "
                          "drop coarse_levels and tile_size")
    if config.lr_decay != 1:  # the compiled step's schedule is sized by the first frame's steps
        raise NstkitError("lr_decay decays over one run's steps, and a clip's frames have two step counts: "
                          "drop lr_decay for video")


def _signature(config: StyleConfig, frames_sha256: str, style_inputs: list, frame_steps: int, warm_start: bool) -> str:
    described = {"config": config.to_dict(), "frames": frames_sha256, "styles": style_inputs,
                 "frame_steps": frame_steps, "warm_start": warm_start}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


class _FramesFolder:
    """Finished frames on disk: frame_NNNNN.png (the output), .npy (the unrounded image the next frame warps),
    .json (its losses); clip.json says which run they belong to."""

    MARKER = "clip.json"

    def __init__(self, path: Path, signature: str, resume: bool, kept: bool, source: str):
        self.path, self.kept = path, kept
        marker = path / self.MARKER
        if path.exists() and not path.is_dir():
            raise NstkitError(f"frames folder {path} is a file: choose another --frames-dir")
        from ..media.clips import frame_files

        # A folder or glob of input frames: its folder. A video file has no frames on disk to overwrite.
        inputs = None if frame_files(source) is None else (Path(source) if Path(source).is_dir() else Path(source).parent)
        if inputs is not None and (path.resolve() == inputs.resolve() or inputs.resolve() in path.resolve().parents):
            raise NstkitError(f"frames folder {path} is where the input frames are: choose another --frames-dir, "
                              "so no input frame is overwritten")
        if path.is_dir() and any(path.iterdir()) and not marker.exists():
            raise NstkitError(f"frames folder {path} holds files that are not an nstkit clip's: choose an empty "
                              "or new --frames-dir (nothing there is overwritten)")
        finished = sorted(path.glob("frame_*.json")) if path.is_dir() else []
        if finished and not resume:
            raise NstkitError(f"{path} holds {len(finished)} finished frame(s) of an earlier run: --resume to "
                              "continue it, or choose another --frames-dir (nothing there is overwritten)")
        if finished:
            try:
                made_with = json.loads(marker.read_text()).get("signature")
            except (OSError, ValueError, AttributeError):
                made_with = None
            if made_with != signature:
                raise NstkitError(f"the frames in {path} were made with other settings or inputs (or its {self.MARKER} "
                                  "is damaged): rerun with those, or choose another --frames-dir")
        path.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"signature": signature}) + "\n")

    def name(self, index: int) -> str:
        return f"frame_{index + 1:05d}"

    def done(self, index: int) -> bool:
        return all((self.path / f"{self.name(index)}{suffix}").exists() for suffix in (".png", ".npy", ".json"))

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        from ..media.images import load_image

        stem = self.path / self.name(index)
        return (load_image(stem.with_suffix(".png"), what="finished frame"), np.load(stem.with_suffix(".npy")),
                json.loads(stem.with_suffix(".json").read_text()))

    def store(self, index: int, image: np.ndarray, unrounded: np.ndarray, facts: dict) -> None:
        from ..core.files import atomic_write
        from ..media.images import save_image

        stem = self.path / self.name(index)
        with atomic_write(stem.with_suffix(".npy")) as handle:
            np.save(handle, unrounded.astype(np.float32))
        save_image(stem.with_suffix(".png"), image)
        with atomic_write(stem.with_suffix(".json"), "w") as handle:  # last: it marks the frame finished
            handle.write(json.dumps(facts) + "\n")

    def remove(self) -> None:
        """The hidden work folder, once the clip is whole: only the files this run wrote, then the folder if empty."""
        if self.kept:
            return
        for path in [*self.path.glob("frame_[0-9][0-9][0-9][0-9][0-9].*"), self.path / self.MARKER]:
            if path.suffix in (".png", ".npy", ".json"):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def stylize_video(source: str | os.PathLike, style: ImageInput, output: str | os.PathLike | None = None,
                  config: StyleConfig | None = None, *, fps: float | None = None,
                  frames_dir: str | os.PathLike | None = None, frame_steps: int = VIDEO_FRAME_STEPS,
                  warm_start: bool = True, resume: bool = False,
                  callbacks: Iterable[Callable[[FrameProgress], Any]] = (),
                  stop_event: threading.Event | None = None, progress: bool | None = None,
                  **options: Any) -> VideoResult:
    """Stylise every frame of ``source`` (a video file, a folder of frames or a glob, or a `clips.Clip` read
    already) with ``style``.

    ``output``: the .mp4 to write (with its record beside it); None returns the frames only (then
    ``frames_dir`` is where finished frames are kept, if given). ``fps``: for frames (default 24); a
    video keeps its own. ``steps`` (an option, as for images) is the first frame's; ``frame_steps`` every
    later frame's. ``warm_start``: start each frame from the previous one warped onto it (else as the
    config says, e.g. the content); ``temporal_weight`` (default `config.VIDEO_TEMPORAL_WEIGHT`; 0: none)
    weighs the temporal loss. Independent frames are ``warm_start=False, temporal_weight=0``. ``progress``: a
    bar over every step of every frame, as in `stylize`.
    """
    from ..core.record import build_record, describe_input, write_record
    from ..media.flow import optical_flow, reliable, warp, warping_error
    from .loop import Compiled, RunStopped, Stage, run_stages
    from .stylize import _prepare

    config = video_config(config, **options)
    _check(config)
    if isinstance(frame_steps, bool) or not isinstance(frame_steps, int) or frame_steps < 1:
        raise NstkitError(f"frame_steps must be a whole number >= 1, got {frame_steps!r}")
    given = source.source if isinstance(source, Clip) else source
    output = check_video_output(output, inputs=(given,)) if output is not None else None
    clip = source if isinstance(source, Clip) else read_clip(source, fps=fps, max_dim=config.max_dim)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    style_inputs = [describe_input(s) for s in styles]
    frames_sha256 = signature_of_frames(clip)  # hashed once: the frames folder's signature and the record's
    signature = _signature(config, frames_sha256, style_inputs, frame_steps, warm_start)
    folder_path = (Path(frames_dir) if frames_dir is not None else
                   (output.with_name(f".{output.stem}.frames") if output is not None else None))
    folder = (_FramesFolder(folder_path, signature, resume, kept=frames_dir is not None, source=clip.source)
              if folder_path else None)

    count = len(clip.frames)
    plan = [config.steps] + [frame_steps] * (count - 1)
    stop_event = stop_event or threading.Event()
    compiled = Compiled()
    outputs: list[np.ndarray] = []
    facts: list[dict] = []
    started = time.perf_counter()

    def run_frames() -> bool:
        """Stylise the frames not finished yet, in order; True if something stopped it."""
        unrounded_previous = None
        for index, frame in enumerate(clip.frames):
            if folder is not None and folder.done(index):
                image, unrounded_previous, frame_facts = folder.load(index)
                outputs.append(image)
                facts.append({**frame_facts, "resumed": True})
                continue
            if stop_event.is_set():
                return True
            member = _prepare(frame, styles if len(styles) > 1 else styles[0], config.replace(steps=plan[index]),
                              video=True)
            flows = None
            if index > 0:
                backward = optical_flow(frame, clip.frames[index - 1])  # where frame t's pixels were in t-1
                mask = reliable(backward, optical_flow(clip.frames[index - 1], frame))
                warped = warp(unrounded_previous, backward)
                flows = (backward, mask)
                if warm_start:
                    member.init_rgb = warped
                if config.temporal_weight:
                    member.previous = (warped, mask)
            elif config.temporal_weight:  # the first frame has no past: its term reads 0, compiled as the rest's
                member.previous = (np.zeros_like(member.content_rgb),
                                   np.zeros(member.content_rgb.shape[:2], np.float32))
            kept_best: list[np.ndarray] = []  # the unrounded best image, before the colour mode's finish
            finish = member.finish
            member.finish = lambda best, finish=finish: (kept_best.append(best), finish(best))[1]
            done_before = sum(plan[:index])

            def report(progress, index=index, done_before=done_before):
                for callback in callbacks:
                    callback(FrameProgress(index, count, done_before + progress.step, sum(plan), progress.losses,
                                           time.perf_counter() - started))

            try:
                result = run_stages([member], [Stage(tuple(member.content_rgb.shape[:2]), plan[index], "image")],
                                    [report], stop_event, None, compiled)[0]
            except RunStopped:
                return True
            if result.stopped_early:  # its steps were cut short: not a finished frame
                return True
            # Flicker: how far this output is from the previous one warped onto it, where the flow holds.
            error = warping_error(result.image, outputs[-1], *flows) if flows is not None else None
            frame_facts = {"frame": index + 1, "steps": plan[index], "seconds": result.record["wall_time_s"],
                           "start_loss": result.history["total"][0],  # the loss of its start image
                           "final_losses": result.record["final_losses"], "step_traces": result.record["step_traces"],
                           "warping_error": error}
            unrounded_previous = kept_best[0]
            outputs.append(result.image)
            facts.append(frame_facts)
            if folder is not None:
                folder.store(index, result.image, unrounded_previous, frame_facts)
        return False

    with progress_bar(progress) as bar:
        if bar is not None:
            callbacks = [*callbacks, bar]
        try:
            stopped = run_frames()
        except KeyboardInterrupt:  # between two frames' runs (a run's own steps stop on the signal themselves)
            stopped = True
    record = build_record(
        kind="video", config=config.to_dict(), frame_steps=frame_steps, warm_start=warm_start, flow=FLOW_METHOD,
        inputs={"source": clip.source, "frames_sha256": frames_sha256, "styles": style_inputs},
        fps=clip.fps, size=list(clip.size), frames_planned=count, frames_done=len(outputs),
        stopped_early=stopped, seconds_per_frame=_seconds_per_frame(facts), frames=facts,
        compiled_steps=compiled.built,  # 1: every frame this process ran stepped one compiled function
        weights=vars(compiled.objective.weights_info) if compiled.objective is not None else None)
    path = None
    if output is not None and outputs:
        path = write_mp4(output, outputs, clip.fps)
        write_record(path, record)
    if folder is not None and not stopped and len(outputs) == count:
        folder.remove()
    return VideoResult(outputs, clip.fps, record, path, stopped_early=stopped)


def signature_of_frames(clip: Clip) -> str:
    hashed = hashlib.sha256()
    for frame in clip.frames:
        hashed.update(np.ascontiguousarray(frame).tobytes())
    return hashed.hexdigest()


def _seconds_per_frame(facts: list[dict]) -> dict[str, float | None]:
    """The first frame's seconds (it builds and compiles) and the median of the others'."""
    ran = [fact for fact in facts if not fact.get("resumed")]
    first = next((fact["seconds"] for fact in ran if fact["frame"] == 1), None)
    later = [fact["seconds"] for fact in ran if fact["frame"] > 1]
    return {"first": first, "later_median": float(np.median(later)) if later else None}
