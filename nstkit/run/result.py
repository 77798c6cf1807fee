"""What a run gives back: `Progress` after each step (for callbacks), the `Result` at the end, and the two
ways a run can end without its result where it was asked for (`RunStopped`, `OutputNotSaved`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from ..core.config import StyleConfig
from ..core.errors import NstkitError
from ..core.files import reason, rescue_paths
from ..core.record import RunRecord, record_path, write_record
from ..media.images import Encoding, deprocess, save_image, to_uint8

if TYPE_CHECKING:
    from .schedule import Stage
    from .state import RunState


class RunStopped(NstkitError):
    """Stopped before the first step: no image was computed, so there is none to save."""

    exit_code = 130  # as Ctrl-C (143 when SIGTERM stopped it): an interruption, not a usage error


class OutputNotSaved(NstkitError):
    """An output could not be written where asked; it was saved elsewhere (``saved_to``), or nowhere."""

    exit_code = 74  # EX_IOERR (sysexits.h): the result exists, but not where it was asked for

    def __init__(self, message: str, saved_to: Path | None = None):
        super().__init__(message)
        self.saved_to = saved_to


@dataclass
class Progress:
    """What a callback sees after each step. ``losses`` are the weighted terms by name; they sum to ``total``."""

    step: int  # steps so far, over all stages
    steps: int  # steps planned, over all stages
    losses: dict[str, float]
    best_loss: float
    elapsed: float
    member: int = 0  # which image of a batch (`stylize_batch`); always 0 for `stylize`
    stage: int = 0  # index into the schedule
    _state: "RunState" = field(default=None, repr=False)
    stage_step: int = 0  # steps so far in this stage

    @property
    def weights(self) -> dict[str, Any]:
        """Which backbone weights this run uses (for snapshot records and figure captions)."""
        return vars(self._state.objective.weights_info)

    def image(self, as_float: bool = False) -> np.ndarray:
        """The current image as uint8 RGB, or unrounded float RGB (copies from the device: call it when needed)."""
        rgb = deprocess(self._state.param.image()[self.member].numpy())
        return rgb if as_float else to_uint8(rgb)

    def best_image(self, as_float: bool = False) -> np.ndarray:
        """The best image so far (of this stage), uint8 RGB or unrounded float RGB."""
        rgb = deprocess(self._state.best.image[self.member].numpy())
        return rgb if as_float else to_uint8(rgb)

    def stop(self) -> None:
        """Ask the loop to stop after this step; the best image so far is still returned."""
        self._state.stop_event.set()

    @property
    def schedule(self) -> list[Stage]:
        """The run's stages (sizes and steps): what a time estimate needs to look ahead."""
        return self._state.stages

    @property
    def compiled_step(self):
        """The stage's step as one `tf.function`, for tools that read its graph (FLOP counts in `benchmarks/`).

        None in a tiled stage, whose step is a Python loop over compiled windows.
        """
        return self._state.source.compiled_step


Callback = Callable[[Progress], Any]


