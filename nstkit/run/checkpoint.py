"""Checkpoints: everything a run carries, saved atomically, so a killed run resumes where it was.

A 1000-step run at 512 px takes minutes on a CPU and a tiled 4096 px run
ten or more; a SIGKILL, the OOM killer, a closed laptop lid or a Colab
runtime that disconnects must not cost all of it. A checkpoint holds what
the next step needs and nothing the inputs can give again: the image's
parameters, Adam's moments and step count, the loss scale, the best image,
its loss and step, the updates so far, the stage and the step within it,
the loss history, the record of the stages done, and the gradient source's
own state (the jitter generator; a tiled stage's offset generator and Gram
mismatch). A resumed run takes the steps an uninterrupted one would have,
so on the CPU it gives the same bytes.

The checkpoint names the run it belongs to: the resolved configs, the
inputs' hashes and the schedule (`signature`). Resuming another run's
checkpoint is refused in one line that says what differs.

Written every ``every`` steps (by default about once a minute, once a run
is long enough for a minute to matter: `AUTO_AFTER_SECONDS`), when a run is
stopped, and removed when it finishes. A checkpoint already there is a killed
run's work: a new run neither resumes nor replaces it unless asked
(``resume``, or ``overwrite``; `check_start`).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import NstkitError
from ..core.files import atomic_write, reason

CHECKPOINT_VERSION = 3  # 2: optimizer lbfgs is the in-graph L-BFGS, its state in the checkpoint; 3: float32_finish
AUTO_AFTER_SECONDS = 180.0  # runs predicted to take longer than this checkpoint by default
AUTO_INTERVAL_SECONDS = 60.0  # ... about once a minute
AUTO_DECIDE_AFTER_STEPS = 3  # the step time is measured over this many steps before deciding


def checkpoint_path_for(output: Path) -> Path:
    """``out.png`` -> ``out.png.checkpoint.npz``: where the CLI keeps a run's checkpoint (the whole name, as the
    run record's: runs to ``out.png`` and ``out.tif`` in one folder never share one)."""
    output = Path(output)
    return output.with_name(f"{output.name}.checkpoint.npz")


