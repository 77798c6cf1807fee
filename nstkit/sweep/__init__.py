"""Parameter sweeps: `sweep(content, style, grid, executor=...) -> SweepResult`.

A sweep runs `stylize` once per point of a grid of `StyleConfig` values and
gathers a tidy table (one row per run) and a contact sheet::

    grid {style_weight: [1e6, 1e7], preset: [robust, vanilla]}
      -> jobs 0..3, last key fastest -> executor.submit(run_job, job, content, style) -> rows + images

By concern: `grid` (the grid, its text form, the jobs), `jobs` (running one
job; the local process pool; Dask), `results` (table, CSV, JSON) and `sheet`
(the contact sheet); this module ties them together. Every job's config is
validated before the first one is submitted; a job that fails while running
only loses its own row's image (its row says why). Ctrl-C or SIGTERM stop
the whole sweep within a step, workers included.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..api.progress import wanted
from ..core.config import StyleConfig
from ..core.errors import NstkitError
from ..media.checks import INPUT_FIELDS, check_inputs
from ..media.images import ImageInput, check_output_path
from ..run.signals import sigterm_as_interrupt
from .bar import SweepBar
from .grid import FIELDS, SweepJob, expand_grid, grid_axes, parse_grid, short_value
from .jobs import (
    METRIC_COLUMNS,
    JobOutcome,
    LocalPool,
    WorkerDied,
    check_main_guard,
    dask_client,
    default_executor,
    failed_row,
    row_from_record,
    run_job,
)
from .results import SUMMARY_FILES, SweepResult
from .sheet import SHEET_GAP, thumbnail

__all__ = ["sweep", "SweepResult", "SweepJob", "expand_grid", "parse_grid", "grid_axes", "short_value", "run_job",
           "LocalPool", "WorkerDied", "dask_client", "FIELDS", "METRIC_COLUMNS", "SHEET_GAP", "SUMMARY_FILES",
           "thumbnail"]


def sweep(content: ImageInput, style: ImageInput | Sequence[ImageInput], grid: Mapping[str, Sequence],
          config: StyleConfig | None = None, *, executor: concurrent.futures.Executor | None = None,
          workers: int | None = None, out_dir: os.PathLike | str | None = None, overwrite: bool = False,
          resume: bool = False, on_row: Callable[[dict], Any] | None = None, progress: bool | None = None,
          **options: Any) -> SweepResult:
    """Run `stylize` for every point of ``grid`` on ``executor``; rows and images come back in grid order.

    ``grid`` maps `StyleConfig` fields to lists of values; ``options`` fix
    other fields for every job (as in `stylize`). ``executor`` is any
    `concurrent.futures.Executor`, e.g. ``distributed.Client(address).get_executor()``;
    without one, ``workers`` local processes run the jobs and are shut down
    after. Paths travel as paths (a cluster's workers must see them), arrays
    are pickled. With ``out_dir``, each image and its run record are saved as
    its job finishes, then `SweepResult.save` writes the table, the contact
    sheet and sweep.json there; existing sweep outputs are refused unless
    ``overwrite``, or ``resume``: then the points whose image and run record
    are already there (for the same config) are taken from them, and only
    the others run. ``on_row`` sees each row as its job finishes. A worker
    process that dies fails only its own row; the sweep goes on. ``progress``: one bar over every run's steps
    (the local pool's workers report each run's steps as they go; another executor's runs count when they
    end); None shows it in notebooks and terminals only.

    From a script, the local pool's worker processes import the script again (Python's "spawn" start):
    a sweep at a script's top level must sit under ``if __name__ == "__main__":``, and is refused at once
    without it.
    """
    if executor is None:
        check_main_guard()  # before anything is read or made: the refusal leaves nothing behind
    jobs = expand_grid(grid, config, **options)
    # PIL images become arrays (plain data to pickle); paths stay paths.
    content = _portable(content)
    styles = [_portable(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    style_arg = styles if isinstance(style, (list, tuple)) else styles[0]  # as stylize would get it
    for job in jobs:
        try:
            resolved = job.config.resolved()
            resolved.blend_weights(len(styles))
            resolved.style_scales(len(styles))
        except NstkitError as error:
            raise NstkitError(f"grid point {job.label()}: {error}") from None
    if executor is not None and workers is not None:
        raise NstkitError("workers sets the size of the default local pool; with your own executor, size that instead")
    _check_inputs(content, styles, jobs, local=executor is None)
    if resume and out_dir is None:
        raise NstkitError("resume needs out_dir: the folder whose finished points it keeps")
    outputs = _plan_outputs(Path(out_dir), jobs, overwrite or resume) if out_dir is not None else None
    inputs = tuple(s for s in (content, *styles) if isinstance(s, (str, os.PathLike)))  # never overwritten
    done = _finished(jobs, outputs) if resume else {}
    for outcome in done.values():
        if on_row is not None:
            on_row(outcome.row)

    to_run = [job for job in jobs if job.index not in done]
    own_executor = executor is None and bool(to_run)
    if own_executor:
        executor = default_executor(workers, len(to_run))
    try:
        with SweepBar(to_run, len(done)) if wanted(progress) and to_run else contextlib.nullcontext() as bar:
            ran = _gather(executor, to_run, content, style_arg, outputs, inputs, on_row, bar) if to_run else []
    finally:
        if own_executor:
            executor.shutdown(wait=True, cancel_futures=True)
    by_index = {**done, **{job.index: outcome for job, outcome in zip(to_run, ran)}}
    outcomes = [by_index[job.index] for job in jobs]

    result = SweepResult(
        grid=grid_axes(grid),
        config=(config or StyleConfig()).replace(**options),
        rows=[outcome.row for outcome in outcomes],
        images=[outcome.result.image if outcome.result else None for outcome in outcomes],
        records=[outcome.result.record if outcome.result else None for outcome in outcomes],
        inputs={"content": _describe(content), "style": [_describe(s) for s in styles]})
    if out_dir is not None:
        _save_summary(result, Path(out_dir))
    return result


def _save_summary(result: SweepResult, out_dir: Path) -> None:
    """The table, sheet and sweep.json in ``out_dir``; if it cannot take them, in a rescue folder, and say so."""
    from ..core.files import reason, rescue_paths
    from ..run.result import OutputNotSaved

    try:
        result.save(out_dir, overwrite=True)  # refused up front already if it held outputs
        return
    except OSError as error:
        problem = f"could not write the sweep's table and contact sheet in {out_dir} ({reason(error)})"
    for place in rescue_paths(out_dir / "sweep"):
        try:
            result.save(place, overwrite=True)
        except OSError:
            continue
        lost = OutputNotSaved(f"{problem}; wrote them to {place}", place)
        lost.result = result
        raise lost
    lost = OutputNotSaved(f"{problem}, nor anywhere else: the rows and images are in the returned result")
    lost.result = result
    raise lost


def _gather(executor, jobs, content, style, outputs, inputs, on_row, bar=None) -> list[JobOutcome]:
    """Submit every job, then take each outcome as it finishes (saving its image if asked): grid order out."""
    if isinstance(executor, LocalPool):
        executor.stop_event.clear()  # a pool reused after an interrupted sweep
        executor.on_progress = bar.step if bar is not None else None
    outcomes: dict[int, JobOutcome] = {}
    futures: dict[concurrent.futures.Future, SweepJob] = {}
    try:
        with sigterm_as_interrupt():  # SIGTERM stops the sweep, its worker processes too, as Ctrl-C does
            futures = {executor.submit(run_job, job, content, style): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - the worker died or the result did not come back
                    outcome = JobOutcome(failed_row(job, error, None), None)
                if outputs is not None:
                    outcome.row["output"] = _save(outcome, outputs[job.index], inputs)
                outcomes[job.index] = outcome
                if bar is not None:
                    bar.finished(job.index, outcome.row)
                if on_row is not None:
                    on_row(outcome.row)
    except BaseException:  # Ctrl-C, SIGTERM, a failing on_row: stop what runs, start nothing more
        if isinstance(executor, LocalPool):
            executor.stop_jobs()
        raise
    finally:
        for future in futures:
            future.cancel()
    return [outcomes[job.index] for job in jobs]


def _save(outcome: JobOutcome, path: Path, inputs: tuple) -> str | None:
    """Save a finished job's image and record; if that fails, where the result went instead goes in the row."""
    from ..run.result import OutputNotSaved

    if outcome.result is None:
        return None
    try:
        return str(outcome.result.save(path, protect=inputs))
    except OutputNotSaved as lost:
        outcome.row["error"] = str(lost)
        return str(lost.saved_to) if lost.saved_to else None