@dataclass
class Result:
    """The best image (uint8 RGB), the per-step loss history by term, the resolved config and the run record."""

    image: np.ndarray
    history: dict[str, list[float]]
    config: StyleConfig
    record: RunRecord  # reads as a mapping too: record["best_step"]
    float_image: np.ndarray | None = field(default=None, repr=False)  # unrounded RGB: what 16-bit outputs write
    # The best image as optimised, before the colour mode's finish (`preserve_color`): what a video's next frame
    # starts from, warped.
    best_rgb: np.ndarray | None = field(default=None, repr=False)

    @property
    def stopped_early(self) -> bool:
        return bool(self.record.get("stopped_early"))

    @property
    def no_improvement(self) -> str | None:
        """One line when no step beat the start image (the output is then the start), with what to try; else None."""
        record = self.record
        stages = record["stages"]
        best = record["best_stage"]
        started_at = sum(stage["steps_run"] for stage in stages[:best])  # updates before the best stage began
        if not stages or stages[best]["steps_run"] == 0 or record["best_step"] != started_at:
            return None
        config = record["config"]
        lbfgs_fits = not (config.get("jitter") or config.get("tile_size"))  # what L-BFGS refuses
        tries = ("more --steps" if config.get("optimizer") in ("lbfgs", "lbfgsb") else
                 f"a lower --lr than {config['learning_rate']:g} (e.g. a quarter), --warmup-steps 10, more --steps"
                 + (", or --optimizer lbfgs" if lbfgs_fits else ""))
        if best == 0:
            return (f"no step improved on the start image in {record['steps_run']} steps, so the output is the "
                    f"start ({record['config']['init']}): try {tries}")
        return (f"no step of the last stage ({stages[best]['steps_run']} steps at {stages[best]['size'][1]}x"
                f"{stages[best]['size'][0]} px) improved on its start, the earlier stage's image upsampled: try {tries}")

    def save(self, path, *, protect: Iterable = (), encoding: Encoding = Encoding()) -> Path:
        """Save the image (atomic) and its JSON run record beside it (``out.png`` -> ``out.json``).

        If either cannot be written there (a full disk, a read-only or deleted
        folder, a quota), both are saved in the first of `files.rescue_paths`
        that takes them, and `OutputNotSaved` says where: a computed result is never lost.
        ``encoding``: bit depth, JPEG quality and chroma subsampling (`images.Encoding`); the format follows
        the extension (.png, .jpg, .tif, .webp).
        """
        pixels = self.float_image if encoding.bit_depth == 16 and self.float_image is not None else self.image
        return save_with_record(path, pixels, self.record, protect=protect, encoding=encoding)


def save_with_record(path, pixels: np.ndarray, record, *, protect: Iterable = (),
                     encoding: Encoding = Encoding()) -> Path:
    """``pixels`` (uint8, or float for 16 bits) saved atomically at ``path`` and ``record`` beside it, never over
    an input (``protect``, and every path in ``record["inputs"]``); if either cannot be written there, both go to
    the first of `files.rescue_paths` that takes them, and `OutputNotSaved` says where."""
    inputs = tuple(protect) + tuple(_input_paths(record["inputs"]))
    path = Path(path)
    encoding.check(path)  # a wrong extension for the bit depth is the caller's to fix, not a rescue's
    try:
        saved = save_image(path, pixels, protect=inputs, encoding=encoding)
    except (OSError, NstkitError) as error:
        problem = f"could not write {path} ({reason(error)})"
    else:
        try:
            write_record(saved, _with(record, output=str(saved), encoding=encoding.describe(saved)))
            return saved
        except OSError as error:
            problem = f"saved {saved}, but could not write its record {record_path(saved)} ({reason(error)})"
    for place in rescue_paths(path):
        try:
            if place.parent != path.parent:  # a rescue folder; the user's own folder is never re-made
                place.parent.mkdir(parents=True, exist_ok=True)
            rescued = save_image(place, pixels, protect=inputs, encoding=encoding)
            write_record(rescued, _with(record, output=str(rescued), asked_for=str(path),
                                        encoding=encoding.describe(rescued)))
        except (OSError, NstkitError):
            continue
        raise OutputNotSaved(f"{problem}; saved the result to {rescued} and its record beside it", rescued)
    raise OutputNotSaved(f"{problem}, nor anywhere else ({', '.join(str(p.parent) for p in rescue_paths(path))}): "
                         "the image is still in memory (result.image)")


def _input_paths(inputs):
    """Every input path a record names (an entry, or a list of entries, each with "path" if it was a file)."""
    for value in inputs.values():
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, dict) and "path" in entry:
                yield entry["path"]


def _with(record, **fields):
    """``record`` with ``fields`` set, as written beside a saved image (a `RunRecord`, or a plain mapping)."""
    if isinstance(record, RunRecord):
        return dataclasses.replace(record, **fields)
    return {**record, **fields}
