"""The JSON run record written beside every output image: `RunRecord`, typed, with its schema in
docs/run-record.md.

It answers "what made this picture?" months later: the resolved config
(feed the record to `StyleConfig.from_record` to rerun), the
weights (ImageNet, a file with its md5, or seeded random), the inputs with
their checksums, the package versions, the device and the wall time.
Clips, sweeps and snapshots write records of their own kinds (`build_record`), stamped the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .._version import RECORD_VERSION
from .config import init_is_path
from .errors import NstkitError
from .files import atomic_write
from .packs import PackedStyle

_PACKAGES = ("nstkit", "tensorflow", "keras", "numpy", "pillow")


def describe_input(source: Any) -> dict[str, Any]:
    if isinstance(source, PackedStyle):  # a style from a pack: the pack's file, and the image it was made from
        return source.describe()
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
    """``out.png`` -> ``out.png.json``: the whole file name, so ``out.png`` and ``out.tif`` in one folder never
    share a record. Records before nstkit 0.2 were ``out.json`` (`legacy_record_path`); `RunRecord.read` still
    finds them."""
    path = Path(image_path)
    return path.with_name(f"{path.name}.json")


def legacy_record_path(image_path: os.PathLike | str) -> Path:
    """Where nstkit before 0.2 wrote an image's record: ``out.png`` -> ``out.json`` (one per stem, so a second
    output of another format replaced it)."""
    return Path(image_path).with_suffix(".json")


def write_record(image_path: os.PathLike | str, record: Mapping[str, Any]) -> Path:
    """Write the record beside the image, atomically, with canonical (sorted, indented) JSON."""
    return write_json(record_path(image_path), record.to_dict() if isinstance(record, RunRecord) else dict(record))


def write_json(path: os.PathLike | str, data: Any) -> Path:
    """Write ``data`` to ``path`` atomically as canonical JSON (sorted keys, indented, a final newline).

    Every JSON file nstkit writes (run records, sweep summaries) goes through here, so they all diff cleanly and
    read the same; numpy numbers and arrays become plain JSON, anything else unknown its ``str``.
    """
    path = Path(path)
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=_jsonable)
        handle.write("\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, RunRecord):
        return value.to_dict()
    if isinstance(value, np.generic):  # numpy numbers and bools: the Python value, not its str
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def describe_inputs(content: Any, styles: list, init: str, mask: str | None = None,
                    palette: str | None = None) -> dict[str, Any]:
    """The run record's ``inputs``: content, one or several styles, the init image, the mask and color_from's
    palette image if given."""
    return {"content": describe_input(content),
            **({"style": describe_input(styles[0])} if len(styles) == 1 else
               {f"style_{i + 1}": describe_input(s) for i, s in enumerate(styles)}),
            **({"init": describe_input(init)} if init_is_path(init) else {}),
            **({"mask": describe_input(mask)} if mask is not None else {}),
            **({"color_from": describe_input(palette)} if palette is not None else {})}


@dataclass
class RunRecord(Mapping):
    """What made one output image: the JSON written beside it (``out.png`` -> ``out.json``), typed.

    Every field is described here, once; docs/run-record.md shows the schema with an example, and a test
    checks the two agree. Fields that do not apply to a run are None and left out of the JSON. A record reads
    as a mapping too (``record["best_step"]``, ``{**record}``), as records did before version 4. `read` takes
    any version nstkit has written (1 to `RECORD_VERSION`) and upgrades it; `StyleConfig.from_record`
    replays its config.
    """

    # What ran.
    config: dict[str, Any]  # the resolved `StyleConfig` (`to_dict`): replay with `StyleConfig.from_record`
    inputs: dict[str, dict[str, Any]]  # content, style (or style_1, ...), init, mask, color_from if files: path or
    #                                    array shape, and sha256
    weights: dict[str, Any] | None  # the backbone's weights: description, source, and its md5 or seed
    style_blend: list[float]  # each style's share of the target statistics
    image_size: list[int]  # the output's (height, width)
    terms: list[str]  # the loss terms, in the order of `final_losses` and the history
    stages: list[dict[str, Any]]  # per stage: size, scale, source ("image" or "tiles"), steps, steps_run,
    #                               step_traces, seconds_per_step, and what its source adds (tiles, L-BFGS, EMA)
    device: str  # the GPU's name, or the CPU's model and features
    jit_compile: bool  # whether the step ran through XLA
    # How it went.
    steps_planned: int  # over all stages
    steps_run: int  # over all stages (fewer if stopped, or if L-BFGS could go no further)
    stopped_early: bool  # stopped (Ctrl-C, SIGTERM, stop()) before its planned steps
    best_stage: int  # the stage the output comes from (the last)
    best_step: int  # updates before the best image, over all stages (0: the start image itself)
    best_loss: float | None  # its loss at that stage's size; None if it was never scored
    final_losses: dict[str, float]  # the last step's weighted terms and their total
    step_traces: int  # how often a stage's step was traced: 1, unless something retraced
    wall_time_s: float  # from the call to the result, network building and tracing included
    seconds_per_step: float | None  # the last stage's median step (its first, the trace, left out)
    preset_overridden: list[str] = field(default_factory=list)  # fields given over the preset's values
    style_sizes: list[list[int]] = field(default_factory=list)  # (height, width) each style's statistics came from
    # What only some runs have (left out of the JSON when None).
    precision_chosen: str | None = None  # why precision "auto" chose what it chose
    optimizer_chosen: str | None = None  # why optimizer "auto" chose what it chose
    regions: list[dict[str, Any]] | None = None  # a mask's regions: colour, style, share of the image
    batch: dict[str, int] | None = None  # a `stylize_batch` member: size and index
    stopped_by: str | None = None  # the signal that stopped it: SIGINT or SIGTERM
    resumed_at_step: int | None = None  # the checkpoint's step this run resumed from
    checkpoints: dict[str, Any] | None = None  # path, every, written, seconds_writing, failure
    output: str | None = None  # where the image was saved (`Result.save`)
    asked_for: str | None = None  # where it was asked for, when it had to be saved elsewhere
    encoding: dict[str, Any] | None = None  # format, bit depth, JPEG quality and subsampling, ICC profile
    # Stamped by nstkit.
    record_version: int = RECORD_VERSION
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    versions: dict[str, str] = field(default_factory=lambda: versions())
    extra: dict[str, Any] = field(default_factory=dict)  # fields of a newer nstkit, kept as they were

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field that applies (None and empty optional fields left out), ``extra`` merged."""
        data = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if spec.name == "extra" or (spec.name in _OPTIONAL and value in (None, [], {})):
                continue
            data[spec.name] = value
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """A record of any version nstkit has written, upgraded to this one's fields (see `_upgrade`)."""
        data = _upgrade(dict(data))
        known = {spec.name for spec in dataclasses.fields(cls)} - {"extra"}
        missing = [name for name in _REQUIRED if name not in data]
        if missing:
            raise NstkitError(f"not an nstkit run record: it has no {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def read(cls, path: os.PathLike | str) -> RunRecord:
        """The record in ``path`` (a .json, or the image it sits beside), one line if it is not one.

        Beside an image, its own record (``out.png.json``); failing that, one written before 0.2
        (``out.json``), if that one was written for this image.
        """
        path = _record_for(Path(path))
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise NstkitError(f"cannot read run record {path} ({error}): give the .json written beside an "
                              "nstkit output") from None
        if not isinstance(data, dict):
            raise NstkitError(f"{path} is not an nstkit run record (not a JSON object)")
        return cls.from_dict(data)

    # Read as a mapping, as records were before version 4.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _record_for(path: Path) -> Path:
    """The record file ``path`` names: itself if a .json, else the record beside that image (see `read`)."""
    if path.suffix == ".json":
        return path
    current, legacy = record_path(path), legacy_record_path(path)
    if current.exists() or not legacy.exists():
        return current
    try:
        written_for = json.loads(legacy.read_text()).get("output")
    except (OSError, ValueError, AttributeError):
        return legacy  # read() says what is wrong with it
    if written_for is not None and Path(written_for).name != path.name:
        raise NstkitError(f"{legacy} is the record of {Path(written_for).name}, not of {path.name}, and {path.name} "
                          f"has no record of its own ({current}): give the record's .json path")
    return legacy


_OPTIONAL = ("precision_chosen", "optimizer_chosen", "regions", "batch", "stopped_by", "resumed_at_step", "checkpoints", "output",
             "asked_for", "encoding")
_REQUIRED = ("config", "inputs", "steps_run")


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """An older record's fields as this version names them. What each version changed:

    - 1 -> 2: ``levels`` ([{scale, steps}]) became ``stages`` (with size, source, steps_run, ...), and
      ``steps_planned`` and ``best_stage`` were added;
    - 2 -> 3: swag "softmax" changed meaning (the config keeps the old name; `StyleConfig.from_record` maps it);
    - 3 -> 4: the record became this dataclass; no field changed its name;
    - 4 -> 5: optimizer "lbfgs" is the in-graph L-BFGS; scipy's L-BFGS-B, which it named before, is "lbfgsb"
      (`StyleConfig.from_record` maps it); ``optimizer_chosen`` was added.
    """
    version = data.setdefault("record_version", 1)  # the first records had it too; a file without it is old
    if version < 2 and "levels" in data and "stages" not in data:
        height, width = data.get("image_size", [0, 0])
        data["stages"] = [{"size": [round(height * level["scale"]), round(width * level["scale"])],
                           "scale": level["scale"], "source": "image", "steps": level["steps"]}
                          for level in data.pop("levels")]
        data.setdefault("steps_planned", sum(stage["steps"] for stage in data["stages"]))
        data.setdefault("best_stage", len(data["stages"]) - 1)
    data.setdefault("terms", list(data.get("final_losses", {}).keys() - {"total"}))
    for name, default in (("steps_planned", data.get("steps_run")), ("best_stage", 0), ("stages", []),
                          ("style_blend", [1.0]), ("image_size", []), ("device", "unknown"),
                          ("jit_compile", False), ("stopped_early", False), ("best_step", 0), ("best_loss", None),
                          ("final_losses", {}), ("step_traces", 1), ("wall_time_s", 0.0),
                          ("seconds_per_step", None), ("weights", None)):
        data.setdefault(name, default)
    return data