def _finished(jobs: Sequence[SweepJob], outputs: dict[int, Path]) -> dict[int, JobOutcome]:
    """The jobs a resumed sweep need not run: their image and record are there, for the same config."""
    import json

    from ..media.images import load_image
    from ..network.device import resolve_precision
    from ..run.result import Result

    done = {}
    for job in jobs:
        image, record_file = outputs[job.index], outputs[job.index].with_suffix(".json")
        if not (image.exists() and record_file.exists()):
            continue
        try:
            record = json.loads(record_file.read_text())
            config = resolve_precision(job.config)[0].resolved()  # as the run recorded it: "auto" made concrete
            if record.get("config") != json.loads(json.dumps(config.to_dict())):
                continue  # another run's output under this name: run the point again
            pixels = load_image(image, what="finished sweep image").astype(np.uint8)
        except (OSError, ValueError, NstkitError):
            continue
        row = row_from_record(job, record, record.get("host"))
        row["output"] = str(image)
        done[job.index] = JobOutcome(row, Result(pixels, {}, config, record))
    return done


def _check_inputs(content, styles, jobs: Sequence[SweepJob], *, local: bool) -> None:
    """Fail on a bad image, mask or weights file before any job starts, as `stylize` would (`checks.check_inputs`).

    Each distinct set of the fields the check reads is checked once. A path is read only when the jobs run
    here (the default pool): a cluster's workers may see files this machine does not.
    """
    checked = set()
    for job in jobs:
        config = job.config.resolved()
        key = repr([getattr(config, name) for name in INPUT_FIELDS])
        if key not in checked:
            checked.add(key)
            check_inputs(content, styles, config, read_paths=local, point=job.label())


