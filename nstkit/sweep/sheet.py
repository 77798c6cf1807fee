"""A sweep's contact sheet: every run's image as a thumbnail, labelled with the values that vary."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SHEET_GAP = 4  # px around every contact-sheet cell
_BACKGROUND = (255, 255, 255)


def contact_sheet(images: Sequence[np.ndarray | None], labels: Sequence[list[str]], columns: int,
                  thumb: int = 128) -> np.ndarray:
    """Thumbnails in a grid of ``columns``, each with its label lines below; uint8 RGB.

    Every cell is ``thumb`` px square plus its label, with `SHEET_GAP` px
    around it; a failed job's (None) cell says "failed".
    """
    count = len(images)
    rows = math.ceil(count / columns)
    font = ImageFont.load_default()
    line_height = _text_height(font) + 2
    label_height = line_height * max(len(lines) for lines in labels) + 2
    cell_w, cell_h = thumb + SHEET_GAP, thumb + label_height + SHEET_GAP
    sheet = Image.new("RGB", (SHEET_GAP + columns * cell_w, SHEET_GAP + rows * cell_h), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, (image, lines) in enumerate(zip(images, labels)):
        left = SHEET_GAP + (index % columns) * cell_w
        top = SHEET_GAP + (index // columns) * cell_h
        if image is not None:
            sheet.paste(Image.fromarray(thumbnail(image, thumb)), (left, top))
        else:
            draw.rectangle((left, top, left + thumb - 1, top + thumb - 1), fill=(224, 224, 224))
            draw.text((left + 4, top + thumb // 2 - line_height // 2), "failed", fill=(160, 0, 0), font=font)
        for line, text in enumerate(lines):
            draw.text((left, top + thumb + 2 + line * line_height), _fit(text, font, thumb), fill=(0, 0, 0), font=font)
    return np.asarray(sheet)


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` scaled to fit a ``size`` px square (aspect kept), centred on the sheet's background."""
    pil = Image.fromarray(image)
    scale = size / max(pil.size)
    fitted = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))),
                        Image.Resampling.LANCZOS)
    square = Image.new("RGB", (size, size), _BACKGROUND)
    square.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    return np.asarray(square)


def _text_height(font) -> int:
    return font.getbbox("Ag")[3]  # the bottom of the box, from the drawing origin


def _fit(text: str, font, width: int) -> str:
    """Cut ``text`` to ``width`` px with an ellipsis (layer specs and paths can be long)."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
