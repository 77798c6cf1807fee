"""Running a sweep's jobs: one job per grid point, on local processes or any `concurrent.futures` executor.

A job is one top-level function (`run_job`) that gets everything as
arguments and returns plain data (a row and a `Result`), so the same code
runs in a local process pool or on a Dask cluster. Any exception becomes the
row's ``error``: one bad point must not sink the sweep.
"""

from __future__ import annotations

import ast
import concurrent.futures
import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..api.stylize import Result, stylize
from ..core.errors import NstkitError
from ..media.images import ImageInput
from ..objective.terms import HISTORY_KEYS
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
    if _stop_jobs is not None and _stop_jobs.is_set():
        return JobOutcome(failed_row(job, NstkitError("not run: the sweep was stopped"), socket.gethostname()), None)
    try:
        result = stylize(content, style, job.config, stop_event=_stop_jobs,  # None: a fresh event per run
                         callbacks=[_reporter(job)], progress=False)  # the sweep's own bar shows its runs
    except Exception as error:  # noqa: BLE001 - reported in the row, not lost
        return JobOutcome(failed_row(job, error, socket.gethostname()), None)
    return JobOutcome(row_from_record(job, result.record, socket.gethostname()), result)


def _reporter(job: SweepJob):
    """A stylize callback that tells the client how far this job is (in a LocalPool worker; elsewhere, nothing).

    At most one message every `REPORT_SECONDS`, and the last step's, down the pipe the answer comes back on.
    """
    report, last = _report, [0.0]

    def send(progress) -> None:
        if report is None or progress.member:
            return
        now = time.monotonic()
        if now - last[0] >= REPORT_SECONDS or progress.step == progress.steps:
            last[0] = now
            report(("progress", job.index, progress.step, progress.steps))

    return send


REPORT_SECONDS = 0.5


def row_from_record(job: SweepJob, record: dict[str, Any], host: str | None) -> dict[str, Any]:
    """A finished job's table row, from its run record (a job run now, or one a resumed sweep finds done)."""
    return {"job": job.index, **job.params, **{f"final_{term}": record["final_losses"][term] for term in HISTORY_KEYS},
            "best_loss": record["best_loss"], "best_step": record["best_step"], "steps_run": record["steps_run"],
            "seconds_per_step": record["seconds_per_step"], "wall_time_s": record["wall_time_s"],
            "weights_description": record["weights"]["description"], "host": host, "error": None}


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
    from ..network.quiet import import_tensorflow_quietly

    tf, _ = import_tensorflow_quietly()
    tf.config.threading.set_intra_op_parallelism_threads(threads)


class WorkerDied(NstkitError):
    """The process running a job ended without a result: killed (SIGKILL, the out-of-memory killer) or crashed."""


