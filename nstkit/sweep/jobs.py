"""Running a sweep's jobs: one job per grid point, on local processes or any `concurrent.futures` executor.

A job is one top-level function (`run_job`) that gets everything as
arguments and returns plain data (a row and a `Result`), so the same code
runs in a local process pool or on a Dask cluster. Any exception becomes the
row's ``error``: one bad point must not sink the sweep.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

from ..errors import NstkitError
from ..images import ImageInput
from ..objective import HISTORY_KEYS
from ..optimize import Result, stylize
from .grid import SweepJob

# The row's columns after the grid's own: what a run measured (no name a StyleConfig field has).
METRIC_COLUMNS = (*(f"final_{term}" for term in HISTORY_KEYS), "best_loss", "best_step", "steps_run",
                  "seconds_per_step", "wall_time_s", "weights_description", "host")


@dataclass
class JobOutcome:
    """What a worker sends back: the table row, and the run itself unless it failed."""

    row: dict[str, Any]
    result: Result | None


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
    row.update({f"final_{term}": record["final_losses"][term] for term in HISTORY_KEYS})
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
    from ..quiet import import_tensorflow_quietly

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


def _one_line(error: BaseException) -> str:
    """An NstkitError's own line; anything else (a bug, a dead worker) with its type in front."""
    text = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, NstkitError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
