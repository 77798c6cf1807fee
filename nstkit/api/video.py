"""Stylise a clip without flicker: Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016).

Each frame optimised on its own lands in another local minimum, so the clip flickers. Here:

- **warm start**: frame t starts from stylised frame t-1 warped onto it by the optical flow of the input
  frames (`flow`: OpenCV's DIS, no weights to download), so it starts near the previous frame's minimum;
  what enters the frame (a pan's new strip) has no past, so it starts as an independent frame would;
- **temporal loss** (``temporal_weight``, `objective.temporal_term`): ||c * (x_t - warp(x_{t-1}))||², with c
  0 at occlusions and motion boundaries (`flow.reliable`), keeps it there where the flow holds;
- **compiled once**: the network, the style targets and the compiled step are built for the first frame
  and reused by every later frame of the clip (`state.Compiled`): a frame costs its steps only;
- **fewer steps after the first frame** (``frame_steps``, default 150, against ``steps`` for the first):
  each later frame starts near its answer.

A long job keeps everything it finished. Each finished frame is a PNG (and, for the warm start, its
unrounded image) in the frames folder (``frames_dir``, else a hidden folder beside the output, removed
once the clip is whole); ``resume=True`` skips them; Ctrl-C, SIGTERM or a ``stop_event`` keeps them and
writes the clip so far. Nothing is lost to a full, read-only or vanished folder: a frame that cannot be kept
on disk is a warning (the clip goes on, in memory), and a clip that cannot be written where asked is
written elsewhere (`files.rescue_paths`) and `OutputNotSaved` says where. The clip's run record (beside the
MP4, `record.record_path`) has the config, the inputs' hashes, s/frame, each frame's losses and the warping
error between consecutive outputs (`flow.warping_error`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import VIDEO_TEMPORAL_WEIGHT, StyleConfig
from ..core.errors import NstkitError, warn
from ..core.files import reason, rescue_paths
from ..core.packs import expand as expand_packs
from ..core.record import record_path
from ..media.clips import Clip, check_video_output, downscaled, read_clip, write_mp4
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
    # The first signal that came (SIGINT, SIGTERM), even one that came while a whole clip was being saved:
    # the CLI's exit status (130, 143).
    stopped_by: str | None = None
    frames_dir: Path | None = None  # where the finished frames are kept (None: no frames folder)


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


FRAME_FACTS = ("frame", "steps", "seconds", "start_loss", "final_losses", "step_traces", "warping_error")


class _FramesFolder:
    """Finished frames on disk: frame_NNNNN.png (the output), .npy (the unrounded image the next frame warps),
    and the PNG's record (`record_path`: frame_NNNNN.png.json; frame_NNNNN.json before 0.2) with its losses;
    clip.json says which run they belong to."""

    MARKER = "clip.json"

    def __init__(self, path: Path, signature: str, resume: bool, kept: bool, source: str):
        self.path, self.kept = path, kept
        self.failure: str | None = None  # why frames stopped being kept here, once one could not be written
        try:
            self._open(signature, resume, source)
        except OSError as error:  # before any work: unreadable, read-only, full
            raise NstkitError(f"frames folder {path} cannot be used ({reason(error)}): choose another --frames-dir "
                              "(or make room there)") from None

    def _open(self, signature: str, resume: bool, source: str) -> None:
        path, marker = self.path, self.path / self.MARKER
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

    def file(self, index: int, suffix: str) -> Path:
        return self.path / f"frame_{index + 1:05d}{suffix}"

    def facts_file(self, index: int) -> Path:
        """The frame's record: frame_NNNNN.png.json, or where nstkit before 0.2 wrote it (frame_NNNNN.json)."""
        current, legacy = record_path(self.file(index, ".png")), self.file(index, ".json")
        return legacy if legacy.exists() and not current.exists() else current

    def done(self, index: int) -> bool:
        return all(path.exists() for path in (self.file(index, ".png"), self.file(index, ".npy"), self.facts_file(index)))

    def check(self, count: int, size: tuple[int, int]) -> None:
        """Every finished frame readable, before any work: a damaged file is one line now, not a traceback later."""
        for index in range(count):
            if self.done(index):
                self.load(index, size)

    def load(self, index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, dict]:
        """A finished frame: its output (uint8), its unrounded image and its facts; `NstkitError` naming a damaged file."""
        from PIL import Image

        png, npy, facts_file = self.file(index, ".png"), self.file(index, ".npy"), self.facts_file(index)
        try:
            with Image.open(png) as pil:
                image = np.asarray(pil.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as error:  # Pillow's ways of saying truncated or not an image
            raise self._damaged(png, f"not a whole image: {reason(error)}") from None
        if image.shape[:2] != tuple(size):
            raise self._damaged(png, f"{image.shape[1]}x{image.shape[0]} px, the clip's frames {size[1]}x{size[0]}")
        try:
            unrounded = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise self._damaged(npy, f"not a whole array: {reason(error)}") from None
        if unrounded.shape != (*size, 3):
            raise self._damaged(npy, f"an array of shape {unrounded.shape}, not the frame's {(*size, 3)}")
        try:
            facts = json.loads(facts_file.read_text())
        except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError too
            raise self._damaged(facts_file, f"not JSON: {reason(error)}") from None
        if not isinstance(facts, dict) or facts.get("frame") != index + 1 or any(key not in facts for key in FRAME_FACTS):
            raise self._damaged(facts_file, f"not frame {index + 1}'s record (it needs {', '.join(FRAME_FACTS)})")
        return image, unrounded, facts

    @staticmethod
    def _damaged(path: Path, what: str) -> NstkitError:
        return NstkitError(f"finished frame file {path} is damaged ({what}): delete it and rerun with --resume (that "
                           "frame is made again), or rerun without --resume into another --frames-dir")

    def store(self, index: int, image: np.ndarray, unrounded: np.ndarray, facts: dict) -> None:
        """Keep a finished frame on disk. One that cannot be written (a full, read-only or vanished folder) is one
        warning; the clip goes on with its frames in memory, and the folder keeps no more frames."""
        from ..core.files import atomic_write
        from ..media.images import save_image

        if self.failure is not None:
            return
        png = self.file(index, ".png")
        try:
            with atomic_write(self.file(index, ".npy")) as handle:
                np.save(handle, unrounded.astype(np.float32))
            save_image(png, image)
            with atomic_write(record_path(png), "w") as handle:  # last: it marks the frame finished
                handle.write(json.dumps(facts) + "\n")
        except (OSError, NstkitError) as error:
            self.failure = f"could not keep frame {index + 1} in {self.path} ({reason(error)})"
            warn(f"{self.failure}: the clip goes on, its later frames in memory only (--resume would make them again)")

    def remove(self) -> None:
        """The hidden work folder, once the clip is whole: only the files this run wrote, then the folder if empty.

        A file that cannot be removed costs a warning, not the clip."""
        if self.kept:
            return
        try:
            for path in [*self.path.glob("frame_[0-9][0-9][0-9][0-9][0-9].*"), self.path / self.MARKER]:
                if path.suffix in (".png", ".npy", ".json"):
                    path.unlink(missing_ok=True)
        except OSError as error:
            warn(f"could not remove the work folder {self.path} ({reason(error)}): the clip is whole; delete the "
                 "folder by hand")
            return
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

    Ctrl-C or SIGTERM (in the main thread) stops after the current step, as a ``stop_event`` does: the clip so
    far is written (``stopped_early``; ``stopped_by`` names the signal). If ``output`` cannot be written (a
    full, read-only or vanished folder), the clip and its record go to the first of `files.rescue_paths` that
    takes them and `run.result.OutputNotSaved` says where, with this `VideoResult` as its ``result``.
    """
    from ..core.record import describe_input
    from ..run.signals import stop_on_signals

    config = video_config(config, **options)
    _check(config)
    if isinstance(frame_steps, bool) or not isinstance(frame_steps, int) or frame_steps < 1:
        raise NstkitError(f"frame_steps must be a whole number >= 1, got {frame_steps!r}")
    given = source.source if isinstance(source, Clip) else source
    output = check_video_output(output, inputs=(given,)) if output is not None else None
    clip = downscaled(source, config.max_dim) if isinstance(source, Clip) else read_clip(source, fps=fps,
                                                                                         max_dim=config.max_dim)
    styles = expand_packs(list(style) if isinstance(style, (list, tuple)) else [style])  # a pack read once
    style_inputs = [describe_input(s) for s in styles]
    frames_sha256 = signature_of_frames(clip)  # hashed once: the frames folder's signature and the record's
    signature = _signature(config, frames_sha256, style_inputs, frame_steps, warm_start)
    folder_path = (Path(frames_dir) if frames_dir is not None else
                   (output.with_name(f".{output.stem}.frames") if output is not None else None))
    folder = (_FramesFolder(folder_path, signature, resume, kept=frames_dir is not None, source=clip.source)
              if folder_path else None)
    if folder is not None and resume:
        folder.check(len(clip.frames), clip.size)  # a damaged frame file: one line, before any work
    run = _ClipRun(clip, styles, config, frame_steps, warm_start, folder, list(callbacks),
                   stop_event or threading.Event())
    signals: list[str] = []  # those that came between frames' runs or while saving (a run counts its own)
    # A signal between frames stops the clip as one during a frame's run does, and one while the clip is saved
    # waits for the save: the finished frames are never lost to it.
    with stop_on_signals(run.stop_event, signals):
        with progress_bar(progress) as bar:
            if bar is not None:
                run.callbacks.append(bar)
            try:
                stopped = run.frames()
            except KeyboardInterrupt:  # a second Ctrl-C: stop now
                stopped = True
        inputs = {"source": clip.source, "frames_sha256": frames_sha256, "styles": style_inputs}
        record = run.record(stopped, inputs, (run.stopped_by or next(iter(signals), None)) if stopped else None)
        result = VideoResult(run.outputs, clip.fps, record, None, stopped_early=stopped,
                             frames_dir=folder.path if folder is not None else None)
        if output is not None and run.outputs:
            kept = f"; the finished frames are kept in {folder.path}" if folder is not None else ""
            result.path = _save_clip(output, result, kept)
        if folder is not None and not stopped and len(run.outputs) == len(clip.frames):
            folder.remove()
        result.stopped_by = run.stopped_by or next(iter(signals), None)
    return result


def _save_clip(output: Path, result: VideoResult, kept: str) -> Path:
    """The MP4 and its record at ``output``; if its folder cannot take them (full, read-only, gone), both in the
    first of `files.rescue_paths` that does, and `OutputNotSaved` says where: a stylised clip is never lost.

    ``kept``: what the message adds about the frames folder."""
    from ..core.record import write_record
    from ..run.result import OutputNotSaved

    try:
        path = write_mp4(output, result.frames, result.fps)
    except OSError as error:
        problem = f"could not write {output} ({reason(error)})"
    else:
        try:
            write_record(path, result.record)
            return path
        except OSError as error:
            problem = f"wrote {path}, but could not write its record {record_path(path)} ({reason(error)})"
    for place in rescue_paths(output):
        try:
            if place.parent != output.parent:  # a rescue folder; the user's own folder is never re-made
                place.parent.mkdir(parents=True, exist_ok=True)
            rescued = write_mp4(place, result.frames, result.fps)
            write_record(rescued, {**result.record, "output": str(rescued), "asked_for": str(output)})
        except OSError:
            continue
        result.path = rescued
        lost = OutputNotSaved(f"{problem}; saved the clip to {rescued} and its record beside it{kept}", rescued)
        break
    else:
        lost = OutputNotSaved(f"{problem}, nor anywhere else ({', '.join(str(p.parent) for p in rescue_paths(output))})"
                              f"{kept or ': the frames are in memory only (result.frames)'}")
    lost.result = result  # the frames, the record and where the clip went, for a caller in Python
    raise lost


class _ClipRun:
    """One clip's frames, in order: each warm-started and tied to the one before, on one compiled step."""

    def __init__(self, clip: Clip, styles: list, config: StyleConfig, frame_steps: int, warm_start: bool,
                 folder: _FramesFolder | None, callbacks: list, stop_event: threading.Event):
        from ..run.state import Compiled

        self.clip, self.styles, self.config, self.frame_steps = clip, styles, config, frame_steps
        self.warm_start, self.folder, self.callbacks, self.stop_event = warm_start, folder, callbacks, stop_event
        self.plan = [config.steps] + [frame_steps] * (len(clip.frames) - 1)
        self.compiled = Compiled()
        self.stopped_by: str | None = None  # the signal that stopped a frame's run
        self.outputs: list[np.ndarray] = []
        self.facts: list[dict] = []
        self.started = time.perf_counter()

    def frames(self) -> bool:
        """Stylise the frames not finished yet, in order; True if something stopped it."""
        from ..run.result import RunStopped
        from ..run.signals import exit_status

        previous = None  # the previous frame's best image, unrounded: what this frame warps
        for index, frame in enumerate(self.clip.frames):
            # Once the folder failed a write it is not read either: a frame is made again rather than lost to it.
            if self.folder is not None and self.folder.failure is None and self.folder.done(index):
                image, previous, frame_facts = self.folder.load(index, self.clip.size)
                self.outputs.append(image)
                self.facts.append({**frame_facts, "resumed": True})
                continue
            if self.stop_event.is_set():
                return True
            member, flows = self.member(index, frame, previous)
            try:
                result = self.run(index, member)
            except RunStopped as stopped:
                # Its status is 143 only when SIGTERM stopped it (130 is also a stop_event's, and the CLI's default).
                self.stopped_by = "SIGTERM" if stopped.exit_code == exit_status("SIGTERM") else None
                return True
            if result.stopped_early:  # its steps were cut short: not a finished frame
                self.stopped_by = result.record.get("stopped_by")
                return True
            previous = result.best_rgb  # unrounded, before the colour mode's finish
            self.keep(index, result, flows, previous)
        return False

    def member(self, index: int, frame: np.ndarray, previous: np.ndarray | None):
        """Frame ``index`` as a run's member: the previous frame warped onto it as its start and its temporal
        target, where the optical flow holds; (member, (backward flow, reliable mask) or None)."""
        from ..media.flow import optical_flow, reliable, warp
        from .stylize import prepare

        styles = self.styles if len(self.styles) > 1 else self.styles[0]
        member = prepare(frame, styles, self.config.replace(steps=self.plan[index]), video=True)
        if index == 0:
            if self.config.temporal_weight:  # the first frame has no past: its term reads 0, compiled as the rest's
                member.previous = (np.zeros_like(member.content_rgb),
                                   np.zeros(member.content_rgb.shape[:2], np.float32))
            return member, None
        before = self.clip.frames[index - 1]
        backward = optical_flow(frame, before)  # where frame t's pixels were in t-1
        mask = reliable(backward, optical_flow(before, frame))  # 0 where a pixel enters the frame, too
        # What enters the frame has no past: it starts as an independent frame would, from its own start image,
        # not from the previous frame's edge smeared across it (streaks, issue #24). The temporal loss ignores it.
        warped = warp(previous, backward, fallback=member.init_rgb)
        if self.warm_start:
            member.init_rgb = warped
        if self.config.temporal_weight:
            member.previous = (warped, mask)
        return member, (backward, mask)

    def run(self, index: int, member):
        """One frame's run, on the clip's compiled step; its progress reported over the whole clip."""
        from ..run.loop import run_stages
        from ..run.schedule import Stage

        done_before, count, planned = sum(self.plan[:index]), len(self.clip.frames), sum(self.plan)

        def report(progress):
            for callback in self.callbacks:
                callback(FrameProgress(index, count, done_before + progress.step, planned, progress.losses,
                                       time.perf_counter() - self.started))

        stage = Stage(tuple(member.content_rgb.shape[:2]), self.plan[index], "image")
        return run_stages([member], [stage], [report], self.stop_event, None, self.compiled)[0]

    def keep(self, index: int, result, flows, unrounded: np.ndarray) -> None:
        """A finished frame: its output and facts, and on disk if the clip keeps a frames folder."""
        from ..media.flow import warping_error

        # Flicker: how far this output is from the previous one warped onto it, where the flow holds.
        error = warping_error(result.image, self.outputs[-1], *flows) if flows is not None else None
        frame_facts = {"frame": index + 1, "steps": self.plan[index], "seconds": result.record["wall_time_s"],
                       "start_loss": result.history["total"][0],  # the loss of its start image
                       "final_losses": result.record["final_losses"], "step_traces": result.record["step_traces"],
                       "warping_error": error}
        self.outputs.append(result.image)
        self.facts.append(frame_facts)
        if self.folder is not None:
            self.folder.store(index, result.image, unrounded, frame_facts)

    def record(self, stopped: bool, inputs: dict, stopped_by: str | None) -> dict[str, Any]:
        """The clip's run record (``stopped_by``: the signal that stopped it, if one did)."""
        from ..core.record import build_record

        objective = self.compiled.objective
        return build_record(
            kind="video", config=self.config.to_dict(), frame_steps=self.frame_steps, warm_start=self.warm_start,
            flow=FLOW_METHOD, inputs=inputs, fps=self.clip.fps, size=list(self.clip.size),
            frames_planned=len(self.clip.frames), frames_done=len(self.outputs), stopped_early=stopped,
            **({"stopped_by": stopped_by} if stopped_by else {}),
            seconds_per_frame=_seconds_per_frame(self.facts), frames=self.facts,
            compiled_steps=self.compiled.built,  # 1: every frame this process ran stepped one compiled function
            weights=vars(objective.weights_info) if objective is not None else None)


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
