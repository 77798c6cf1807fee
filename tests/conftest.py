"""Shared fixtures: tiny synthetic images and helpers for running the CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def smooth_image(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth random colour field: real structure for the network, generated in microseconds."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


@pytest.fixture
def tiny_pair(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(smooth_image(1)).save(content)
    Image.fromarray(smooth_image(2, 40, 40)).save(style)
    return content, style


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_cli(*args: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "nstkit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=popen.get("cwd", ROOT))
