"""Figures a reader can read: contact sheets, loss curves and captions, drawn and saved one way.

Every figure the notebooks and the figure scripts store goes through here, so one set of rules holds for all
of them (a reader on GitHub sees the stored image, at its own size, with no zoom):

- drawn and saved at `FIGURE_DPI` (110: a 10-pt letter is about 15 pixels high);
- captions, panel titles, axis labels, ticks and legends at `TEXT_PT` or larger;
- at most `MAX_PANELS_PER_ROW` images a row: a longer row wraps into a grid, each panel keeping its title;
- labels wrapped to their panel's width, row labels written across (never stacked along a short edge), and the
  caption placed under everything already drawn, so no text overprints another (`overlapping_text` checks it).

`save_figure` writes each figure's record beside it (what made it, its dpi, text size and panels per row, any
overlapping text), which `tests/ui/test_figures.py` reads for every stored figure.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FIGURE_DPI = 110
TEXT_PT = 10  # captions, titles, labels, ticks, legends
MAX_PANELS_PER_ROW = 6
_CHAR_EM = 0.55  # a letter's mean width in ems (DejaVu Sans): how many fit on a line


def use_legible_defaults() -> None:
    """matplotlib's defaults for every figure drawn afterwards in this process, hand-made plots included."""
    import matplotlib

    matplotlib.rcParams.update({
        "figure.dpi": FIGURE_DPI, "savefig.dpi": FIGURE_DPI, "font.size": TEXT_PT,
        **{key: TEXT_PT for key in ("axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
                                    "legend.fontsize", "figure.titlesize")}})


def fill(text: str, inches: float, points: float = TEXT_PT) -> str:
    """``text`` wrapped to lines that fit ``inches`` at ``points``; its own line breaks kept."""
    width = max(8, int(inches * 72 / (points * _CHAR_EM)))
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def wrapped_rows(rows: Sequence[Sequence[Any]], col_labels: Sequence[str] = ()
                 ) -> tuple[list[list[Any]], list[list[str]]]:
    """One long row split into even rows of at most `MAX_PANELS_PER_ROW`, with each panel's label (the column
    labels, in order); a grid already within the limit is returned as it is."""
    if not rows or not all(len(row) for row in rows):
        raise ValueError("an image grid needs at least one image in every row")
    widest = max(len(row) for row in rows)
    if widest <= MAX_PANELS_PER_ROW:  # each column's label on the first row that has that column
        return [list(row) for row in rows], [
            [label if c < len(row) and all(len(above) <= c for above in rows[:r]) else ""
             for c, label in enumerate(col_labels)] for r, row in enumerate(rows)]
    if len(rows) > 1:
        raise ValueError(f"a grid of {len(rows)} rows with {widest} panels in a row: give at most "
                         f"{MAX_PANELS_PER_ROW} a row (one long row wraps by itself)")
    (row,) = rows
    per_row = math.ceil(len(row) / math.ceil(len(row) / MAX_PANELS_PER_ROW))
    labels = list(col_labels) + [""] * (len(row) - len(col_labels))
    return ([list(row[i:i + per_row]) for i in range(0, len(row), per_row)],
            [labels[i:i + per_row] for i in range(0, len(row), per_row)])


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str] = (),
               col_labels: Sequence[str] = (), title: str = "", cell: float = 2.4, caption: str | None = None):
    """A contact sheet of images, rows x columns, with labels and (``settings.caption(...)``) a caption.

    One row longer than `MAX_PANELS_PER_ROW` wraps into a grid whose every panel carries its label.
    """
    import matplotlib.pyplot as plt

    grid, titles = wrapped_rows(rows, col_labels)
    n_rows, n_cols = len(grid), max(len(r) for r in grid)
    aspect = max(image.shape[0] / image.shape[1] for row in grid for image in row)  # height/width
    title_lines = max((len(fill(t, cell).split("\n")) for row in titles for t in row), default=0)
    figsize = (cell * n_cols, (cell * aspect + 0.2 * title_lines) * n_rows + (0.5 if title else 0.1))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    for r, row in enumerate(grid):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(row):
                ax.imshow(row[c])
            else:  # hidden, not just unframed: an empty cell must not push the caption down
                ax.set_visible(False)
            if c < len(titles[r]) and titles[r][c]:
                ax.set_title(fill(titles[r][c], cell), fontsize=TEXT_PT)
            if c == 0 and r < len(row_labels):  # across, to the left: a long label never runs into the next row's
                ax.set_ylabel(fill(row_labels[r], 1.4), fontsize=TEXT_PT, rotation=0, ha="right", va="center",
                              labelpad=6)
    if title:
        figure.suptitle(fill(title, cell * n_cols), fontsize=TEXT_PT + 1)
    figure.tight_layout()
    add_caption(figure, caption)
    return figure


