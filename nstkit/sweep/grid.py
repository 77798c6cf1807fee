"""A sweep's grid: which `StyleConfig` fields vary, their values as Python or as ``--grid`` text, and the jobs.

Every point is validated (its config resolved) before anything runs, so a
typo in the grid costs one line and nothing else. Grid text takes each
field's own parser (`fields.parse`): the same rules as the CLI's flags.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import fields
from ..core.config import FIELD_NAMES as FIELDS
from ..core.config import ADAM_FIELDS, AUTO_OPTIMIZER, OPTIONS, StyleConfig
from ..core.errors import NstkitError


@dataclass(frozen=True)
class SweepJob:
    """One grid point: its position, the values it varies, and the full (unresolved) config it runs."""

    index: int
    params: dict[str, Any]
    config: StyleConfig

    def label(self, keys: Sequence[str] | None = None) -> str:
        """``style_weight=1e+06 preset=robust``, for log lines and the contact sheet."""
        return " ".join(f"{key}={short_value(self.params[key])}" for key in (keys or self.params))

    def file_stem(self) -> str:
        """A file name from the index and the values: sortable, shell-safe, never shared by two jobs."""
        values = "_".join(f"{key}-{short_value(value)}" for key, value in self.params.items())
        return f"{self.index:03d}_{re.sub(r'[^A-Za-z0-9.+-]+', '-', values)[:80].strip('-')}"


def grid_axes(grid: Mapping[str, Sequence]) -> dict[str, list]:
    """Check the grid's keys and value lists; numpy scalars become Python numbers (StyleConfig checks types)."""
    if not isinstance(grid, Mapping) or not grid:
        raise NstkitError("the grid is empty: give StyleConfig fields and their values, "
                          "e.g. {'style_weight': [1e6, 1e7]}")
    axes: dict[str, list] = {}
    for key, values in grid.items():
        if key not in FIELDS:
            raise NstkitError(f"grid key {key!r} is not a StyleConfig field{_did_you_mean(key)}; "
                              f"valid fields are {', '.join(FIELDS)}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)):
            raise NstkitError(f"grid[{key!r}] must be a list of values, e.g. [{values!r}]; got {values!r}")
        if len(values) == 0:
            raise NstkitError(f"grid[{key!r}] is empty: give at least one value")
        axes[key] = [value.item() if isinstance(value, np.generic) else value for value in values]
    return axes


def expand_grid(grid: Mapping[str, Sequence], config: StyleConfig | None = None,
                **options: Any) -> list[SweepJob]:
    """The cartesian product of ``grid`` (last key varies fastest), every point validated.

    Raises `NstkitError` naming the first bad key or value, before anything runs.
    """
    axes = grid_axes(grid)
    for key in axes:
        if key in options:
            raise NstkitError(f"{key} is both in the grid and given as an option: keep one")
    base = (config or StyleConfig()).replace(**options)
    if base.optimizer == AUTO_OPTIMIZER and "optimizer" not in axes and set(axes) & set(ADAM_FIELDS):
        # A grid over Adam's own fields compares Adam runs: "auto" would take L-BFGS for a point at its default.
        base = base.replace(optimizer="adam")
    jobs = []
    for index, values in enumerate(itertools.product(*axes.values())):
        params = dict(zip(axes, values))
        job = SweepJob(index, params, base.replace(**params))
        try:
            job.config.resolved()
        except NstkitError as error:
            raise NstkitError(f"grid point {job.label()}: {error}") from None
        except (TypeError, ValueError, AttributeError) as error:  # e.g. a number where a layer spec belongs
            raise NstkitError(f"grid point {job.label()} is not a valid config ({error})") from None
        jobs.append(job)
    return jobs


def parse_grid(specs: Sequence[str]) -> dict[str, list]:
    """``["style_weight=1e6,1e7", "preset=robust"]`` -> ``{"style_weight": [1e6, 1e7], "preset": ["robust"]}``.

    Values take their field's type (`fields.parse`); layer specs stay
    strings. Fields whose value is itself a list (layers, style_blend)
    separate their values with ';'.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        key, equals, text = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not equals or not key:
            raise NstkitError(f"--grid {spec!r} must be FIELD=VALUE[,VALUE...], e.g. style_weight=1e6,1e7")
        if key not in FIELDS:
            raise NstkitError(f"--grid {key!r} is not a StyleConfig field{_did_you_mean(key)}; "
                              f"valid fields are {', '.join(FIELDS)}")
        if key in grid:
            raise NstkitError(f"--grid {key} is given twice: list all its values once, e.g. {key}=a,b")
        _, spec_of = OPTIONS[key]
        parts = [part.strip() for part in text.split(";" if spec_of.listed else ",")]
        if not text.strip() or not all(parts):
            raise NstkitError(f"--grid {spec!r} has an empty value: write {key}=V1,V2 with no empty items")
        grid[key] = [fields.parse(key, spec_of, part, source=f"--grid {key}") for part in parts]
    return grid


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def short_value(value: Any) -> str:
    """A value as labels and file names show it: 1e+06, conv1_relu,conv2_block1_out:2, 0.7,0.3."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{k}:{w:g}" if w != 1 else k for k, w in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(short_value(v) for v in value)
    return str(value)
