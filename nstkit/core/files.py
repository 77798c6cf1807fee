"""Atomic file writes: a run killed mid-save never leaves half an image or half a record.

The temp file `tempfile.mkstemp` makes is private (mode 0600), and a rename
keeps that mode; outputs instead get the mode the user's umask gives (as any
tool's would), or keep the mode of the file they replace.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Yield a handle to a temp file beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.chmod(tmp, _output_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


RESCUE_FOLDER = "nstkit-rescued"  # in the system's temp folder: where results go when their folder cannot take them


def rescue_paths(path: Path) -> list[Path]:
    """Places to put an output that could not be written at ``path``, in the order to try them.

    Beside it under another name (a quota or a single bad file may still
    allow that), then the system's temp folder, then the home folder: each
    name carries the time, so a rescue never replaces another.
    """
    import tempfile
    import time

    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{path.stem}.rescued-{stamp}{path.suffix}"
    return [path.with_name(name), Path(tempfile.gettempdir()) / RESCUE_FOLDER / name,
            Path.home() / RESCUE_FOLDER / name]


def reason(error: BaseException) -> str:
    """What went wrong writing a file, in a few words: "No space left on device", "Read-only file system"."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _output_mode(path: Path) -> int:
    """The existing file's mode, else 0666 less the process's umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it; put it straight back
        os.umask(umask)
        return 0o666 & ~umask
