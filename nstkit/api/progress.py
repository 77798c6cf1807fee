"""Progress while a run runs: a tqdm bar with the loss terms and the time left, and the estimate behind it.

`stylize`, `stylize_batch`, `stylize_tiled` and `stylize_video` take ``progress``: True, False, or None (the
default: on where someone watches, in a notebook or a terminal; off in a pipe, a log or a test). The bar is
``tqdm.auto``'s, so Jupyter shows a widget and a terminal a text line, on standard error. It opens at the first
step, so loading the network (or a failed ImageNet download) prints no empty bar, and it closes when the run
ends however it ends.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..core.errors import NstkitError

WARM_UP_STEPS = 4
LONG_RUN_SECONDS = 60.0  # a run expected to take longer says so, once its warm-up steps are measured


def expected_seconds(steps: int, seconds_per_step: float, seconds_per_run: float = 0.0) -> float:
    """A run's time: its steps at the measured speed, plus what building and tracing it adds."""
    return seconds_per_run + steps * seconds_per_step


class RunTimeEstimate:
    """Seconds left in a running run, from its own steps (a callback: pass it to ``stylize``).

    The current stage's median step (its first, the trace, left out) times its
    steps left; later stages' steps scaled by their area against this
    stage's (their traces, a few seconds each, are not counted). ``ready`` once `WARM_UP_STEPS`
    steps after the trace are measured; `seconds_left` is None before that.
    """

    def __init__(self, warm_up: int = WARM_UP_STEPS):
        self.warm_up = warm_up
        self.seconds_left: float | None = None
        self.per_step: float | None = None
        self._stage = None
        self._times: list[float] = []
        self._last = None

    @property
    def ready(self) -> bool:
        return self.seconds_left is not None

    def __call__(self, progress) -> None:
        if progress.member:
            return  # a batch reports each member; one clock is enough
        now = time.perf_counter()
        if progress.stage != self._stage:
            self._stage, self._times, self._last = progress.stage, [], None
        if self._last is not None:  # a stage's first step (its trace) has no interval before it: left out
            self._times.append(now - self._last)
        self._last = now
        if len(self._times) < self.warm_up:
            return
        schedule = progress.schedule
        self.per_step = float(np.median(self._times))
        stage = schedule[progress.stage]
        # A float32 finish (`Stage.shares_steps`, the last stage) runs what the plan has left.
        left = expected_seconds(progress.steps - progress.step if stage.shares_steps else
                                stage.steps - progress.stage_step, self.per_step)
        area = stage.size[0] * stage.size[1]
        for later in schedule[progress.stage + 1:]:
            if not later.shares_steps:  # its steps are counted in the stage before it
                left += expected_seconds(later.steps, self.per_step * later.size[0] * later.size[1] / area)
        self.seconds_left = left

    def line(self) -> str:
        """'about 4 min left (0.241 s/step measured)'."""
        return f"about {format_duration(self.seconds_left)} left ({self.per_step:.3f} s/step measured here)"


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


PROGRESS_ENV = "NSTKIT_PROGRESS"  # 0 or 1: the default for every run of this process (stored notebook outputs: 0)


def wanted(progress: bool | None) -> bool:
    """``progress`` as given; for None, ``NSTKIT_PROGRESS`` (0 or 1) if set, else whether anyone is watching:
    a Jupyter kernel or a terminal."""
    if progress is not None:
        return bool(progress)
    setting = os.environ.get(PROGRESS_ENV, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    if setting:
        raise NstkitError(f"{PROGRESS_ENV}={setting}: use 0 (no progress bars) or 1 (always)")
    return _in_jupyter() or _stderr_is_a_terminal()


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _stderr_is_a_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class ProgressBar:
    """A run's bar: steps over all stages (and frames, for a clip), the weighted loss terms, the time left.

    A callback (``callbacks=[bar]``); `close` it when the run ends. A batch reports every member each step: the
    bar counts steps once and shows the first member's losses. Once the warm-up steps are measured, a run
    expected to take over `LONG_RUN_SECONDS` says so in one line (`RunTimeEstimate.line`).
    """

    def __init__(self, *, announce: bool = True, stop_hint: str = "; Ctrl-C stops and keeps the best image so far"):
        self.bar = None
        self.announce, self.stop_hint = announce, stop_hint
        self.estimate = RunTimeEstimate()

    def __call__(self, progress) -> None:
        if getattr(progress, "member", 0):
            return
        frames = getattr(progress, "frames", None)
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=progress.steps, initial=progress.step - 1, unit="step", dynamic_ncols=True,
                            file=sys.stderr)
            if progress.step > 1 and frames is None:  # its first step is not the run's first: resumed
                self.bar.write(f"nstkit: resuming from step {progress.step - 1} of {progress.steps}", file=sys.stderr)
        if frames is None:
            self.estimate(progress)
            if self.announce and self.estimate.ready:
                self.announce = False  # said once, from the warm-up; tqdm's own ETA follows it from there
                if self.estimate.seconds_left > LONG_RUN_SECONDS:
                    self.bar.write(f"nstkit: {self.estimate.line()}{self.stop_hint}", file=sys.stderr)
        where = {"frame": f"{progress.frame + 1}/{frames}"} if frames is not None else {}
        self.bar.set_postfix({**where, **{k: f"{v:.3g}" for k, v in progress.losses.items()}}, refresh=False)
        self.bar.update(progress.step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class progress_bar:
    """``with progress_bar(progress) as bar:`` a `ProgressBar` if ``progress`` wants one (`wanted`), else None;
    closed on the way out, whatever ended the run.

    While it is open, a warning (``nstkit: warning: ...``, or any other) clears the bar's line first and the bar
    is drawn again below it: a warning during a run starts a line of its own, not after the bar's text.
    """

    def __init__(self, progress: bool | None, **options):
        self.bar = ProgressBar(**options) if wanted(progress) else None
        self.shown = None

    def __enter__(self) -> ProgressBar | None:
        if self.bar is not None:
            import warnings

            self.shown = warnings.showwarning
            warnings.showwarning = self.show_warning
        return self.bar

    def show_warning(self, *args, **kwargs) -> None:
        if self.bar is None or self.bar.bar is None:  # closed, or not drawn yet
            return self.shown(*args, **kwargs)
        with self.bar.bar.external_write_mode(file=sys.stderr):
            self.shown(*args, **kwargs)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            import warnings

            if warnings.showwarning == self.show_warning:  # else someone set their own meanwhile: theirs stays
                warnings.showwarning = self.shown
            self.bar.close()
