"""Figures a reader can read: the helper's rules, and every stored figure checked against them."""

import base64
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from nst_helpers import ROOT  # noqa: E402
from PIL import Image  # noqa: E402

from nstkit.ui import figures  # noqa: E402

RESULTS = ROOT / "img" / "results"
MIN_PANEL_PX = 150  # the narrowest panel a stored figure may show
LONG_CAPTION = ("Every few frames of each variant, with a caption long enough to wrap over several lines under the "
                "figure (random weights, not ImageNet; 200 steps, 128 px, bfloat16)")


def _texts(figure):
    return [" ".join(t.get_text().split()) for t in figure.findobj(matplotlib.text.Text) if t.get_text().strip()]


def _tile(value):
    return np.full((48, 64, 3), value, np.uint8)


def test_the_rules_themselves():
    assert figures.FIGURE_DPI >= 110 and figures.TEXT_PT >= 10 and figures.MAX_PANELS_PER_ROW <= 6


def test_one_long_row_wraps_into_even_rows_of_at_most_six_and_every_panel_keeps_its_label():
    labels = [f"style {w:.0e}" for w in (1e-2, 1, 10, 1e2, 1e3, 1e4, 1e8, 1e12)] + ["content", "style"]
    figure = figures.image_grid([[_tile(i * 20) for i in range(10)]], col_labels=labels)
    assert figures.panels_per_row(figure) == 5  # 10 -> 5 + 5, not 6 + 4
    assert all(label in _texts(figure) for label in labels)
    assert figures.panels_per_row(figures.image_grid([[_tile(0)] * 6])) == 6
    with pytest.raises(ValueError, match="at most 6 a row"):
        figures.image_grid([[_tile(0)] * 7, [_tile(0)] * 7])
    with pytest.raises(ValueError, match="at least one image in every row"):
        figures.image_grid([[_tile(0)], []])
    short_first = figures.image_grid([[_tile(0)], [_tile(1), _tile(2)]], col_labels=["first", "second"])
    assert {"first", "second"} <= set(_texts(short_first))  # the second column's label on the row that has it
    plt.close("all")


def test_no_label_or_caption_overprints_another():
    """The faults #27 found: long row labels stacked into each other (07), a caption over an x label (07)."""
    rows = [[_tile(60 * r + c) for c in range(6)] for r in range(3)]
    grid = figures.image_grid(rows, row_labels=["(a) independent", "(b) warm start", "(c) warm start + temporal loss"],
                              col_labels=["conv (block 2–3×2–4)", "ReLU (blocks 2,3,4,5)", "a", "b", "c", "d"],
                              cell=1.6, caption=LONG_CAPTION)
    figure, axis = plt.subplots(figsize=(7, 3))  # a plot made by hand, captioned afterwards
    axis.plot([1, 2, 3], [3, 1, 2], label="(c) warm start + temporal loss")
    axis.set_xlabel("frame")
    axis.legend()
    figures.add_caption(figure, LONG_CAPTION)
    losses = figures.plot_losses({"S=0.0": {"total": [3.0, 2.0], "content": [1.0, 2.0], "style": [2.0, 1.0]}},
                                 caption=LONG_CAPTION)
    for made in (grid, figure, losses):
        assert figures.overlapping_text(made) == []
        assert figures.smallest_text_pt(made) >= figures.TEXT_PT
        assert " ".join(LONG_CAPTION.split()) in _texts(made)
    plt.close("all")


def test_overlapping_text_finds_two_texts_drawn_on_each_other():
    figure = plt.figure(figsize=(3, 2))
    figure.text(0.5, 0.5, "a label", ha="center")
    figure.text(0.52, 0.5, "another label", ha="center")
    assert figures.overlapping_text(figure) == [("a label", "another label")]
    plt.close(figure)


