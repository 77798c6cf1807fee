"""Helpers the tests share: tiny synthetic images, file hashes, running the CLI.

A module of its own (not conftest.py): notebooks/ has a conftest too, and two modules named
`conftest` cannot both be imported by name."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def smooth_image(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth random colour field: real structure for the network, generated in microseconds."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextlib.contextmanager
def _working_folder(folder: Path):
    """contextlib.chdir, which Python 3.10 lacks."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """``nstkit ARGS`` run in this process (`nstkit.ui.cli.main`), its exit status and what it printed.

    Why not a new process: each pays about 10 s (TensorFlow's import, building and folding the network) before
    its first step, where a second run in one process reuses them; CI runs a few dozen CLI commands. The same
    code path as `python -m nstkit` from argument parsing on; what only a process shows (signals, kills, the
    file-descriptor-level stderr TensorFlow writes to, a second process's bytes) is tested with
    `run_cli_process`. Python's default warning filters apply, as in a fresh interpreter (pytest's own would
    show every library's DeprecationWarning on the captured stderr); ``env`` is added to os.environ for the
    call and ``cwd`` is the working folder for it.
    """
    from nstkit.ui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, {"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}))
        stack.enter_context(warnings.catch_warnings())
        warnings.resetwarnings()
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        stack.enter_context(_working_folder(cwd or ROOT))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            status = main([str(arg) for arg in args])
        except SystemExit as exit:  # argparse's usage errors and --help
            status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    return subprocess.CompletedProcess(["nstkit", *map(str, args)], status, out.getvalue(), err.getvalue())


def run_cli_process(*args: str, timeout: float = 300, env: dict | None = None,
                    cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m nstkit ARGS`` in a new process: for what only a process shows (see `run_cli`)."""
    return subprocess.run([sys.executable, "-m", "nstkit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                          cwd=cwd or ROOT)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def bad_images(tmp_path):
    """Every kind of bad image input, as (path, expected message fragment)."""
    good = io.BytesIO()
    Image.fromarray(smooth_image(8, 64, 64)).save(good, format="PNG")
    cases = {
        "missing.png": (None, "not found"),
        "empty.png": (b"", "empty"),
        "notes.png": (b"this is a text file, not an image\n" * 4, "not an image"),
        "truncated.png": (good.getvalue()[: len(good.getvalue()) // 2], "truncated"),
        "bomb.png": (_png_header_only(40000, 40000), "decompression-bomb"),
    }
    out = []
    for name, (data, message) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        out.append((path, message))
    for name, size in (("dot.png", (1, 1)), ("thin.png", (600, 12))):
        Image.new("RGB", size, (200, 10, 10)).save(tmp_path / name)
        out.append((tmp_path / name, "32 px"))
    return out


def sigterm_at(monkeypatch, module: str, owner: str, attribute: str, call: int, when: str) -> None:
    """This process gets SIGTERM before or after the ``call``-th call of nstkit.{module}.{owner}.{attribute}: a
    signal at a chosen phase of an in-process CLI run (`run_cli`; tests/test_faults.py, video's).

    The CLI's own handlers take it, as they would in a process of its own (they are installed in the main
    thread, where pytest runs a test); a phase left without one would end the test run itself, loudly. A
    function is replaced wherever an nstkit module holds it by name (``from ... import``), a method on its class.
    """
    import importlib

    holder = importlib.import_module(f"nstkit.{module}")
    holder = getattr(holder, owner) if owner else holder
    real = getattr(holder, attribute)
    calls = []

    def inject(*args, **kwargs):
        calls.append(1)
        if len(calls) == call and when == "before":
            os.kill(os.getpid(), signal.SIGTERM)
        result = real(*args, **kwargs)
        if len(calls) == call and when == "after":
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(holder, attribute, inject)
    if not owner:
        for name, loaded in list(sys.modules.items()):
            if name.startswith("nstkit.") and getattr(loaded, attribute, None) is real:
                monkeypatch.setattr(loaded, attribute, inject)
