"""A sweep's progress: one bar over every run's steps.

The local pool's workers report each run's step as it goes (`jobs._reporter`, at most twice a second); another
executor's runs (Dask) count when they end. The bar's total is the runs' planned steps, corrected by each run's
own count once it reports (coarse levels and tiled starts add steps).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Sequence

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
