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
the whole sweep within a step, workers included. A folder that fills up,
turns read-only or vanishes mid-sweep loses nothing computed: each run's
image and record, and the summary, go to a rescue place and say where
(`Result.save`, `_save_summary`), and a summary is written whole or not at
all (`results.write_summary`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..api.progress import wanted
from ..core.config import StyleConfig, auto_coarse_level
from ..core.errors import NstkitError, warn
from ..core.files import reason
from ..core.record import RunRecord, legacy_record_path, record_path
from ..core.packs import style_count
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
from .results import SUMMARY_FILES, SweepResult, write_summary
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
    the others run (a damaged one runs again, with a warning: `_finished`).
    ``on_row`` sees each row as its job finishes. A worker process that dies
    fails only its own row; the sweep goes on. ``progress``: one bar over
    every run's steps (the local pool's workers report each run's steps as
    they go; another executor's runs count when they end); None shows it in
    notebooks and terminals only.

    From a script, the local pool's worker processes import the script again (Python's "spawn" start):
    a sweep at a script's top level must sit under ``if __name__ == "__main__":``, and is refused at once
    without it.

    When ``out_dir`` cannot take what a sweep computed (full, read-only, deleted), nothing is lost: a run's
    image and record go to a rescue place (`Result.save`) and its row's ``save_error`` says where
    (`SweepResult.unsaved` lists those rows); the summary goes whole to a rescue folder, and `OutputNotSaved`
    (exit status 74 in the CLI) says where, the result as its ``result``.
    """
    if executor is None:
        check_main_guard()  # before anything is read or made: the refusal leaves nothing behind
    jobs = expand_grid(grid, config, **options)
    # PIL images become arrays (plain data to pickle); paths stay paths.
    content = _portable(content)
    styles = [_portable(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    style_arg = styles if isinstance(style, (list, tuple)) else styles[0]  # as stylize would get it
    count = style_count(styles)  # a style pack stands for its own styles; None: one that cannot be read here
    for job in jobs:
        try:
            resolved = job.config.resolved()
            if count is not None:
                resolved.blend_weights(count)
                resolved.style_scales(count)
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
    """The table, sheet and sweep.json in ``out_dir`` (all or none: `write_summary`); if it cannot take them,
    in a rescue folder (`files.rescue_paths`), and `OutputNotSaved` says where, with the result attached.

    ``out_dir`` itself is never made again (it vanished: the summary goes elsewhere, not into a new empty
    folder), and a rescue folder that could not take them is removed, so no empty one is left behind.
    """
    from ..core.files import rescue_paths
    from ..run.result import OutputNotSaved

    try:
        write_summary(result, out_dir)  # refused up front already if it held outputs
        return
    except (OSError, NstkitError) as error:  # NstkitError: save_image found the folder gone
        problem = f"could not write the sweep's table and contact sheet in {out_dir} ({reason(error)})"
    places = rescue_paths(out_dir / "sweep")
    for place in places:
        made = _make_folder(place, parents=place.parent != out_dir)
        if not made:
            continue
        try:
            write_summary(result, place)
        except (OSError, NstkitError):
            _remove_empty(made)
            continue
        lost = OutputNotSaved(f"{problem}; wrote them to {place}", place)
        lost.result = result
        raise lost
    lost = OutputNotSaved(f"{problem}, nor anywhere else ({', '.join(str(p.parent) for p in places)}): the rows and "
                          "images are only in memory (this error's result)")
    lost.result = result
    raise lost


def _make_folder(folder: Path, *, parents: bool) -> list[Path]:
    """Make ``folder`` (and, with ``parents``, the folders above it that are missing): the ones made, innermost
    first; [] if it could not be made or was there already (a rescue never writes into another's folder)."""
    missing = [folder]
    if parents:
        while not missing[-1].parent.exists() and missing[-1].parent != missing[-1]:
            missing.append(missing[-1].parent)
    made = []
    for each in reversed(missing):
        try:
            each.mkdir()
        except OSError:
            _remove_empty(made[::-1])
            return []
        made.append(each)
    return made[::-1]


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove these folders, innermost first, each only if empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


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
    """Save a finished job's image and record; where they went if not ``path``.

    The run did not fail, so its ``error`` stays empty: its ``save_error`` says why they are not at ``path``
    and where they went (`Result.save` rescues them), and ``output`` is that place (None if nowhere: the
    image is then only in the returned result).
    """
    from ..run.result import OutputNotSaved

    if outcome.result is None:
        return None
    try:
        return str(outcome.result.save(path, protect=inputs))
    except OutputNotSaved as lost:
        outcome.row["save_error"] = str(lost)
        return str(lost.saved_to) if lost.saved_to else None


def _finished(jobs: Sequence[SweepJob], outputs: dict[int, Path]) -> dict[int, JobOutcome]:
    """The jobs a resumed sweep need not run: their image and record are there, for the same config.

    A point whose files are there but unusable (a record that is not JSON or not a whole run record, an image
    that does not decode, a record of another config) is run again, with one warning naming the file and
    what is wrong: resume is there to finish a sweep without a hand in it, and such a point holds nothing
    to keep, so running it again is what deleting its files and resuming would do. The file stays as it is
    until the new run's image and record replace it. The summaries are never read: they are written anew
    from every row at the end. A record of an older nstkit (``000_x.json``, not ``000_x.png.json``) counts.
    """
    from ..media.images import load_image
    from ..run.result import Result

    done = {}
    for job in jobs:
        image = outputs[job.index]
        record_file = next((p for p in (record_path(image), legacy_record_path(image)) if p.exists()), None)
        if not image.exists() or record_file is None:
            continue  # not run, or stopped before its record: run it
        again = f"running point {job.index} ({job.label()}) again; its new image and record replace it"
        try:
            record = RunRecord.from_dict(json.loads(record_file.read_text()))
            row = row_from_record(job, record, record.get("host"))
            # An "auto" optimiser as the run chose it: the fields it fills (Adam's warm-up, L-BFGS's coarse level on
            # a large image) follow that choice.
            config = job.config
            if job.config.optimizer == _AUTO:
                config = config.replace(optimizer=record.config["optimizer"])
                config = auto_coarse_level(config, tuple(record.image_size))[0]
            config = config.resolved()
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:  # NstkitError is a ValueError
            warn(f"resume: run record {record_file} is damaged ({_what_is_wrong(error)}): {again}")
            continue
        asked = json.loads(json.dumps(config.to_dict()))  # as JSON has it: tuples as lists
        differs = _differing(record.config, asked)
        if differs:
            warn(f"resume: {image} was made with another config ({differs}): {again}")
            continue
        try:
            pixels = load_image(image, what="image").astype(np.uint8)
        except (OSError, NstkitError) as error:  # its line without its fix, which is for an input image
            warn(f"resume: {str(error).rsplit(': ', 1)[0] if isinstance(error, NstkitError) else reason(error)}: "
                 f"{again}")
            continue
        row["output"] = str(image)
        chosen = {name: record.config[name] for name, value in asked.items()
                  if value == _AUTO and name in record.config}  # what the run made of "auto"
        done[job.index] = JobOutcome(row, Result(pixels, {}, config.replace(**chosen), record))
    return done


def _what_is_wrong(error: BaseException) -> str:
    """What is wrong with a run record, in a few words."""
    if isinstance(error, NstkitError):
        return str(error)
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error}"
    if isinstance(error, (KeyError, TypeError, AttributeError)):
        return f"not a whole run record: {type(error).__name__} {error}"
    return reason(error)


_AUTO = "auto"  # a field's value that the run chooses when it starts (precision, optimizer): its record says what


def _differing(recorded: Any, wanted: dict[str, Any]) -> str:
    """The config fields where a run record and a point differ, named: "steps 3, not 2".

    A field the point asks as "auto" matches whatever the run chose for it (for its device and image): that
    choice is what "auto" asked for, and the resolution is the run's to make, not the sweep's to repeat.
    """
    if not isinstance(recorded, dict):
        return "no config"
    names = sorted(name for name in {*recorded, *wanted}
                   if recorded.get(name) != wanted.get(name) and wanted.get(name) != _AUTO)
    shown = ", ".join(f"{name} {recorded.get(name)!r}, not {wanted.get(name)!r}" for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


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
    planned = [*paths.values(), *(record(p) for p in paths.values() for record in (record_path, legacy_record_path)),
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