def plot_losses(histories: dict, terms: Sequence[str] = ("total", "content", "style"), title: str = "",
                caption: str | None = None, relative: bool = False):
    """Loss curves, one panel per term, one line per run (label -> history), each on its own log scale.

    ``relative``: each curve divided by its first positive value, for runs whose losses are not on one scale
    (other layer sets): their shapes compare, their heights would not.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(terms), figsize=(3.8 * len(terms), 3.0), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for label, history in histories.items():
            values = np.asarray(history[term], dtype=float)
            if np.any(values > 0):
                ax.plot(np.arange(1, len(values) + 1), values / values[values > 0][0] if relative else values,
                        label=label)
        ax.set_yscale("log")
        ax.set_title(f"{term} ÷ its first value" if relative else term, fontsize=TEXT_PT)
        ax.set_xlabel("step", fontsize=TEXT_PT)
        ax.tick_params(labelsize=TEXT_PT)
    if len(histories) > 1 or next(iter(histories), ""):  # beside the plots, never over a curve
        axes[0][-1].legend(fontsize=TEXT_PT, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if title:
        figure.suptitle(fill(title, 3.8 * len(terms)), fontsize=TEXT_PT + 1)
    figure.tight_layout()
    add_caption(figure, caption)
    return figure


def add_caption(figure, text: str | None):
    """``text`` under everything ``figure`` has drawn so far, inside the image (a stored or saved figure
    carries its caption), wrapped to the figure's width; returns the figure."""
    if not text:
        return figure
    figure.canvas.draw()  # images take their aspect at a draw: measure what a reader will see
    renderer = figure.canvas.get_renderer()
    width, height = figure.get_size_inches()
    lowest = figure.get_tightbbox(renderer).y0 / height  # in figure fractions (below 0 where a label hangs out)
    figure.text(0.5, lowest - 0.12 / height, fill(text, width), ha="center", va="top", fontsize=TEXT_PT)
    return figure


def panels_per_row(figure) -> int:
    """The most image or plot panels side by side in ``figure`` (visible axes sharing a row)."""
    rows: dict[float, int] = {}
    for ax in figure.axes:
        if ax.get_visible():  # an image shown with axis("off") is a panel; a hidden empty cell is not
            key = round(ax.get_position(original=True).y0, 2)  # the cell's, not the image's shrunk box
            rows[key] = rows.get(key, 0) + 1
    return max(rows.values(), default=0)


def drawn_text(figure) -> list:
    """The texts a draw of ``figure`` puts on the canvas (tick labels outside the view are made, not drawn)."""
    from matplotlib.text import Text

    drawn = []
    original = Text.draw

    def recording(text, renderer):
        original(text, renderer)
        # Text.draw is patched for the class: keep this figure's only (a panel may draw in another thread)
        if text.figure is figure and text.get_visible() and text.get_text().strip():
            drawn.append(text)

    Text.draw = recording
    try:
        figure.canvas.draw()
    finally:
        Text.draw = original
    return drawn


def overlapping_text(figure, drawn: list | None = None) -> list[tuple[str, str]]:
    """Pairs of drawn texts in ``figure`` whose boxes overlap: what a reader could not read. ``drawn``: the
    texts of a draw already made (`drawn_text`), so as not to draw again."""
    renderer = figure.canvas.get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in drawn or drawn_text(figure)]
    clashes = []
    for i, (first, a) in enumerate(boxes):
        for second, b in boxes[i + 1:]:
            if a.x0 < b.x1 - 1 and b.x0 < a.x1 - 1 and a.y0 < b.y1 - 1 and b.y0 < a.y1 - 1:
                clashes.append((first, second))
    return clashes


def smallest_text_pt(figure, drawn: list | None = None) -> float:
    """The smallest font size of any text drawn in ``figure`` (``drawn`` as in `overlapping_text`)."""
    return min((text.get_fontsize() for text in drawn or drawn_text(figure)), default=TEXT_PT)


def save_figure_file(figure, path: Path, record: dict[str, Any]) -> Path:
    """Save ``figure`` to ``path`` (JPEG for photo grids, PNG for plots) at `FIGURE_DPI`, with its record
    beside it: ``record`` plus what a reader's eye depends on (dpi, smallest text, panels a row, clashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"pil_kwargs": {"quality": 85}} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    figure.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight", **options)
    drawn = drawn_text(figure)  # one draw for both measures
    legibility = {"dpi": FIGURE_DPI, "smallest_text_pt": smallest_text_pt(figure, drawn),
                  "panels_per_row": panels_per_row(figure),
                  "overlapping_text": [list(pair) for pair in overlapping_text(figure, drawn)]}
    path.with_suffix(".json").write_text(json.dumps({**record, "legibility": legibility}, indent=2,
                                                    sort_keys=True) + "\n")
    return path
