"""The run engine: one loop over a schedule of stages, for one image or a batch, whole or in tiles.

::

    stages:   (64 px, 500 steps, image) ──> (128 px, 1000 steps, image) ──> (4096 px, 100 steps, tiles)
                       │  image, Adam's moments and step count carried, resized to the next stage
                       ▼
    each step:  source.step() ──> (B, 2 + T) losses ──> history, callbacks, stop?  ──> best image kept per member

A run is a list of `Stage` s: a size, a number of steps and a gradient source
(`sources.SOURCES`: the whole image's compiled step, or tiled windows).
`RunState` holds what carries from step to step and stage to stage: the image
parameterisation, the optimiser, the best image, the history. Coarse-to-fine
levels and the tiled runs' one-pass start are stages of one schedule, so the
optimiser's state carries across them (crowsonkb/style-transfer-pytorch
carries Adam's between scales) instead of being thrown away.

Ctrl-C / SIGTERM (in the main thread) or a ``stop_event`` end the run after
the current step (within one window in a tiled stage); the best image so far
is returned. Stopped before the first step, there is nothing to return:
`RunStopped` says so.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from ..core.catalog import MIN_IMAGE_SIDE
from ..core.config import StyleConfig
from ..core.errors import NstkitError
from ..core.files import reason, rescue_paths
from ..core.record import record_path, write_record
from ..media.images import Encoding, deprocess, resize_to, save_image, to_uint8
from ..objective.terms import HISTORY_KEYS, Objective, StageInputs

if TYPE_CHECKING:
    from .checkpoint import Checkpointing


class RunStopped(NstkitError):
    """Stopped before the first step: no image was computed, so there is none to save."""

    exit_code = 130  # as Ctrl-C (143 when SIGTERM stopped it): an interruption, not a usage error


class OutputNotSaved(NstkitError):
    """An output could not be written where asked; it was saved elsewhere (``saved_to``), or nowhere."""

    exit_code = 74  # EX_IOERR (sysexits.h): the result exists, but not where it was asked for

    def __init__(self, message: str, saved_to: Path | None = None):
        super().__init__(message)
        self.saved_to = saved_to


@dataclass(frozen=True)
class Stage:
    """One part of a run's schedule: ``steps`` steps at ``size`` (height, width), gradients from ``source``."""

    size: tuple[int, int]
    steps: int
    source: str = "image"  # a key of `sources.SOURCES`
    scale: float = 1.0  # the size as a share of the output's; the styles are scaled by it too
    tile_size: int | None = None  # tiles only
    tile_overlap: int = 0
    style_max_dim: int | None = None  # the styles downscaled (never upscaled) to this long side; None: as the image