def _stored_figures():
    for record_path in sorted(RESULTS.glob("*.json")):
        record = json.loads(record_path.read_text())
        if "caption" in record and "figure" in record:  # a figure drawn with text (not a picture at 1:1)
            yield pytest.param(record_path, record, id=record_path.stem)


@pytest.mark.parametrize("record_path, record", list(_stored_figures()))
def test_every_stored_figure_is_legible(record_path, record):
    """Read from the stored image and its record: 110 dpi, 10-pt text, at most six panels a row, each at least
    150 px wide, and no text on text."""
    image_path = ROOT / record["figure"]
    legibility = record.get("legibility")
    assert legibility, f"{record['figure']} was not drawn by nstkit.ui.figures: redraw it"
    with Image.open(image_path) as image:
        dpi = image.info.get("dpi", (0, 0))[0]
        width = image.width
    assert round(dpi) >= figures.FIGURE_DPI and legibility["dpi"] >= figures.FIGURE_DPI
    assert legibility["smallest_text_pt"] >= figures.TEXT_PT
    assert 1 <= legibility["panels_per_row"] <= figures.MAX_PANELS_PER_ROW, f"{record['figure']}: {legibility}"
    assert width / legibility["panels_per_row"] >= MIN_PANEL_PX
    assert legibility["overlapping_text"] == []


def _notebook_images():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text())
        for number, cell in enumerate(notebook["cells"]):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "image/jpeg" in data and "Figure" in "".join(data.get("text/plain", "")):
                    yield pytest.param(data["image/jpeg"], id=f"{path.stem[:2]}-cell{number}")


@pytest.mark.parametrize("encoded", list(_notebook_images()))
def test_every_figure_stored_in_a_notebook_is_drawn_at_the_legible_dpi(encoded):
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        assert round(image.info.get("dpi", (0, 0))[0]) >= figures.FIGURE_DPI


def test_a_saved_figure_records_what_a_reader_sees(tmp_path):
    figure = figures.image_grid([[_tile(i) for i in range(8)]], col_labels=list("abcdefgh"), caption="c")
    path = figures.save_figure_file(figure, tmp_path / "x.jpg", {"caption": "c"})
    record = json.loads(Path(path.with_suffix(".json")).read_text())
    assert record["legibility"] == {"dpi": figures.FIGURE_DPI, "smallest_text_pt": figures.TEXT_PT,
                                    "panels_per_row": 4, "overlapping_text": []}
    with Image.open(path) as image:
        assert round(image.info["dpi"][0]) == figures.FIGURE_DPI
    clash = plt.figure(figsize=(3, 2))
    clash.text(0.5, 0.5, "a label", ha="center")
    clash.text(0.52, 0.5, "another label", ha="center")
    path = figures.save_figure_file(clash, tmp_path / "clash.png", {})
    assert json.loads(path.with_suffix(".json").read_text())["legibility"]["overlapping_text"] == [
        ["a label", "another label"]]
    plt.close("all")


def test_relative_loss_curves_start_at_one_so_layer_sets_on_other_scales_compare_by_shape():
    figure = figures.plot_losses({"relu": {"style": [0.0, 4e6, 2e6]}, "robust": {"style": [5e7, 1e7, 5e6]}},
                                 terms=("style",), relative=True)
    (axis,) = figure.axes
    assert [list(line.get_ydata()) for line in axis.get_lines()] == [[0.0, 1.0, 0.5], [1.0, 0.2, 0.1]]
    assert axis.get_title() == "style ÷ its first value"
    plt.close(figure)


def test_the_loss_legend_sits_beside_the_plots_never_over_a_curve():
    histories = {f"{w:.0e}": {"total": [w, w / 2], "content": [0.0, 1.0], "style": [w, w / 3]} for w in (1, 1e4, 1e8)}
    figure = figures.plot_losses(histories)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend = figure.axes[-1].get_legend().get_window_extent(renderer)
    assert all(legend.x0 >= axis.get_window_extent(renderer).x1 for axis in figure.axes)
    plt.close(figure)