def signature(configs: list[dict], inputs: list[dict], stages: list[dict]) -> str:
    """A hash of what decides a run's steps: its resolved configs, the inputs' hashes, its schedule."""
    digests = [{name: value.get("sha256") for name, value in member.items()} for member in inputs]
    text = json.dumps({"configs": configs, "inputs": digests, "stages": stages}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_start(path: Path, resume: bool, overwrite: bool) -> None:
    """Before a run: one line if ``resume`` has no checkpoint to continue, or if a checkpoint is there and the
    run would replace it without being asked (a rerun of a killed command without ``resume``)."""
    path = Path(path)
    if resume and overwrite:
        raise NstkitError("resume continues the checkpoint and overwrite replaces it: give one of them")
    if resume and not path.exists():
        raise NstkitError(f"no checkpoint to resume at {path}: the run finished or never wrote one; "
                          "run it again without resume (--resume)")
    if not resume and not overwrite and path.exists():
        raise NstkitError(f"a stopped run's checkpoint is at {path} ({progress_of(path)}): continue it with resume "
                          "(--resume), or start afresh with overwrite (--overwrite), which replaces it")


def progress_of(path: Path) -> str:
    """'step 70 of 150' for the checkpoint at ``path``, read without loading its arrays; 'damaged' if unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
        done, planned = meta["steps_done"], meta.get("steps_planned")
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return "damaged: it cannot be resumed"
    return f"step {done} of {planned}" if planned is not None else f"step {done}"


@dataclass
class Saved:
    """A checkpoint's content: ``meta`` (JSON-able) and ``arrays`` (numpy)."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]


@dataclass
class Checkpointing:
    """Where a run keeps its checkpoint, how often it writes one, and whether it starts from one.

    ``every``: steps between checkpoints; None chooses by the run's length
    (see the module docstring); 0 turns checkpoints off.
    """

    path: Path
    every: int | None = None
    resume: bool = False
    overwrite: bool = False  # replace a checkpoint already there (else the run refuses: `check_start`)
    on_failure: Any = None  # called with one line if a checkpoint cannot be written (the run goes on without)
    seconds_writing: float = field(default=0.0, init=False)  # what checkpoints cost this run
    written: int = field(default=0, init=False)
    failure: str | None = field(default=None, init=False)
    _last_step: int = field(default=0, init=False)

    def __post_init__(self):
        self.path = Path(self.path)
        self.on_stop = self.every != 0  # a stopped run keeps a checkpoint unless checkpoints were turned off
        if self.every is not None and (isinstance(self.every, bool) or not isinstance(self.every, int)
                                       or self.every < 0):
            raise NstkitError(f"checkpoint_every must be a whole number of steps >= 0 (0: none), got {self.every!r}")
        check_start(self.path, self.resume, self.overwrite)
        if self.overwrite and self.path.exists():
            self.remove()  # asked to start afresh: a stop before this run's first checkpoint must not offer the old one

    def decide(self, steps_done: int, steps_left: int, seconds_per_step: float | None) -> None:
        """With ``every`` None, choose it once the step time is known: on for runs longer than a few minutes."""
        if self.every is not None or seconds_per_step is None or steps_done < AUTO_DECIDE_AFTER_STEPS:
            return
        if steps_left * seconds_per_step > AUTO_AFTER_SECONDS:
            self.every = max(1, round(AUTO_INTERVAL_SECONDS / max(seconds_per_step, 1e-6)))
        else:
            self.every = 0

    def due(self, steps_done: int) -> bool:
        return bool(self.every) and steps_done - self._last_step >= self.every

    def write(self, saved: Saved, steps_done: int) -> None:
        """Write atomically: a kill mid-write leaves the previous checkpoint, never half of one.

        A checkpoint that cannot be written (a full disk, say) stops further
        ones and is reported once through ``on_failure``: the run itself goes on.
        """
        started = time.perf_counter()
        meta = {**saved.meta, "checkpoint_version": CHECKPOINT_VERSION}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **saved.arrays)
        try:
            with atomic_write(self.path) as handle:
                handle.write(buffer.getvalue())
        except OSError as error:
            self.every, self.on_stop = 0, False
            self.failure = f"could not write checkpoint {self.path} ({reason(error)}); the run goes on without them"
            if self.on_failure is not None:
                self.on_failure(self.failure)
            return
        self._last_step = steps_done
        self.written += 1
        self.seconds_writing += time.perf_counter() - started

    def read(self, expected_signature: str, configs: list[dict]) -> Saved:
        """The checkpoint to resume from; one line if there is none, or it is another run's."""
        check_start(self.path, resume=True, overwrite=False)  # still there (it was when the run was set up)
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {name: data[name] for name in data.files if name != "meta"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # cut short, corrupted
            why = "not a checkpoint file" if "pickle" in str(error) else str(error) or type(error).__name__
            raise NstkitError(f"checkpoint {self.path} is damaged ({why}): delete it and run again "
                              "without resume") from None
        if meta.get("checkpoint_version") != CHECKPOINT_VERSION:
            raise NstkitError(f"checkpoint {self.path} was written by another nstkit version: delete it and run "
                              "again without resume")
        if meta["signature"] != expected_signature:
            raise NstkitError(f"checkpoint {self.path} is of another run ({_difference(meta, configs)}): "
                              "resume with the same inputs and options, or delete it to start afresh")
        self._last_step = meta["steps_done"]
        return Saved(meta, arrays)

    def remove(self) -> None:
        """Remove a finished run's checkpoint. A folder that refuses (read-only now, gone, a failing disk) keeps
        it, with one warning: the result is not at stake, and a stale checkpoint only refuses a --resume."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            self.failure = f"could not remove checkpoint {self.path} ({reason(error)}): delete it by hand"
            if self.on_failure is not None:
                self.on_failure(self.failure)


def _difference(meta: dict, configs: list[dict]) -> str:
    """What differs between the checkpoint's run and this one, in words."""
    saved = meta.get("configs", [])
    if len(saved) != len(configs):
        return f"{len(saved)} batch members, now {len(configs)}"
    for old, new in zip(saved, configs):
        changed = [name for name in new if old.get(name) != new.get(name)]
        if changed:
            name = changed[0]
            return f"{name} was {old.get(name)!r}, now {new.get(name)!r}"
    return "its input images or its schedule differ"