@dataclass
class Member:
    """One image being optimised: its config and its inputs, loaded and prepared for the network (full size)."""

    config: StyleConfig
    inputs: dict[str, Any]  # the run record's description of the inputs (paths, hashes)
    blend: list[float]
    content_rgb: np.ndarray  # what the network sees (grey in luminance mode)
    style_rgbs: list[np.ndarray]
    init_rgb: np.ndarray
    finish: Callable[[np.ndarray], np.ndarray]  # the best image (float RGB) -> the output (float RGB, unrounded)
    extra: dict[str, Any] = field(default_factory=dict)  # more for its run record (e.g. the preset's overrides)
    regions: Any = None  # `masks.Regions` at the content's size, or None: the style everywhere
    # Video: (the previous stylised frame warped onto this one, float RGB (H, W, 3); where that warp holds,
    # (H, W) of 0 and 1), for the temporal term. None for images.
    previous: tuple[np.ndarray, np.ndarray] | None = None


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
        rgb = deprocess(self._state.best_image[self.member].numpy())
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
    record: dict[str, Any]
    float_image: np.ndarray | None = field(default=None, repr=False)  # unrounded RGB: what 16-bit outputs write

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
        tries = ("more --steps" if config.get("optimizer") == "lbfgs" else
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
        inputs = tuple(protect) + tuple(v["path"] for v in self.record["inputs"].values() if "path" in v)
        path = Path(path)
        encoding.check(path)  # a wrong extension for the bit depth is the caller's to fix, not a rescue's
        pixels = self.float_image if encoding.bit_depth == 16 and self.float_image is not None else self.image
        try:
            saved = save_image(path, pixels, protect=inputs, encoding=encoding)
        except (OSError, NstkitError) as error:
            problem = f"could not write {path} ({reason(error)})"
        else:
            try:
                write_record(saved, {**self.record, "output": str(saved), "encoding": encoding.describe(saved)})
                return saved
            except OSError as error:
                problem = f"saved {saved}, but could not write its record {record_path(saved)} ({reason(error)})"
        for place in rescue_paths(path):
            try:
                if place.parent != path.parent:  # a rescue folder; the user's own folder is never re-made
                    place.parent.mkdir(parents=True, exist_ok=True)
                rescued = save_image(place, pixels, protect=inputs, encoding=encoding)
                write_record(rescued, {**self.record, "output": str(rescued), "asked_for": str(path),
                                       "encoding": encoding.describe(rescued)})
            except (OSError, NstkitError):
                continue
            raise OutputNotSaved(f"{problem}; saved the result to {rescued} and its record beside it", rescued)
        raise OutputNotSaved(f"{problem}, nor anywhere else ({', '.join(str(p.parent) for p in rescue_paths(path))}): "
                             "the image is still in memory (result.image)")


class RunState:
    """What a run carries from step to step and from stage to stage, for B members at once.

    Members share the network, the optimiser settings and the image size;
    each has its own loss weights, targets, image and best-so-far. The step
    sums the members' losses: their gradients never mix, and Adam is
    elementwise, so each member moves exactly as it would alone.
    """

    def __init__(self, configs: Sequence[StyleConfig], objective: Objective, stop_event: threading.Event):
        import tensorflow as tf

        from ..network.device import default_jit_compile
        from ..optim.optimizers import LossScale

        config = configs[0]
        self.configs, self.objective, self.stop_event = list(configs), objective, stop_event
        self.jit_compile = default_jit_compile() if config.jit_compile is None else config.jit_compile
        self.loss_scale = LossScale() if config.precision == "float16" else None
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")  # over all stages
        self.param = self.optimizer = self.source = None
        self.gradient_area = 0
        self.best_image = self.best_loss = self.best_step = self.average = None
        self.stages: list[Stage] = []

    def enter(self, start_rgbs: list[np.ndarray], gradient_area: int) -> None:
        """Start a stage from ``start_rgbs`` (float RGB at the stage's size); carry the optimiser's state over.

        ``gradient_area``: the pixels the stage's gradients are a mean over (its source's `gradient_area`).
        """
        import tensorflow as tf

        from ..optim.optimizers import Adam
        from ..optim.param import FourierImage, PixelImage

        config = self.configs[0]
        init = np.stack([np.asarray(rgb, np.float32) for rgb in start_rgbs])
        self.param = FourierImage(init[0]) if config.param == "fourier" else PixelImage(init)
        if config.optimizer == "lbfgs":
            self.optimizer = None  # scipy's L-BFGS-B, driven by the stage's source, starts afresh each stage
        elif self.optimizer is None:
            self.optimizer = Adam(self.param.variable, float(config.learning_rate), float(config.beta_1),
                                  float(config.beta_2), float(config.epsilon), schedules=self.learning_rates())
        else:
            # A spectrum's coefficients do not resize like pixels: a Fourier stage starts its moments afresh.
            resize = _resize_moments if config.param == "pixel" else None
            self.optimizer = self.optimizer.resized(self.param.variable, resize, self.gradient_area / gradient_area)
        self.gradient_area = gradient_area
        self.best_image = tf.Variable(self.param.image(), name="best_image", trainable=False)
        # The moving average of the image (``ema``) restarts at each stage's start image.
        self.average = tf.Variable(self.param.image(), name="average", trainable=False) if config.ema else None
        self.best_loss = tf.Variable(np.full(len(self.configs), np.inf, np.float32), trainable=False)
        # Until an image of this stage is scored, the best is its start: the image after the updates so far.
        self.best_step = tf.Variable(np.full(len(self.configs), int(self.updates.numpy()), np.int64), trainable=False)

    def restart(self, start_rgbs: list[np.ndarray]) -> None:
        """Start again from ``start_rgbs`` at the size of the stage before, in the same variables (`Compiled`):
        a fresh optimiser, best image and update count, as if this were a new run's only stage."""
        from ..optim.param import FourierImage, PixelImage

        init = np.stack([np.asarray(rgb, np.float32) for rgb in start_rgbs])
        fresh = FourierImage(init[0]) if self.configs[0].param == "fourier" else PixelImage(init)
        self.param.variable.assign(fresh.variable)
        if self.optimizer is not None:
            self.optimizer.restart()
        if self.loss_scale is not None:  # float16: each frame starts at the initial scale, as a resumed one would
            self.loss_scale.restart()
        self.updates.assign(0)
        self.best_image.assign(self.param.image())
        if self.average is not None:
            self.average.assign(self.param.image())
        self.best_loss.assign(np.full(len(self.configs), np.inf, np.float32))
        self.best_step.assign(np.zeros(len(self.configs), np.int64))

    def learning_rates(self):
        """Each member's learning-rate schedule (`optim.LearningRate`) over all the run's stages' steps."""
        from ..optim.optimizers import LearningRate

        total = sum(stage.steps for stage in self.stages)
        return [LearningRate(float(config.learning_rate), config.warmup_steps, float(config.lr_decay), total)
                for config in self.configs]

    def average_in(self) -> None:
        """Fold the image after this update into its moving average (inside the compiled step), if ``ema``."""
        if self.average is not None:
            decay = float(self.configs[0].ema)
            self.average.assign(decay * self.average + (1.0 - decay) * self.param.image())

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays): this state as a checkpoint holds it (`checkpoint`)."""
        arrays = {"param": self.param.variable.numpy(), "best_image": self.best_image.numpy(),
                  "best_loss": self.best_loss.numpy(), "best_step": self.best_step.numpy()}
        meta = {"updates": int(self.updates.numpy()), "gradient_area": self.gradient_area}
        if self.optimizer is not None:
            arrays.update(adam_m=self.optimizer.m.numpy(), adam_v=self.optimizer.v.numpy())
            meta["adam_step"] = int(self.optimizer.step.numpy())
        if self.average is not None:
            arrays["average"] = self.average.numpy()
        if self.loss_scale is not None:
            meta["loss_scale"] = [float(self.loss_scale.scale.numpy()), int(self.loss_scale.clean.numpy())]
        return meta, arrays

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Enter a stage as a checkpoint left it: the exact parameters, moments, best image and counters."""
        import tensorflow as tf

        from ..optim.optimizers import Adam
        from ..optim.param import FourierImage, PixelImage

        config = self.configs[0]
        parameters = arrays["param"]
        if config.param == "fourier":
            self.param = FourierImage(np.zeros((*arrays["best_image"].shape[1:3], 3), np.float32))
        else:
            self.param = PixelImage(np.zeros(arrays["best_image"].shape[1:], np.float32)[None].repeat(
                len(self.configs), axis=0))
        self.param.variable.assign(parameters)
        self.optimizer = None if config.optimizer == "lbfgs" else Adam(
            self.param.variable, float(config.learning_rate), float(config.beta_1), float(config.beta_2),
            float(config.epsilon), step=meta["adam_step"], moments=(arrays["adam_m"], arrays["adam_v"]),
            schedules=self.learning_rates())
        self.average = tf.Variable(arrays["average"], name="average", trainable=False) if config.ema else None
        self.updates.assign(meta["updates"])
        self.gradient_area = meta["gradient_area"]
        if self.loss_scale is not None:
            self.loss_scale.scale.assign(meta["loss_scale"][0])
            self.loss_scale.clean.assign(meta["loss_scale"][1])
        self.best_image = tf.Variable(arrays["best_image"], name="best_image", trainable=False)
        self.best_loss = tf.Variable(arrays["best_loss"], trainable=False)
        self.best_step = tf.Variable(arrays["best_step"], trainable=False)

    def keep_if_best(self, image, totals) -> None:
        """Per member, keep ``image`` if its loss beats the best so far (TF ops, inside a compiled step)."""
        import tensorflow as tf

        improved = totals < self.best_loss
        self.best_image.assign(kept_images(improved, image, self.best_image))
        self.best_step.assign(tf.where(improved, self.updates, self.best_step))
        self.best_loss.assign(tf.minimum(totals, self.best_loss))

    def best_rgbs(self) -> list[np.ndarray]:
        return [deprocess(image) for image in self.best_image.numpy()]