class LocalPool(concurrent.futures.Executor):
    """The default executor: "spawn" processes (TensorFlow is not fork-safe), half the cores, the cores shared out.

    Each worker process runs one job at a time. A worker that dies (SIGKILL,
    the out-of-memory killer, a crash in native code) fails only the job it
    was running, with `WorkerDied` saying how it ended, and a new worker takes
    its place; `concurrent.futures.ProcessPoolExecutor` would instead fail
    every job still queued. The workers share one stop flag: `stop_jobs` ends
    the running jobs after their current step and turns the queued ones into
    "not run" rows, so Ctrl-C or SIGTERM ends a sweep in seconds.
    """

    def __init__(self, workers: int | None = None, jobs: int | None = None):
        self.on_progress: Callable[[int, int, int], Any] | None = None  # (job index, step, steps), from the slots
        cpus = available_cpus()
        self.workers = min(workers or max(1, cpus // 2), jobs or cpus)
        self._context = multiprocessing.get_context("spawn")
        self.stop_event = self._context.Event()
        self._threads_each = max(1, cpus // self.workers)
        self._tasks: queue.Queue = queue.Queue()
        self._processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()
        self._shutdown = False
        self._slots = [threading.Thread(target=self._slot, args=(slot,), daemon=True, name=f"nstkit-pool-{slot}")
                       for slot in range(self.workers)]
        for thread in self._slots:
            thread.start()

    def submit(self, fn, /, *args, **kwargs) -> concurrent.futures.Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a pool that was shut down")
            future: concurrent.futures.Future = concurrent.futures.Future()
            self._tasks.put((future, fn, args, kwargs))
        return future

    def worker_pids(self) -> list[int]:
        """The worker processes' ids, for tools (and tests) that watch them."""
        with self._lock:
            return [process.pid for process in self._processes.values() if process.is_alive()]

    def stop_jobs(self) -> None:
        self.stop_event.set()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    future, *_ = self._tasks.get_nowait()
                except queue.Empty:
                    break
                future.cancel()
        for _ in self._slots:
            self._tasks.put(None)
        if wait:
            for thread in self._slots:
                thread.join()

    def _start_process(self, slot: int):
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, self._threads_each, self.stop_event),
                                        daemon=True, name=f"nstkit-worker-{slot}")
        process.start()
        child.close()
        with self._lock:
            self._processes[slot] = process
        return process, parent

    def _slot(self, slot: int) -> None:
        """One worker's loop in the client: hand it a job, wait for its answer or its death, repeat."""
        process = connection = None
        try:
            while True:
                task = self._tasks.get()
                if task is None:
                    return
                future, fn, args, kwargs = task
                if not future.set_running_or_notify_cancel():
                    continue
                if process is None or not process.is_alive():
                    process, connection = self._start_process(slot)
                try:
                    connection.send((fn, args, kwargs))
                    answer = _answer(process, connection, self.on_progress)
                except (OSError, EOFError, BrokenPipeError):
                    answer = None
                if answer is None:
                    future.set_exception(WorkerDied(f"the worker running it {_how_it_ended(process)}"))
                    process.join(5)
                    process = None
                elif answer[0] == "ok":
                    future.set_result(answer[1])
                else:
                    future.set_exception(answer[1])
        finally:
            if process is not None and process.is_alive():
                try:
                    connection.send(None)
                    process.join(10)
                except (OSError, BrokenPipeError):
                    pass
                if process.is_alive():
                    process.terminate()


def _answer(process, connection, on_progress=None):
    """("ok", result) / ("error", exception) from the worker, or None if it died first; its progress reports on
    the way go to ``on_progress``."""
    while True:
        if not connection.poll(0.2):
            if process.is_alive():
                continue
            if not connection.poll(0):  # it died, and said everything it had to say
                return None
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return None
        if message[0] != "progress":
            return message
        if on_progress is not None:
            on_progress(*message[1:])


def _how_it_ended(process) -> str:
    process.join(5)
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        return f"was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"exited with status {code}" if code is not None else "stopped answering"


def _worker_main(connection, threads: int, stop_event) -> None:
    """A LocalPool worker: run jobs sent down ``connection`` until it sends None."""
    global _report
    _start_worker(threads, stop_event)
    _report = connection.send
    while True:
        message = connection.recv()
        if message is None:
            return
        fn, args, kwargs = message
        try:
            connection.send(("ok", fn(*args, **kwargs)))
        except BaseException as error:  # noqa: BLE001 - sent back to the client, which reports it in the row
            connection.send(("error", error))


def default_executor(workers: int | None = None, jobs: int | None = None) -> LocalPool:
    return LocalPool(workers, jobs)


_stop_jobs = None  # in a LocalPool worker: the pool's shared stop flag
_report = None  # in a LocalPool worker: sends a progress report to the client


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


def check_main_guard() -> None:
    """Refuse, in one line, a sweep started at a script's top level without ``if __name__ == "__main__":``.

    The local pool starts its workers with "spawn" (TensorFlow is not fork-safe), and each worker imports the
    main script again: unguarded, the script's sweep runs once more inside every worker, which fails while
    starting and leaves the sweep waiting. Notebooks, the REPL and ``python -c`` have no script to import.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or not path.endswith(".py"):
        return
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if name == "__main__" or name.endswith(".__main__"):
        return  # `python -m package`: spawn never runs a package's __main__ again (multiprocessing.spawn)
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") != "__main__":
        frame = frame.f_back
    if frame is None or frame.f_code.co_name != "<module>":
        return  # called from a function of the script: a guard (or no import-time call) is the script's choice
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, ValueError):
        return
    line = frame.f_lineno
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= (node.end_lineno or 0):
            return
    raise NstkitError(f"{path} starts a sweep at its top level: put the sweep under "
                      "`if __name__ == \"__main__\":` (its worker processes import the script again), or pass "
                      "executor= (e.g. a Dask client's)")


def _is_main_test(test: ast.expr) -> bool:
    names = {getattr(node, "id", None) for node in ast.walk(test)} | \
        {getattr(node, "value", None) for node in ast.walk(test)}
    return "__name__" in names and "__main__" in names
