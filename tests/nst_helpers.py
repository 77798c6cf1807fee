"""Helpers the tests share: tiny synthetic images, file hashes, running the CLI.

A module of its own (not conftest.py): notebooks/ has a conftest too, and two modules named
`conftest` cannot both be imported by name."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

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


def run_cli(*args: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "nstkit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=popen.get("cwd", ROOT))


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


# A CLI run (`python -c SCRIPT stylize ...`) that sends itself SIGTERM before or after the {call}th call of
# nstkit.{module}.{owner}.{attribute}: a signal at a chosen phase of a run (tests/test_faults.py, video's).
SIGTERM_INJECTED = """
import importlib, os, signal, sys
module = importlib.import_module("nstkit.{module}")
owner = getattr(module, "{owner}") if "{owner}" else module
real = getattr(owner, "{attribute}")
calls = []

def inject(*args, **kwargs):
    calls.append(1)
    if len(calls) == {call} and "{when}" == "before":
        os.kill(os.getpid(), signal.SIGTERM)
    result = real(*args, **kwargs)
    if len(calls) == {call} and "{when}" == "after":
        os.kill(os.getpid(), signal.SIGTERM)
    return result

setattr(owner, "{attribute}", inject)
from nstkit.ui.cli import main

sys.exit(main(sys.argv[1:]))
"""
