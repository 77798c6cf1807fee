"""Ctrl-C and SIGTERM: the one place nstkit handles them.

- during a run, `stop_on_signals`: "stop after this step", so the best image so far is kept; a second Ctrl-C
  aborts at once;
- around other work, `on_signals` (a handler for the block, the previous ones back after it), `Interrupted`
  (a signal raised where nothing was computed yet) and `sigterm_as_interrupt` (SIGTERM ends a block as Ctrl-C
  does): the CLI's stylize command and sweeps use them;
- `exit_status`: 128 + the signal's number, the status a shell gives a process a signal ended (130, 143).

Outside the main thread (a notebook panel's worker thread) signals cannot be caught: the block runs as it
is, and a run stops through its ``stop_event`` instead.
"""

from __future__ import annotations

import contextlib
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(sig: int | str) -> int:
    """128 + the signal's number (``sig``: a number or a name such as "SIGTERM"): 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (signal.Signals[sig].value if isinstance(sig, str) else int(sig))


class Interrupted(KeyboardInterrupt):
    """A signal raised as an exception, before anything was computed: its number, name and exit status."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum, self.name = signum, signal.Signals(signum).name
        self.exit_status = exit_status(signum)


@contextlib.contextmanager
def on_signals(handler, signals=STOP_SIGNALS):
    """``handler(signum, frame)`` for ``signals`` while the block runs; the previous handlers are back after it.

    Only the main thread can set handlers: elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, earlier in previous.items():
            signal.signal(sig, earlier)


def stop_on_signals(stop_event: threading.Event, stopped_by: list[str] | None = None):
    """Turn the first Ctrl-C / SIGTERM into "stop after this step"; a second Ctrl-C aborts at once.

    ``stopped_by`` gets the first signal's name ("SIGINT", "SIGTERM"): the CLI's exit status says which.
    """

    def request_stop(signum, frame):
        if stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if stopped_by is not None and not stopped_by:
            stopped_by.append(signal.Signals(signum).name)
        stop_event.set()

    return on_signals(request_stop)


def sigterm_as_interrupt():
    """While the block runs, SIGTERM ends it like Ctrl-C: a KeyboardInterrupt, so whatever stops on Ctrl-C stops."""
    return on_signals(_keyboard_interrupt, (signal.SIGTERM,))


def _keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
