"""Parameter sweeps: `sweep(content, style, grid, executor=...) -> SweepResult`.

A sweep runs `stylize` once per point of a grid of `StyleConfig` values and
gathers a tidy table (one row per run) and a contact sheet::

    grid {style_weight: [1e6, 1e7], preset: [robust, vanilla]}
      -> jobs 0..3, last key fastest -> executor.submit(run_job, job, content, style) -> rows + images

Any `concurrent.futures.Executor` runs the jobs: local processes by default,
or a Dask cluster through ``distributed.Client(address).get_executor()``.
The same code serves both because a job is one top-level function that gets
everything as arguments and returns plain data (a row and a `Result`).
Every job's config is validated before the first one is submitted, so a
typo in the grid costs nothing; a job that fails while running only loses
its own row's image (its row says why). Ctrl-C or SIGTERM stop the whole
sweep within a step, workers included.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import dataclasses
import difflib
import itertools
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .config import INIT_CHOICES, StyleConfig
from .errors import NstkitError
from .files import atomic_write
from .images import ImageInput, check_output_path, load_image, save_image
from .optimize import LOSS_TERMS, Result, stylize
from .record import build_record
from .runs import style_blend

FIELDS = tuple(f.name for f in dataclasses.fields(StyleConfig))
SUMMARY_FILES = ("sweep.csv", "contact_sheet.png", "sweep.json")
# The row's columns after the grid's own: what a run measured (no name a StyleConfig field has).
METRIC_COLUMNS = (*(f"final_{term}" for term in LOSS_TERMS), "best_loss", "best_step", "steps_run",
                  "seconds_per_step", "wall_time_s", "weights_description", "host")
# Fields whose one value is itself a comma-separated list, so their --grid values are separated by ';'.
_LIST_VALUED = {"style_layers", "content_layers", "swag_layers", "style_blend"}
SHEET_GAP = 4  # px around every contact-sheet cell
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class SweepJob:
    """One grid point: its position, the values it varies, and the full (unresolved) config it runs."""

    index: int
    params: dict[str, Any]
    config: StyleConfig

    def label(self, keys: Sequence[str] | None = None) -> str:
        """``style_weight=1e+06 preset=robust``, for log lines and the contact sheet."""
        return " ".join(f"{key}={short_value(self.params[key])}" for key in (keys or self.params))

    def file_stem(self) -> str:
        """A file name from the index and the values: sortable, shell-safe, never shared by two jobs."""
        values = "_".join(f"{key}-{short_value(value)}" for key, value in self.params.items())
        return f"{self.index:03d}_{re.sub(r'[^A-Za-z0-9.+-]+', '-', values)[:80].strip('-')}"


@dataclass
class JobOutcome:
    """What a worker sends back: the table row, and the run itself unless it failed."""

    row: dict[str, Any]
    result: Result | None


def grid_axes(grid: Mapping[str, Sequence]) -> dict[str, list]:
    """Check the grid's keys and value lists; numpy scalars become Python numbers (StyleConfig checks types)."""
    if not isinstance(grid, Mapping) or not grid:
        raise NstkitError("the grid is empty: give StyleConfig fields and their values, "
                          "e.g. {'style_weight': [1e6, 1e7]}")
    axes: dict[str, list] = {}
    for key, values in grid.items():
        if key not in FIELDS:
            raise NstkitError(f"grid key {key!r} is not a StyleConfig field{_did_you_mean(key)}; "
                              f"valid fields are {', '.join(FIELDS)}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)):
            raise NstkitError(f"grid[{key!r}] must be a list of values, e.g. [{values!r}]; got {values!r}")
        if len(values) == 0:
            raise NstkitError(f"grid[{key!r}] is empty: give at least one value")
        axes[key] = [value.item() if isinstance(value, np.generic) else value for value in values]
    return axes


def expand_grid(grid: Mapping[str, Sequence], config: StyleConfig | None = None,
                **options: Any) -> list[SweepJob]:
    """The cartesian product of ``grid`` (last key varies fastest), every point validated.

    Raises `NstkitError` naming the first bad key or value, before anything runs.
    """
    axes = grid_axes(grid)
    for key in axes:
        if key in options:
            raise NstkitError(f"{key} is both in the grid and given as an option: keep one")
    base = (config or StyleConfig()).replace(**options)
    jobs = []
    for index, values in enumerate(itertools.product(*axes.values())):
        params = dict(zip(axes, values))
        job = SweepJob(index, params, base.replace(**params))
        try:
            job.config.resolved()
        except NstkitError as error:
            raise NstkitError(f"grid point {job.label()}: {error}") from None
        except (TypeError, ValueError, AttributeError) as error:  # e.g. a number where a layer spec belongs
            raise NstkitError(f"grid point {job.label()} is not a valid config ({error})") from None
        jobs.append(job)
    return jobs


def parse_grid(specs: Sequence[str]) -> dict[str, list]:
    """``["style_weight=1e6,1e7", "preset=robust"]`` -> ``{"style_weight": [1e6, 1e7], "preset": ["robust"]}``.

    Values take their field's type (int, float, bool, str); layer specs stay
    strings. Fields whose value is itself a list (layers, style_blend)
    separate their values with ';'.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        key, equals, text = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise NstkitError(f"--grid {spec!r} must be FIELD=VALUE[,VALUE...], e.g. style_weight=1e6,1e7")
        if key not in FIELDS:
            raise NstkitError(f"--grid {key!r} is not a StyleConfig field{_did_you_mean(key)}; "
                              f"valid fields are {', '.join(FIELDS)}")
        if key in grid:
            raise NstkitError(f"--grid {key} is given twice: list all its values once, e.g. {key}=a,b")
        parts = [part.strip() for part in text.split(";" if key in _LIST_VALUED else ",")]
        if not text.strip() or not all(parts):
            raise NstkitError(f"--grid {spec!r} has an empty value: write {key}=V1,V2 with no empty items")
        grid[key] = [_parse_value(key, part) for part in parts]
    return grid


def run_job(job: SweepJob, content: ImageInput, style: ImageInput | list) -> JobOutcome:
    """Run one grid point, in whichever process the executor chose.

    Top level (so it pickles by name) and self-contained: a Dask worker needs
    only nstkit installed. Any exception becomes the row's ``error``: one bad
    point must not sink the sweep.
    """
    row: dict[str, Any] = {"job": job.index, **job.params}
    if _stop_jobs is not None and _stop_jobs.is_set():
        return JobOutcome(failed_row(job, NstkitError("not run: the sweep was stopped"), socket.gethostname()), None)
    try:
        result = stylize(content, style, job.config, stop_event=_stop_jobs)  # None: a fresh event per run
    except Exception as error:  # noqa: BLE001 - reported in the row, not lost
        return JobOutcome(failed_row(job, error, socket.gethostname()), None)
    record = result.record
    row.update({f"final_{term}": record["final_losses"][term] for term in LOSS_TERMS})
    row.update(best_loss=record["best_loss"], best_step=record["best_step"], steps_run=record["steps_run"],
               seconds_per_step=record["seconds_per_step"], wall_time_s=record["wall_time_s"],
               weights_description=record["weights"]["description"], host=socket.gethostname(), error=None)
    return JobOutcome(row, result)


def failed_row(job: SweepJob, error: BaseException, host: str | None) -> dict[str, Any]:
    """A row with no measurements, and the error in one line (``host`` is None if the worker is unknown)."""
    return {"job": job.index, **job.params, **dict.fromkeys(METRIC_COLUMNS), "host": host,
            "error": _one_line(error)}


def available_cpus() -> int:
    """CPUs this process may use (the affinity mask, as TensorFlow counts them), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def limit_tf_threads(threads: int) -> None:
    """Give this process's TensorFlow ``threads`` intra-op threads; call it before TensorFlow runs an op.

    Workers that each take every core oversubscribe the machine. The count
    also decides the order of float sums, so a run is byte-identical to one in
    another process only at the same intra-op thread count.
    """
    from .quiet import import_tensorflow_quietly

    tf, _ = import_tensorflow_quietly()
    tf.config.threading.set_intra_op_parallelism_threads(threads)


class LocalPool(concurrent.futures.ProcessPoolExecutor):
    """The default executor: "spawn" processes (TensorFlow is not fork-safe), half the cores, the cores shared out.

    The workers share one stop flag: `stop_jobs` ends the running jobs after
    their current step and turns the queued ones into "not run" rows, so
    Ctrl-C or SIGTERM ends a sweep in seconds, not after the jobs already
    handed to a worker.
    """

    def __init__(self, workers: int | None = None, jobs: int | None = None):
        cpus = available_cpus()
        workers = min(workers or max(1, cpus // 2), jobs or cpus)
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        super().__init__(max_workers=workers, mp_context=context, initializer=_start_worker,
                         initargs=(max(1, cpus // workers), self.stop_event))

    def stop_jobs(self) -> None:
        self.stop_event.set()


def default_executor(workers: int | None = None, jobs: int | None = None) -> LocalPool:
    return LocalPool(workers, jobs)


_stop_jobs = None  # in a LocalPool worker: the pool's shared stop flag


def _start_worker(threads: int, stop_event) -> None:
    """LocalPool initializer: the thread share, the stop flag, and Ctrl-C left to the run in progress.

    Idle, a worker ignores SIGINT (the terminal sends it to the whole process
    group; the client decides what stops). During a run, `stylize` turns it
    into "stop after this step" and sets the shared flag.
    """
    global _stop_jobs
    _stop_jobs = stop_event
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_tf_threads(threads)


def sweep(content: ImageInput, style: ImageInput | Sequence[ImageInput], grid: Mapping[str, Sequence],
          config: StyleConfig | None = None, *, executor: concurrent.futures.Executor | None = None,
          workers: int | None = None, out_dir: os.PathLike | str | None = None, overwrite: bool = False,
          on_row: Callable[[dict], Any] | None = None, **options: Any) -> SweepResult:
    """Run `stylize` for every point of ``grid`` on ``executor``; rows and images come back in grid order.

    ``grid`` maps `StyleConfig` fields to lists of values; ``options`` fix
    other fields for every job (as in `stylize`). ``executor`` is any
    `concurrent.futures.Executor`, e.g. ``distributed.Client(address).get_executor()``;
    without one, ``workers`` local processes run the jobs and are shut down
    after. Paths travel as paths (a cluster's workers must see them), arrays
    are pickled. With ``out_dir``, each image and its run record are saved as
    its job finishes, then `SweepResult.save` writes the table, the contact
    sheet and sweep.json there; existing sweep outputs are refused unless
    ``overwrite``. ``on_row`` sees each row as its job finishes.
    """
    jobs = expand_grid(grid, config, **options)
    # PIL images become arrays (plain data to pickle); paths stay paths.
    content = _portable(content)
    styles = [_portable(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    style_arg = styles if isinstance(style, (list, tuple)) else styles[0]  # as stylize would get it
    for job in jobs:
        try:
            style_blend(job.config, len(styles))
        except NstkitError as error:
            raise NstkitError(f"grid point {job.label()}: {error}") from None
    if executor is not None and workers is not None:
        raise NstkitError("workers sets the size of the default local pool; with your own executor, size that instead")
    _check_inputs(content, styles, jobs, local=executor is None)
    outputs = _plan_outputs(Path(out_dir), jobs, overwrite) if out_dir is not None else None
    inputs = tuple(s for s in (content, *styles) if isinstance(s, (str, os.PathLike)))  # never overwritten

    own_executor = executor is None
    executor = executor or default_executor(workers, len(jobs))
    try:
        outcomes = _gather(executor, jobs, content, style_arg, outputs, inputs, on_row)
    finally:
        if own_executor:
            executor.shutdown(wait=True, cancel_futures=True)

    result = SweepResult(
        grid=grid_axes(grid),
        config=(config or StyleConfig()).replace(**options),
        rows=[outcome.row for outcome in outcomes],
        images=[outcome.result.image if outcome.result else None for outcome in outcomes],
        records=[outcome.result.record if outcome.result else None for outcome in outcomes],
        inputs={"content": _describe(content), "style": [_describe(s) for s in styles]})
    if out_dir is not None:
        result.save(out_dir, overwrite=True)  # refused up front already if it held outputs
    return result


@dataclass
class SweepResult:
    """One row, image and run record per grid point, in grid order (``None`` image for a failed job)."""

    grid: dict[str, list]
    config: StyleConfig  # the base config every job started from, options applied, unresolved
    rows: list[dict[str, Any]]
    images: list[np.ndarray | None]
    records: list[dict[str, Any] | None]
    inputs: dict[str, Any]

    @property
    def varied(self) -> list[str]:
        """Grid keys with more than one value (all keys if none varies): what tells the runs apart."""
        return [key for key, values in self.grid.items() if len(values) > 1] or list(self.grid)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row.get("error")]

    def labels(self) -> list[str]:
        return [" ".join(f"{key}={short_value(row[key])}" for key in self.varied) for row in self.rows]

    def table(self, columns: Sequence[str] | None = None, floats: str = "{:.4g}") -> str:
        """A markdown table of the rows; by default every column that is not empty in every row."""
        columns = list(columns or (c for c in self.rows[0] if any(row.get(c) is not None for row in self.rows)))

        def cell(value):
            text = "" if value is None else floats.format(value) if isinstance(value, float) else str(value)
            return text.replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in self.rows]
        return "\n".join(lines)

    def to_csv(self, path: os.PathLike | str) -> Path:
        """Every column of every row, written atomically (an empty cell is ``None``)."""
        path = Path(path)
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        with atomic_write(path, "w") as handle:
            writer = csv.DictWriter(handle, columns, lineterminator="\n")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({key: _csv_cell(row.get(key)) for key in columns})
        return path

    def contact_sheet(self, thumb: int = 128, columns: int | None = None) -> np.ndarray:
        """Thumbnails in a grid (the last varied key along a row), each labelled below; uint8 RGB.

        Every cell is ``thumb`` px square plus its label, with `SHEET_GAP` px
        around it; a failed job's cell says "failed".
        """
        count = len(self.rows)
        columns = columns or min(count, len(self.grid[self.varied[-1]]) if len(self.varied) > 1 else count, 8)
        rows = math.ceil(count / columns)
        font = ImageFont.load_default()
        line_height = _text_height(font) + 2
        label_height = line_height * len(self.varied) + 2
        cell_w, cell_h = thumb + SHEET_GAP, thumb + label_height + SHEET_GAP
        sheet = Image.new("RGB", (SHEET_GAP + columns * cell_w, SHEET_GAP + rows * cell_h), _BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        for index, (image, row) in enumerate(zip(self.images, self.rows)):
            left = SHEET_GAP + (index % columns) * cell_w
            top = SHEET_GAP + (index // columns) * cell_h
            if image is not None:
                sheet.paste(Image.fromarray(thumbnail(image, thumb)), (left, top))
            else:
                draw.rectangle((left, top, left + thumb - 1, top + thumb - 1), fill=(224, 224, 224))
                draw.text((left + 4, top + thumb // 2 - line_height // 2), "failed", fill=(160, 0, 0), font=font)
            for line, key in enumerate(self.varied):
                text = _fit(f"{key}={short_value(row[key])}", font, thumb)
                draw.text((left, top + thumb + 2 + line * line_height), text, fill=(0, 0, 0), font=font)
        return np.asarray(sheet)

    def save(self, directory: os.PathLike | str, *, overwrite: bool = False, thumb: int = 128) -> list[Path]:
        """Write ``sweep.csv``, ``contact_sheet.png`` and ``sweep.json`` (grid, base config, inputs, rows)."""
        directory = Path(directory)
        paths = [directory / name for name in SUMMARY_FILES]
        existing = [p.name for p in paths if p.exists()]
        if existing and not overwrite:
            raise NstkitError(f"{directory} already holds {', '.join(existing)}: choose another folder "
                              "or pass overwrite=True")
        directory.mkdir(parents=True, exist_ok=True)
        csv_path, sheet_path, json_path = paths
        self.to_csv(csv_path)
        save_image(sheet_path, self.contact_sheet(thumb))
        # The grid as a list: canonical JSON sorts keys, and the order of the fields is the order of the jobs.
        summary = build_record(grid=[{"field": key, "values": values} for key, values in self.grid.items()],
                               config=self.config.to_dict(), inputs=self.inputs, rows=self.rows)
        with atomic_write(json_path, "w") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True, default=_jsonable)
            handle.write("\n")
        return paths


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` scaled to fit a ``size`` px square (aspect kept), centred on the sheet's background."""
    pil = Image.fromarray(image)
    scale = size / max(pil.size)
    fitted = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))),
                        Image.Resampling.LANCZOS)
    square = Image.new("RGB", (size, size), _BACKGROUND)
    square.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    return np.asarray(square)


def dask_client(address: str, timeout: float = 20):
    """``distributed.Client(address)``, with a missing package or an unreachable scheduler as one line."""
    try:
        from distributed import Client
    except ImportError:
        raise NstkitError("a Dask scheduler needs the distributed package: pip install distributed") from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as error:
        raise NstkitError(f"could not reach the Dask scheduler at {address} ({_one_line(error)}): start one with "
                          "`dask scheduler` and check the address, e.g. tcp://host:8786") from None


def _gather(executor, jobs, content, style, outputs, inputs, on_row) -> list[JobOutcome]:
    """Submit every job, then take each outcome as it finishes (saving its image if asked): grid order out."""
    if isinstance(executor, LocalPool):
        executor.stop_event.clear()  # a pool reused after an interrupted sweep
    outcomes: list[JobOutcome] = [None] * len(jobs)
    futures: dict[concurrent.futures.Future, SweepJob] = {}
    try:
        with _sigterm_as_interrupt():
            futures = {executor.submit(run_job, job, content, style): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - the worker died or the result did not come back
                    outcome = JobOutcome(failed_row(job, error, None), None)
                if outputs is not None:
                    outcome.row["output"] = (str(outcome.result.save(outputs[job.index], protect=inputs))
                                             if outcome.result is not None else None)
                outcomes[job.index] = outcome
                if on_row is not None:
                    on_row(outcome.row)
    except BaseException:  # Ctrl-C, SIGTERM, a failing on_row: stop what runs, start nothing more
        if isinstance(executor, LocalPool):
            executor.stop_jobs()
        raise
    finally:
        for future in futures:
            future.cancel()
    return outcomes


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While a sweep waits on its jobs, SIGTERM ends it like Ctrl-C (so its worker processes stop too)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_inputs(content, styles, jobs: Sequence[SweepJob], *, local: bool) -> None:
    """Fail on a bad image or weights file before any job starts.

    A path is checked only when the jobs run here (the default pool): a
    cluster's workers may see files this machine does not.
    """
    from .backbone import parse_weights  # TensorFlow-free

    images = [(content, "content image"),
              *((s, "style image" if len(styles) == 1 else f"style image {i + 1}") for i, s in enumerate(styles))]
    for max_dim in sorted({job.config.max_dim for job in jobs}):
        for source, what in images:
            if local or not isinstance(source, (str, os.PathLike)):
                load_image(source, max_dim, what=what)
    for weights in dict.fromkeys(job.config.weights for job in jobs):
        if local or weights == "imagenet" or weights.startswith("random"):
            parse_weights(weights)
    if local:
        for init in dict.fromkeys(job.config.init for job in jobs):
            if init not in INIT_CHOICES:
                load_image(init, None, what="init image", check_min_size=False)


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


def _parse_value(key: str, text: str) -> Any:
    kind, item = _field_kind(key)
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise ValueError
            return lowered in ("true", "yes", "1", "on")
        if kind is int:
            number = float(text)
            if not math.isfinite(number) or number != int(number):
                raise ValueError
            return int(number)
        if kind is float:
            return float(text)
        if kind is list:
            return [item(part) for part in text.split(",")]
    except ValueError:
        need = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "numbers, e.g. 0.7,0.3")
        raise NstkitError(f"--grid {key}: {text!r} is not {need}") from None
    return text  # str fields, and layer specs (parsed by StyleConfig)


def _field_kind(key: str) -> tuple[type, type | None]:
    """(bool | int | float | str | list, item type) for a StyleConfig field; layer specs count as str."""
    hint = typing.get_type_hints(StyleConfig)[key]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0]
    if typing.get_origin(base) is list:
        return list, typing.get_args(base)[0]
    if typing.get_origin(base) is dict:
        return str, None
    return base, None


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def short_value(value: Any) -> str:
    """A value as labels and file names show it: 1e+06, conv1_relu,conv2_block1_out:2, 0.7,0.3."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{k}:{w:g}" if w != 1 else k for k, w in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(short_value(v) for v in value)
    return str(value)


def _one_line(error: BaseException) -> str:
    """An NstkitError's own line; anything else (a bug, a dead worker) with its type in front."""
    text = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, NstkitError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _portable(source: Any) -> Any:
    return np.asarray(source) if isinstance(source, Image.Image) else source


def _describe(source: Any) -> dict[str, Any]:
    if isinstance(source, (str, os.PathLike)):
        return {"path": str(source)}
    return {"array_shape": list(np.shape(source))}


def _csv_cell(value: Any) -> Any:
    return "" if value is None else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _text_height(font) -> int:
    return font.getbbox("Ag")[3]  # the bottom of the box, from the drawing origin


def _fit(text: str, font, width: int) -> str:
    """Cut ``text`` to ``width`` px with an ellipsis (layer specs and paths can be long)."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