def kept_images(improved, images, best_images):
    """Per batch member, its image where its loss improved, else its best so far.

    Nearly every step improves every member, and then a plain copy is 10x
    cheaper than a select that broadcasts the per-member mask (4 ms a step at
    512 px on 2 CPU cores).
    """
    import tensorflow as tf

    return tf.cond(tf.reduce_all(improved), lambda: tf.identity(images),
                   lambda: tf.where(improved[:, None, None, None], images, best_images))


def _resize_moments(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(B, H, W, C) -> ``shape``, bilinear: smooth, and never negative where the input is not."""
    import tensorflow as tf

    return tf.image.resize(array, shape[1:3], method="bilinear").numpy()


@dataclass
class Compiled:
    """What consecutive runs keep when they are compiled once (video: every frame of one size).

    Pass one to `run_stages` for each run: the first builds the network, the state and each stage's
    compiled step, with the targets in TF variables; the next runs whose stages have the same sizes
    assign their own start image and targets into those variables and step the same compiled function,
    so nothing is traced again (the record's ``step_traces`` stays 1).
    """

    objective: Objective | None = None
    state: "RunState | None" = None
    stages: dict[int, tuple[tuple, Any, Any]] = field(default_factory=dict)  # index -> (size and kind, source, targets)
    built: int = 0  # compiled steps built so far: one per stage size, whatever the number of runs


def _as_variables(targets):
    """``targets`` with every tensor in it held in a TF variable, so a compiled step reads whatever is assigned."""
    import tensorflow as tf

    if isinstance(targets, dict):
        return {key: _as_variables(value) for key, value in targets.items()}
    if isinstance(targets, (list, tuple)):
        return type(targets)(_as_variables(value) for value in targets)
    return tf.Variable(targets, trainable=False) if isinstance(targets, tf.Tensor) else targets


def _assign(variables, targets) -> None:
    """Assign ``targets`` into the variables `_as_variables` made for a structure of the same shape."""
    if isinstance(variables, dict):
        for key in variables:
            _assign(variables[key], targets[key])
    elif isinstance(variables, (list, tuple)):
        for variable, value in zip(variables, targets):
            _assign(variable, value)
    elif hasattr(variables, "assign"):
        variables.assign(targets)


def run_stages(members: Sequence[Member], stages: Sequence[Stage], callbacks: Iterable[Callback] = (),
               stop_event: threading.Event | None = None, checkpoint: "Checkpointing | None" = None,
               compiled: Compiled | None = None) -> list[Result]:
    """Optimise every member through ``stages``; one `Result` per member.

    ``checkpoint`` (`checkpoint.Checkpointing`): where to keep checkpoints, how
    often, and whether to resume from the one there. ``compiled``: reuse the
    network and the compiled steps of the runs before, of the same sizes (`Compiled`).
    """
    import dataclasses

    from ..core.record import build_record
    from ..network.device import device_name
    from ..network.quiet import import_tensorflow_quietly
    from .checkpoint import signature
    from .gradients import SOURCES

    import_tensorflow_quietly()
    quiet_retracing_warnings()
    callbacks = list(callbacks)
    stop_event = stop_event or threading.Event()
    configs = [member.config for member in members]
    config_dicts = [config.to_dict() for config in configs]
    run_signature = signature(config_dicts, [member.inputs for member in members],
                              [dataclasses.asdict(stage) for stage in stages])
    total_steps = sum(stage.steps for stage in stages)
    histories = [{key: [] for key in HISTORY_KEYS} for _ in members]
    described: list[dict[str, Any]] = []
    described_members: list[list[dict[str, Any]]] = []  # per stage, per member: what the source adds
    saved = checkpoint.read(run_signature, config_dicts) if checkpoint is not None and checkpoint.resume else None
    if saved is not None:
        histories, described = saved.meta["histories"], saved.meta["described"]
        described_members = saved.meta["described_members"]
    resumed_at = saved.meta["steps_done"] if saved is not None else None
    start = time.perf_counter()
    state = None
    stopped_by: list[str] = []
    with stop_on_signals(stop_event, stopped_by):
        if stop_event.is_set():
            raise RunStopped("stopped before the model was built: nothing was computed")
        if compiled is not None and compiled.objective is not None:
            objective, state = compiled.objective, compiled.state
            state.stop_event = stop_event
        else:
            objective = Objective(configs)
            state = RunState(configs, objective, stop_event)
            if compiled is not None:
                compiled.objective, compiled.state = objective, state
        state.stages = list(stages)
        start_rgbs = [member.init_rgb for member in members]
        for index, stage in enumerate(stages):
            if saved is not None and index < saved.meta["stage"]:
                continue  # done before the checkpoint: its history and record came with it
            if stop_event.is_set():
                break
            kind = SOURCES[stage.source]
            inputs = _stage_inputs(members, stage)
            resuming = saved is not None and index == saved.meta["stage"]
            kept = compiled.stages.get(index) if compiled is not None else None
            if kept is not None and kept[0] == (stage.size, stage.source) and not resuming:
                state.restart([resize_to(rgb, *stage.size) for rgb in start_rgbs])
                _, source, targets = kept
                _assign(targets, objective.targets(inputs, per_stage_only=kind.windowed))
                source.restart(stage)
            else:
                if resuming:
                    state.restore(saved.meta["state"], saved.arrays)
                else:
                    state.enter([resize_to(rgb, *stage.size) for rgb in start_rgbs], kind.gradient_area(stage))
                targets = objective.targets(inputs, per_stage_only=kind.windowed)
                if compiled is not None:
                    targets = _as_variables(targets)
                restored = (saved.meta["source"], saved.arrays) if resuming else None
                source = kind(objective, state, stage, inputs, targets, restored=restored)
                if compiled is not None:
                    compiled.stages[index] = ((stage.size, stage.source), source, targets)
                    compiled.built += 1
            state.source = source
            stage_times: list[float] = list(saved.meta["stage_times"]) if resuming else []
            first = saved.meta["step_in_stage"] if resuming else 0
            try:
                for _ in range(first, stage.steps):
                    if stop_event.is_set():
                        break
                    started = time.perf_counter()
                    values = source.step()
                    if values is None:  # stopped within a tiled step (dropped), or L-BFGS can go no further
                        break
                    stage_times.append(time.perf_counter() - started)
                    _report(values, histories, callbacks, state, index, total_steps, start, len(stage_times))
                    if checkpoint is not None:
                        done = len(histories[0]["total"])
                        checkpoint.decide(done - (resumed_at or 0), total_steps - done, _median(stage_times))
                        if checkpoint.due(done):
                            checkpoint.write(_saved(state, source, index, stage_times, histories, described,
                                                    described_members, run_signature, config_dicts), done)
            finally:
                source.close()
            if checkpoint is not None and checkpoint.on_stop and stop_event.is_set() and histories[0]["total"]:
                # Stopped: keep where it was, before the last image is scored, so a resume carries straight on.
                checkpoint.write(_saved(state, source, index, stage_times, histories, described, described_members,
                                        run_signature, config_dicts), len(histories[0]["total"]))
            if stage_times and (source.scores_when_stopped or not stop_event.is_set()):
                source.finish()  # the last update's image has no loss yet: score it so it can win
            described.append({"size": list(stage.size), "scale": round(stage.scale, 6), "source": stage.source,
                              "steps": stage.steps, "steps_run": len(stage_times), "step_traces": source.traces(),
                              "seconds_per_step": _median(stage_times)})
            described_members.append([source.describe(member) for member in range(len(members))])
            start_rgbs = state.best_rgbs()
        if saved is not None and state.best_image is None:  # resumed after its last stage had ended
            raise NstkitError(f"checkpoint {checkpoint.path} is of a finished run: nothing left to resume")
        # Still inside stop_on_signals: a signal while the results are built only sets the stop event.
        steps_run = len(histories[0]["total"])
        if steps_run == 0 and stop_event.is_set():
            stopped = RunStopped("stopped before the first step: nothing was computed")
            stopped.exit_code = 143 if stopped_by == ["SIGTERM"] else 130
            raise stopped
        # Fewer steps than planned because something stopped it (not because L-BFGS could go no further).
        stopped_early = steps_run < total_steps and stop_event.is_set()
        if checkpoint is not None and not stopped_early:
            checkpoint.remove()  # finished (a signal after the last step changes nothing): nothing to resume
        wall_time = time.perf_counter() - start
        final_size = tuple(members[0].content_rgb.shape[:2])
        best_steps, best_losses = state.best_step.numpy(), state.best_loss.numpy()
        results = []
        for index, (member, history) in enumerate(zip(members, histories)):
            record = build_record(
                config=member.config.to_dict(),
                **member.extra,
                weights=vars(objective.weights_info),
                inputs=member.inputs,
                style_blend=member.blend,
                image_size=list(final_size),
                terms=list(objective.names),
                stages=[{**stage, **extra[index]} for stage, extra in zip(described, described_members)],
                device=device_name(),
                steps_planned=total_steps,
                steps_run=steps_run,
                stopped_early=stopped_early,
                best_stage=len(described) - 1,
                best_step=int(best_steps[index]),  # updates before the best image, over all stages
                # At the best stage's size; None if the run stopped as that stage began (its start was never scored).
                best_loss=float(best_losses[index]) if np.isfinite(best_losses[index]) else None,
                final_losses={term: values[-1] for term, values in history.items() if values},
                step_traces=max(stage["step_traces"] for stage in described),  # 1 unless something retraced
                jit_compile=state.jit_compile,
                **({"batch": {"size": len(members), "member": index}} if len(members) > 1 else {}),
                wall_time_s=round(wall_time, 3),
                **({"stopped_by": stopped_by[0]} if stopped_by else {}),
                **({"resumed_at_step": resumed_at} if resumed_at is not None else {}),
                **({"checkpoints": {"path": str(checkpoint.path), "every": checkpoint.every, "written": checkpoint.written,
                                    "seconds_writing": round(checkpoint.seconds_writing, 3),
                                    **({"failure": checkpoint.failure} if checkpoint.failure else {})}}
                   if checkpoint else {}),
                # The last stage's median step (the full-size speed); each stage's own is in `stages`.
                seconds_per_step=described[-1]["seconds_per_step"] if described else None,
            )
            best = resize_to(start_rgbs[index], *final_size)  # already full size unless the run stopped early
            output = member.finish(best)
            results.append(Result(to_uint8(output), history, member.config, record, float_image=output))
        return results


def _median(times: list[float]) -> float | None:
    """A stage's seconds per step: the median, leaving out its first step (the trace) when there are others."""
    return round(float(np.median(times[1:] or times)), 4) if times else None


def _saved(state: RunState, source, stage: int, stage_times, histories, described, described_members,
           run_signature: str, configs: list[dict]):
    """What a checkpoint holds after ``len(stage_times)`` steps of ``stage`` (see `checkpoint`)."""
    from .checkpoint import Saved

    state_meta, arrays = state.snapshot()
    source_meta, source_arrays = source.snapshot()
    meta = {"signature": run_signature, "configs": configs, "stage": stage, "step_in_stage": len(stage_times),
            "steps_done": len(histories[0]["total"]), "stage_times": list(stage_times), "histories": histories,
            "described": described, "described_members": described_members, "state": state_meta,
            "source": source_meta}
    return Saved(meta, {**arrays, **source_arrays})


def _stage_inputs(members: Sequence[Member], stage: Stage) -> StageInputs:
    """The members' content and styles at a stage's size: styles scaled as the image is, or to the window."""
    from ..media.images import check_size, preprocess, resize_max_dim

    content = np.concatenate([preprocess(resize_to(m.content_rgb, *stage.size)) for m in members])
    styles = []
    for member in members:
        if stage.style_max_dim is not None:
            scales = member.config.style_scales(len(member.style_rgbs))
            resized = ([resize_max_dim(rgb, stage.style_max_dim) for rgb in member.style_rgbs] if scales is None else
                       [resize_to(rgb, *scaled(rgb.shape[:2], f * stage.style_max_dim / max(rgb.shape[:2])))
                        for rgb, f in zip(member.style_rgbs, scales)])  # F times the window, as F times the image
            for rgb in resized:  # a wide style can end up too thin for the network at a tile's size
                check_size(rgb.shape[:2], f"style image at this run's window ({stage.style_max_dim} px)",
                           downscaled=True)
            styles.append(resized)
        else:
            styles.append([resize_to(rgb, *scaled(rgb.shape[:2], stage.scale)) for rgb in member.style_rgbs])
    regions = members[0].regions  # a batch shares its mask
    previous = reliable = None
    if members[0].previous is not None:
        previous = np.concatenate([preprocess(resize_to(m.previous[0], *stage.size)) for m in members])
        reliable = np.stack([resize_to(np.asarray(m.previous[1], np.float32)[..., None], *stage.size)
                             for m in members])
    return StageInputs(content=content, styles=styles, blends=[member.blend for member in members],
                       masks=regions.at(stage.size) if regions is not None else None,
                       keeps_content=regions is not None and regions.unstyled, previous=previous,
                       previous_reliable=reliable)


def scaled(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """``shape`` times ``factor``, rounded, no side below ResNet-50's smallest input."""
    if factor == 1.0:
        return tuple(shape)
    return max(MIN_IMAGE_SIDE, round(shape[0] * factor)), max(MIN_IMAGE_SIDE, round(shape[1] * factor))


def _report(values: np.ndarray, histories, callbacks, state: RunState, stage: int, total_steps: int,
            start: float, stage_step: int) -> None:
    names = HISTORY_KEYS
    for index, (*terms, best_loss) in enumerate(values.tolist()):
        losses = dict(zip(names, terms))
        for name, value in losses.items():
            histories[index][name].append(value)
        progress = Progress(len(histories[0]["total"]), total_steps, losses, best_loss, time.perf_counter() - start,
                            index, stage, state, stage_step)
        for callback in callbacks:
            callback(progress)


class OneTracePerRunFilter(logging.Filter):
    """Drop TF's "N calls triggered tf.function retracing" warning: each stage compiles its own step by design.

    Real retracing within a stage is still visible: the run record's ``step_traces`` counts it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def quiet_retracing_warnings() -> None:
    """Install `OneTracePerRunFilter` on TF's logger, once."""
    import tensorflow as tf

    logger = tf.get_logger()
    if not any(isinstance(f, OneTracePerRunFilter) for f in logger.filters):
        logger.addFilter(OneTracePerRunFilter())


@contextlib.contextmanager
def stop_on_signals(stop_event: threading.Event, stopped_by: list[str] | None = None):
    """Turn the first Ctrl-C / SIGTERM into "stop after this step"; a second Ctrl-C aborts at once.

    ``stopped_by`` gets the first signal's name ("SIGINT", "SIGTERM"): the CLI's exit status says which.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if stopped_by is not None and not stopped_by:
            stopped_by.append(signal.Signals(signum).name)
        stop_event.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
