"""Helpers the tests share: tiny synthetic images, file hashes, running the CLI.

A module of its own (not conftest.py): notebooks/ has a conftest too, and two modules named
`conftest` cannot both be imported by name."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
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
