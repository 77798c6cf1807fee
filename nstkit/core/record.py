"""The JSON run record written beside every output image.

It answers "what made this picture?" months later: the resolved config
(feed the record to `StyleConfig.from_record` to rerun), the
weights (ImageNet, a file with its md5, or seeded random), the inputs with
their checksums, the package versions, the device and the wall time.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .config import INIT_CHOICES
from .files import atomic_write

RECORD_VERSION = 3  # 2: one schema for every run: `stages` (was `levels`), tile fields per stage; 3: swag
# "softmax" is the paper's Eq. 11 (was nstkit's relative form, now "softmax_relative"; `StyleConfig.from_record`)
_PACKAGES = ("nstkit", "tensorflow", "keras", "numpy", "pillow")


def describe_input(source: Any) -> dict[str, Any]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    array = np.asarray(source)
    return {"array_shape": list(array.shape),
            "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()}


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def build_record(**fields: Any) -> dict[str, Any]:
    return {"record_version": RECORD_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(), **fields}


def record_path(image_path: os.PathLike | str) -> Path:
    """``out.png`` -> ``out.json``."""
    return Path(image_path).with_suffix(".json")


def write_record(image_path: os.PathLike | str, record: dict[str, Any]) -> Path:
    """Write the record beside the image, atomically, with canonical (sorted, indented) JSON."""
    path = record_path(image_path)
    with atomic_write(path, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True, default=_jsonable)
        handle.write("\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def describe_inputs(content: Any, styles: list, init: str, mask: str | None = None) -> dict[str, Any]:
    """The run record's ``inputs``: content, one or several styles, the init image and the mask if given."""
    return {"content": describe_input(content),
            **({"style": describe_input(styles[0])} if len(styles) == 1 else
               {f"style_{i + 1}": describe_input(s) for i, s in enumerate(styles)}),
            **({"init": describe_input(init)} if init not in INIT_CHOICES else {}),
            **({"mask": describe_input(mask)} if mask is not None else {})}
