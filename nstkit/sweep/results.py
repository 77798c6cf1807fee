"""A sweep's results: one row, image and run record per grid point, as a table, a CSV, a contact sheet and JSON."""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import StyleConfig
from ..core.errors import NstkitError
from ..core.files import atomic_write
from ..core.record import build_record, write_json
from ..media.images import save_image
from .grid import short_value
from .sheet import contact_sheet

SUMMARY_FILES = ("sweep.csv", "contact_sheet.png", "sweep.json")


@dataclass
class SweepResult:
    """One row, image and run record per grid point, in grid order (``None`` image for a failed job)."""

    grid: dict[str, list]
    config: StyleConfig  # the base config every job started from, options applied, unresolved
    rows: list[dict[str, Any]]
    images: list[np.ndarray | None]
    records: list[dict[str, Any] | None]
    inputs: dict[str, Any]

    @property
    def varied(self) -> list[str]:
        """Grid keys with more than one value (all keys if none varies): what tells the runs apart."""
        return [key for key, values in self.grid.items() if len(values) > 1] or list(self.grid)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row.get("error")]

    def labels(self) -> list[str]:
        return [" ".join(f"{key}={short_value(row[key])}" for key in self.varied) for row in self.rows]

    def table(self, columns: Sequence[str] | None = None, floats: str = "{:.4g}") -> str:
        """A markdown table of the rows; by default every column that is not empty in every row."""
        columns = list(columns or (c for c in self.rows[0] if any(row.get(c) is not None for row in self.rows)))

        def cell(value):
            text = "" if value is None else floats.format(value) if isinstance(value, float) else str(value)
            return text.replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in self.rows]
        return "\n".join(lines)

    def to_csv(self, path: os.PathLike | str) -> Path:
        """Every column of every row, written atomically (an empty cell is ``None``)."""
        path = Path(path)
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        with atomic_write(path, "w") as handle:
            writer = csv.DictWriter(handle, columns, lineterminator="\n")
            writer.writeheader()
            for row in self.rows:
                writer.writerow({key: _csv_cell(row.get(key)) for key in columns})
        return path

    def contact_sheet(self, thumb: int = 128, columns: int | None = None) -> np.ndarray:
        """Thumbnails in a grid (the last varied key along a row), each labelled with the values that vary."""
        count = len(self.rows)
        columns = columns or min(count, len(self.grid[self.varied[-1]]) if len(self.varied) > 1 else count, 8)
        labels = [[f"{key}={short_value(row[key])}" for key in self.varied] for row in self.rows]
        return contact_sheet(self.images, labels, columns, thumb)

    @property
    def unsaved(self) -> list[dict[str, Any]]:
        """Rows whose image and record could not be written where planned (``save_error`` says where they went)."""
        return [row for row in self.rows if row.get("save_error")]

    def _summary(self) -> dict[str, Any]:
        """What sweep.json holds: the grid, the base config, the inputs and every row, stamped as a record."""
        # The grid as a list: canonical JSON sorts keys, and the order of the fields is the order of the jobs.
        return build_record(grid=[{"field": key, "values": values} for key, values in self.grid.items()],
                            config=self.config.to_dict(), inputs=self.inputs, rows=self.rows)

    def save(self, directory: os.PathLike | str, *, overwrite: bool = False, thumb: int = 128) -> list[Path]:
        """Write ``sweep.csv``, ``contact_sheet.png`` and ``sweep.json`` (grid, base config, inputs, rows): all
        three or, if the folder cannot take them (`OSError`), none (`write_summary`)."""
        directory = Path(directory)
        paths = [directory / name for name in SUMMARY_FILES]
        existing = [p.name for p in paths if p.exists()]
        if existing and not overwrite:
            raise NstkitError(f"{directory} already holds {', '.join(existing)}: choose another folder "
                              "or pass overwrite=True")
        directory.mkdir(parents=True, exist_ok=True)
        return write_summary(self, directory, thumb)


def write_summary(result: SweepResult, directory: Path, thumb: int = 128) -> list[Path]:
    """Write the three `SUMMARY_FILES` in ``directory``, which must exist (a sweep's folder that vanished is not
    made again): all three, or none.

    Three files written one by one leave half a summary when the disk fills or the folder turns read-only
    between them: a lone sweep.csv that disagrees with the error, and that makes the next sweep refuse the
    folder. So each is first written whole under a hidden name beside its place, and only then are the three
    renamed into place, sweep.json last (it marks a whole summary). On any failure what this call wrote is
    removed (never a run's image or record) and the error raised: `OSError`, or `NstkitError` for a folder
    that vanished. (Only a rename failing part way, the folder changing between two renames, can still cost
    an earlier sweep's summary that the first renames replaced; the disk filling up never can, as the
    writing is all done before the first rename.)
    """
    paths = [directory / name for name in SUMMARY_FILES]
    csv_path, sheet_path, json_path = paths
    token = secrets.token_hex(4)
    staged = {path: path.with_name(f".{path.stem}.{token}.partial{path.suffix}") for path in paths}
    placed: list[Path] = []
    try:
        result.to_csv(staged[csv_path])
        save_image(staged[sheet_path], result.contact_sheet(thumb))
        write_json(staged[json_path], result._summary())
        for path in paths:
            _keep_mode(staged[path], path)
            os.replace(staged[path], path)
            placed.append(path)
    except BaseException:
        for path in [*staged.values(), *placed]:
            with contextlib.suppress(OSError):
                os.remove(path)
        raise
    return paths


def _keep_mode(new: Path, old: Path) -> None:
    """Give ``new`` the mode of the file it replaces, as `atomic_write` does (a fresh file has the umask's)."""
    with contextlib.suppress(OSError):
        os.chmod(new, stat.S_IMODE(os.stat(old).st_mode))


def _csv_cell(value: Any) -> Any:
    return "" if value is None else value
