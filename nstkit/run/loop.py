"""The run loop: one loop over a schedule of stages, for one image or a batch, whole or in tiles.

::

    stages:   (64 px, 500 steps, image) ──> (128 px, 1000 steps, image) ──> (4096 px, 100 steps, tiles)
                       │  image, Adam's moments and step count carried, resized to the next stage
                       ▼
    each step:  source.step() ──> (B, 2 + T) losses ──> history, callbacks, checkpoint?, stop?

A run is a list of `schedule.Stage` s: a size, a number of steps and a gradient source
(`gradients.SOURCES`: the whole image's compiled step, or tiled windows). `state.RunState` holds what
carries from step to step and stage to stage (the image, Adam, the best image); this module only walks the
stages, keeps the history, writes checkpoints and builds each member's `Result` and run record. Coarse-to-fine
levels and the tiled runs' one-pass start are stages of one schedule, so the optimiser's state carries across
them (crowsonkb/style-transfer-pytorch carries Adam's between scales) instead of being thrown away.

Ctrl-C / SIGTERM (in the main thread) or a ``stop_event`` end the run after the current step (within one
window in a tiled stage); the best image so far is returned. Stopped before the first step, there is nothing
to return: `RunStopped` says so.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..core.config import FLAT_GAIN, FLAT_WINDOW
from ..core.errors import NstkitError
from ..core.record import RunRecord
from ..media.images import resize_to, to_uint8
from ..objective.terms import HISTORY_KEYS, Objective
from .result import Callback, OutputNotSaved, Progress, Result, RunStopped
from .schedule import Member, Stage, planned_steps, scaled, stage_inputs
from .signals import exit_status, stop_on_signals
from .state import Compiled, RunState

if TYPE_CHECKING:
    from .checkpoint import Checkpointing, Saved

__all__ = ["run_stages", "Compiled", "Member", "Stage", "Progress", "Result", "RunStopped", "OutputNotSaved",
           "Callback", "scaled"]


def run_stages(members: Sequence[Member], stages: Sequence[Stage], callbacks: Iterable[Callback] = (),
               stop_event: threading.Event | None = None, checkpoint: "Checkpointing | None" = None,
               compiled: Compiled | None = None) -> list[Result]:
    """Optimise every member through ``stages``; one `Result` per member.

    ``checkpoint`` (`checkpoint.Checkpointing`): where to keep checkpoints, how
    often, and whether to resume from the one there. ``compiled``: reuse the
    network and the compiled steps of the runs before, of the same sizes (`Compiled`).
    """
    from ..network.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    quiet_retracing_warnings()
    run = _Run(members, stages, list(callbacks), stop_event or threading.Event(), checkpoint)
    with stop_on_signals(run.stop_event, run.stopped_by):
        if run.stop_event.is_set():
            raise RunStopped("stopped before the model was built: nothing was computed")
        run.build(compiled)
        for index, stage in enumerate(stages):
            if run.saved is not None and index < run.saved.meta["stage"]:
                continue  # done before the checkpoint: its history and record came with it
            if run.stop_event.is_set():
                break
            if run.budget(index, stage) == 0:
                run.skip(stage)  # a float32 finish with nothing left: never built
                continue
            source = run.enter(index, stage, compiled)
            try:
                stage_times = run.steps(index, stage, source)
            finally:
                source.close()
            run.end(index, stage, source, stage_times)
        # Still inside stop_on_signals: a signal while the results are built only sets the stop event.
        return run.results()


class _Run:
    """One call of `run_stages`: its history, what each stage reports, and the checkpoint it resumed from."""

    def __init__(self, members: Sequence[Member], stages: Sequence[Stage], callbacks: list[Callback],
                 stop_event: threading.Event, checkpoint: "Checkpointing | None"):
        from .checkpoint import signature

        self.members, self.stages, self.callbacks = list(members), list(stages), callbacks
        self.stop_event, self.checkpoint = stop_event, checkpoint
        self.configs = [member.config for member in members]
        self.config_dicts = [config.to_dict() for config in self.configs]
        self.signature = signature(self.config_dicts, [member.inputs for member in members],
                                   [dataclasses.asdict(stage) for stage in stages])
        self.total_steps = planned_steps(stages)
        self.histories = [{key: [] for key in HISTORY_KEYS} for _ in members]
        self.described: list[dict[str, Any]] = []  # per stage: size, steps run, traces, speed
        self.described_members: list[list[dict[str, Any]]] = []  # per stage, per member: what the source adds
        self.saved = checkpoint.read(self.signature, self.config_dicts) if checkpoint and checkpoint.resume else None
        if self.saved is not None:
            self.histories, self.described = self.saved.meta["histories"], self.saved.meta["described"]
            self.described_members = self.saved.meta["described_members"]
        self.resumed_at = self.saved.meta["steps_done"] if self.saved is not None else None
        self.start = time.perf_counter()
        self.stopped_by: list[str] = []
        self.objective = self.state = None
        self.objectives: dict[str, Objective] = {}  # by precision, for a stage in another (a float32 finish)
        self.handed_over = None  # the L-BFGS of the stage before, whose memory a float32 finish takes on
        self.start_rgbs = [member.init_rgb for member in members]

    def build(self, compiled: Compiled | None) -> None:
        """The network, its objective and the run's state; those of the runs before, if they were compiled once."""
        if compiled is not None and compiled.objective is not None:
            self.objective, self.state = compiled.objective, compiled.state
            self.state.stop_event = self.stop_event
        else:
            self.objective = Objective(self.configs)
            self.preload(self.objective)
            self.state = RunState(self.configs, self.objective, self.stop_event)
            if compiled is not None:
                compiled.objective, compiled.state = self.objective, self.state
        self.state.stages = list(self.stages)

    def enter(self, index: int, stage: Stage, compiled: Compiled | None):
        """Set up ``stage``: the state at its size (fresh, restarted or resumed), its targets and gradient source."""
        from .gradients import SOURCES

        kind, state, objective = SOURCES[stage.source], self.state, self.objective_for(stage, compiled)
        inputs = stage_inputs(self.members, stage)
        resuming = self.saved is not None and index == self.saved.meta["stage"]
        kept = compiled.stages.get(index) if compiled is not None else None
        if kept is not None and kept[0] == (stage.size, stage.source) and not resuming:
            state.restart([resize_to(rgb, *stage.size) for rgb in self.start_rgbs])
            _, source, targets = kept
            computed_before = len(objective.computed_style_stats)
            compiled.assign(targets, objective.targets(inputs, per_stage_only=kind.windowed))
            self.warn_if_packs_missed(objective.computed_style_stats[computed_before:], inputs, stage)
            source.restart(stage)
        else:
            if resuming:
                state.restore(self.saved.meta["state"], self.saved.arrays)
            else:
                state.enter([resize_to(rgb, *stage.size) for rgb in self.start_rgbs], kind.gradient_area(stage))
            computed_before = len(objective.computed_style_stats)
            targets = objective.targets(inputs, per_stage_only=kind.windowed)
            self.warn_if_packs_missed(objective.computed_style_stats[computed_before:], inputs, stage)
            if compiled is not None:
                targets = compiled.as_variables(targets)
            restored = (self.saved.meta["source"], self.saved.arrays) if resuming else None
            source = kind(objective, state, stage, inputs, targets, restored=restored)
            if stage.shares_steps and not resuming and self.handed_over is not None \
                    and getattr(source, "lbfgs", None) is not None:
                source.lbfgs.take_memory(self.handed_over)
                self.handed_over = None  # its variables are copied: let them go before the finish runs
            if compiled is not None:
                compiled.stages[index] = ((stage.size, stage.source), source, targets)
                compiled.built += 1
        state.source = source
        return source

    def steps(self, index: int, stage: Stage, source) -> list[float]:
        """The stage's steps (those a checkpoint left, if resumed), each reported and perhaps checkpointed."""
        resuming = self.saved is not None and index == self.saved.meta["stage"]
        stage_times: list[float] = list(self.saved.meta["stage_times"]) if resuming else []
        first = self.saved.meta["step_in_stage"] if resuming else 0
        for _ in range(first, self.budget(index, stage)):
            if self.stop_event.is_set() or self.flat(stage, stage_times):
                break
            started = time.perf_counter()
            values = source.step()
            if values is None:  # stopped within a tiled step (dropped), or L-BFGS can go no further
                break
            stage_times.append(time.perf_counter() - started)
            self.report(values, index, len(stage_times))
            if self.checkpoint is not None:
                done = len(self.histories[0]["total"])
                self.checkpoint.decide(done - (self.resumed_at or 0), self.total_steps - done, _median(stage_times))
                if self.checkpoint.due(done):
                    self.checkpoint.write(self.saved_now(source, index, stage_times), done)
        return stage_times

    def flat(self, stage: Stage, stage_times: list[float]) -> bool:
        """Whether ``stage`` ends because its loss stopped falling (`Stage.until_flat`; see `_flat`)."""
        return stage.until_flat and bool(stage_times) and _flat(self.histories[0]["total"][-len(stage_times):])

    def budget(self, index: int, stage: Stage) -> int:
        """The steps ``stage`` may take: its own, or (`Stage.shares_steps`) what the stage before left of them."""
        return stage.steps - self.described[index - 1]["steps_run"] if stage.shares_steps else stage.steps

    def skip(self, stage: Stage) -> None:
        """Describe a stage with no steps left to take, as the record lists every stage of the plan."""
        self.described.append(_described(stage, 0, [], traces=0))
        self.described_members.append([{} for _ in self.members])

    def objective_for(self, stage: Stage, compiled: Compiled | None) -> Objective:
        """The run's objective, or one in the stage's own precision (the same terms and weights: a float32 finish)."""
        if stage.precision is None or stage.precision == self.configs[0].precision:
            return self.objective
        kept = compiled.objectives if compiled is not None else self.objectives
        if stage.precision not in kept:
            kept[stage.precision] = Objective([config.replace(precision=stage.precision) for config in self.configs])
            self.preload(kept[stage.precision])
        return kept[stage.precision]

    def preload(self, objective: Objective) -> None:
        """The members' style packs' statistics into ``objective`` (one in another precision finds none of its own)."""
        for member in self.members:
            if objective.configs[0].precision == member.config.precision:
                objective.preload(member.style_statistics)

    def warn_if_packs_missed(self, computed: list[tuple], inputs, stage: Stage) -> None:
        """One line if a packed style's statistics had to be computed here (a stage size, or a precision, that its
        pack was not made for): the run is the same, the pack just did not save that pass."""
        from ..core.errors import warn
        from ..core.packs import statistic_key

        if not computed or not any(any(member.packed) for member in self.members):
            return
        if stage.precision not in (None, self.configs[0].precision):
            return  # a float32 finish: another network's statistics, which a pack of the run's precision cannot hold
        packed = {statistic_key("", rgb)[2] for member, styles in zip(self.members, inputs.styles)
                  for rgb, is_packed in zip(styles, member.packed) if is_packed}
        missed = sorted({key[1][:2] for key in computed if key[2] in packed})
        if missed:
            sizes = ", ".join(f"{width}x{height}" for height, width in missed)
            warn(f"a style pack has no statistics for this run's stage at {stage.size[1]}x{stage.size[0]} px (the "
                 f"style at {sizes} px, {stage.precision or self.configs[0].precision}): computed them from the "
                 "pack's pixels; make the pack with this run's flags to save that pass")

    def report(self, values: np.ndarray, stage: int, stage_step: int) -> None:
        """One step's (B, 2 + T) values into the history, then to every callback, member by member."""
        for index, (*terms, best_loss) in enumerate(values.tolist()):
            losses = dict(zip(HISTORY_KEYS, terms))
            for name, value in losses.items():
                self.histories[index][name].append(value)
            progress = Progress(len(self.histories[0]["total"]), self.total_steps, losses, best_loss,
                                time.perf_counter() - self.start, index, stage, self.state, stage_step)
            for callback in self.callbacks:
                callback(progress)

    def end(self, index: int, stage: Stage, source, stage_times: list[float]) -> None:
        """After a stage's steps: a checkpoint if stopped, the last image scored, the stage described."""
        if self.checkpoint is not None and self.checkpoint.on_stop and self.stop_event.is_set() \
                and self.histories[0]["total"]:
            # Stopped: keep where it was, before the last image is scored, so a resume carries straight on.
            self.checkpoint.write(self.saved_now(source, index, stage_times), len(self.histories[0]["total"]))
        if stage_times and (source.scores_when_stopped or not self.stop_event.is_set()):
            source.finish()  # the last update's image has no loss yet: score it so it can win
        self.described.append(_described(stage, self.budget(index, stage), stage_times, source.traces(),
                                         ended_flat=self.flat(stage, stage_times)))
        self.described_members.append([source.describe(member) for member in range(len(self.members))])
        self.start_rgbs = self.state.best_rgbs()
        self.handed_over = getattr(source, "lbfgs", None)

    def saved_now(self, source, stage: int, stage_times: list[float]) -> "Saved":
        """What a checkpoint holds after ``len(stage_times)`` steps of ``stage`` (see `checkpoint`)."""
        from .checkpoint import Saved

        state_meta, arrays = self.state.snapshot()
        source_meta, source_arrays = source.snapshot()
        meta = {"signature": self.signature, "configs": self.config_dicts, "stage": stage,
                "step_in_stage": len(stage_times), "steps_done": len(self.histories[0]["total"]),
                "steps_planned": self.total_steps,
                "stage_times": list(stage_times), "histories": self.histories, "described": self.described,
                "described_members": self.described_members, "state": state_meta, "source": source_meta}
        return Saved(meta, {**arrays, **source_arrays})

    def results(self) -> list[Result]:
        """Each member's best image, finished (colour restored), with its history and run record."""
        if self.saved is not None and self.state.best is None:  # resumed after its last stage had ended
            raise NstkitError(f"checkpoint {self.checkpoint.path} is of a finished run: nothing left to resume")
        steps_run = len(self.histories[0]["total"])
        if steps_run == 0 and self.stop_event.is_set():
            stopped = RunStopped("stopped before the first step: nothing was computed")
            stopped.exit_code = exit_status(self.stopped_by[0] if self.stopped_by else "SIGINT")
            raise stopped
        # Fewer steps than planned because something stopped it (not because L-BFGS could go no further).
        stopped_early = steps_run < self.total_steps and self.stop_event.is_set()
        if self.checkpoint is not None and not stopped_early:
            self.checkpoint.remove()  # finished (a signal after the last step changes nothing): nothing to resume
        wall_time = time.perf_counter() - self.start
        final_size = tuple(self.members[0].content_rgb.shape[:2])
        results = []
        for index, (member, history) in enumerate(zip(self.members, self.histories)):
            record = self.record(index, member, history, final_size, steps_run, stopped_early, wall_time)
            best = resize_to(self.start_rgbs[index], *final_size)  # already full size unless it stopped early
            output = member.finish(best)
            results.append(Result(to_uint8(output), history, member.config, record, float_image=output,
                                  best_rgb=best))
        return results

    def record(self, index: int, member: Member, history: dict, final_size: tuple[int, int], steps_run: int,
               stopped_early: bool, wall_time: float) -> RunRecord:
        """One member's run record (`core.record.RunRecord`)."""
        from ..network.device import device_name

        best_step, best_loss = int(self.state.best.step.numpy()[index]), self.state.best.loss.numpy()[index]
        checkpoint = self.checkpoint
        known = {spec.name for spec in dataclasses.fields(RunRecord)}
        return RunRecord(
            config=member.config.to_dict(),
            **{key: value for key, value in member.extra.items() if key in known},
            extra={key: value for key, value in member.extra.items() if key not in known},
            weights=vars(self.objective.weights_info),
            inputs=member.inputs,
            style_blend=member.blend,
            image_size=list(final_size),
            terms=list(self.objective.names),
            stages=[{**stage, **extra[index]} for stage, extra in zip(self.described, self.described_members)],
            device=device_name(),
            steps_planned=self.total_steps,
            steps_run=steps_run,
            stopped_early=stopped_early,
            best_stage=len(self.described) - 1,
            best_step=best_step,  # updates before the best image, over all stages
            # At the best stage's size; None if the run stopped as that stage began (its start was never scored).
            best_loss=float(best_loss) if np.isfinite(best_loss) else None,
            final_losses={term: values[-1] for term, values in history.items() if values},
            step_traces=max(stage["step_traces"] for stage in self.described),  # 1 unless something retraced
            jit_compile=self.state.jit_compile,
            batch={"size": len(self.members), "member": index} if len(self.members) > 1 else None,
            wall_time_s=round(wall_time, 3),
            stopped_by=self.stopped_by[0] if self.stopped_by else None,
            resumed_at_step=self.resumed_at,
            checkpoints={"path": str(checkpoint.path), "every": checkpoint.every, "written": checkpoint.written,
                         "seconds_writing": round(checkpoint.seconds_writing, 3),
                         **({"failure": checkpoint.failure} if checkpoint.failure else {})} if checkpoint else None,
            # The last stage's median step (the full-size speed); each stage's own is in `stages`.
            seconds_per_step=self.described[-1]["seconds_per_step"] if self.described else None,
        )


def _flat(totals: Sequence[float]) -> bool:
    """Whether a stage's losses so far stopped falling: its best fell by less than `FLAT_GAIN` in the last
    `FLAT_WINDOW` steps. From the history alone, so a resumed stage ends where an uninterrupted one would."""
    if len(totals) <= FLAT_WINDOW:
        return False
    return min(totals) > (1.0 - FLAT_GAIN) * min(totals[:-FLAT_WINDOW])


def _described(stage: Stage, steps: int, stage_times: list[float], traces: int, ended_flat: bool = False) -> dict:
    """A stage as the record lists it: its size, the steps it had and ran, its traces and speed."""
    return {"size": list(stage.size), "scale": round(stage.scale, 6), "source": stage.source, "steps": steps,
            "steps_run": len(stage_times), "step_traces": traces, "seconds_per_step": _median(stage_times),
            **({"precision": stage.precision} if stage.precision is not None else {}),
            **({"ended": "its loss stopped falling"} if ended_flat else {})}


def _median(times: list[float]) -> float | None:
    """A stage's seconds per step: the median, leaving out its first step (the trace) when there are others."""
    return round(float(np.median(times[1:] or times)), 4) if times else None


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