def _plan_outputs(out_dir: Path, jobs: Sequence[SweepJob], overwrite: bool) -> dict[int, Path]:
    """Each job's image path; refuse a folder that already holds outputs of a sweep like this one."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NstkitError(f"output folder {out_dir} is a file: choose a folder")
    paths = {job.index: out_dir / f"{job.file_stem()}.png" for job in jobs}
    planned = [*paths.values(), *(p.with_suffix(".json") for p in paths.values()),
               *(out_dir / name for name in SUMMARY_FILES)]
    existing = [p.name for p in planned if p.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 2} more" if len(existing) > 2 else ""
        raise NstkitError(f"{out_dir} already holds sweep outputs ({', '.join(existing[:2])}{more}): "
                          "choose an empty folder, or pass overwrite=True (--overwrite) to replace them")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NstkitError(f"could not create output folder {out_dir} ({error.strerror}): "
                          "choose a folder you can write to") from None
    check_output_path(paths[jobs[0].index])  # writable? (a real probe)
    return paths


def _portable(source: Any) -> Any:
    return np.asarray(source) if isinstance(source, Image.Image) else source


def _describe(source: Any) -> dict[str, Any]:
    if isinstance(source, (str, os.PathLike)):
        return {"path": str(source)}
    return {"array_shape": list(np.shape(source))}
