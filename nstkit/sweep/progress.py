"""A sweep's progress: one bar over every run's steps, and the check that a script can start worker processes.

The local pool's workers report each run's step as it goes (`jobs._reporter`, at most twice a second); another
executor's runs (Dask) count when they end. The bar's total is the runs' planned steps, corrected by each run's
own count once it reports (coarse levels and tiled starts add steps).
"""

from __future__ import annotations

import ast
import sys
import threading
from typing import Any, Sequence

from ..core.errors import NstkitError
from .grid import SweepJob


class SweepBar:
    """``with SweepBar(jobs) as bar``: ``bar.step(index, step, steps)`` as runs report, ``bar.finished(index, row)``
    as they end (safe from the pool's threads)."""

    def __init__(self, jobs: Sequence[SweepJob], done_before: int = 0):
        self.planned = {job.index: job.config.resolved().steps for job in jobs}
        self.at = dict.fromkeys(self.planned, 0)
        self.runs, self.ended, self.failed = len(jobs) + done_before, done_before, 0
        self._lock = threading.Lock()
        self.bar = None

    def __enter__(self) -> "SweepBar":
        from tqdm.auto import tqdm

        self.bar = tqdm(total=sum(self.planned.values()), unit="step", dynamic_ncols=True, file=sys.stderr)
        self._show()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def step(self, index: int, step: int, steps: int) -> None:
        with self._lock:
            self.planned[index], self.at[index] = steps, step
            self._show()

    def finished(self, index: int, row: dict[str, Any]) -> None:
        with self._lock:
            self.ended += 1
            self.failed += bool(row.get("error"))
            self.at[index] = self.planned[index] = max(self.at[index], row.get("steps_run") or self.at[index]) or 1
            self._show()

    def _show(self) -> None:
        self.bar.total = sum(self.planned.values())
        self.bar.n = sum(self.at.values())
        failed = f", {self.failed} failed" if self.failed else ""
        self.bar.set_postfix_str(f"runs {self.ended}/{self.runs} done{failed}", refresh=False)
        self.bar.refresh()


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
