"""Rebuild the bundled samples (nstkit/media/samples/content and style): `python scripts/make_images.py`.

Content images are scikit-image's bundled samples (public domain / CC0),
downscaled to 512 px and stored as JPEG to keep the repo light. Style
images are drawn here from a fixed seed, so they carry no third-party
licence; `hexagons.png` is a geometric tiling like the seed's hex.png test.
The output is byte-identical on every run (fixed seeds, no timestamps).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1] / "nstkit" / "media" / "samples"
SIZE = 512
PALETTE = [(230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87), (244, 162, 97),
           (233, 196, 106), (42, 157, 143)]


def content_images() -> None:
    from skimage import data

    out = ROOT / "content"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        image = Image.fromarray(getattr(data, name)())
        image.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
        image.save(out / f"{name}.jpg", quality=88, optimize=True)


def hexagons(rng: np.random.Generator) -> Image.Image:
    """Flat-topped hexagon tiling, each cell a palette colour, dark outlines: pure geometry, no texture."""
    image = Image.new("RGB", (SIZE, SIZE), (20, 20, 30))
    draw = ImageDraw.Draw(image)
    radius = 40
    width, height = 1.5 * radius, math.sqrt(3) * radius
    for col in range(-1, int(SIZE / width) + 2):
        for row in range(-1, int(SIZE / height) + 2):
            cx = col * width
            cy = row * height + (height / 2 if col % 2 else 0)
            corners = [(cx + radius * math.cos(math.pi / 3 * k), cy + radius * math.sin(math.pi / 3 * k))
                       for k in range(6)]
            draw.polygon(corners, fill=PALETTE[rng.integers(len(PALETTE))], outline=(20, 20, 30), width=5)
    return image


def waves(rng: np.random.Generator) -> Image.Image:
    """Op-art bands: a warped sine field mapped to a palette."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    phase = rng.uniform(0, 2 * np.pi, 3)
    field = np.sin(14 * x + 3 * np.sin(6 * y + phase[0])) + np.sin(9 * y + 2 * np.cos(5 * x + phase[1]))
    bands = ((field - field.min()) / np.ptp(field) * (len(PALETTE) - 1e-6)).astype(int)
    return Image.fromarray(np.array(PALETTE, np.uint8)[bands])


def mosaic(rng: np.random.Generator) -> Image.Image:
    """Stained glass: Voronoi cells in palette colours with dark lead lines."""
    seeds = rng.uniform(0, SIZE, (90, 2))
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    distance = (x[..., None] - seeds[:, 0]) ** 2 + (y[..., None] - seeds[:, 1]) ** 2
    nearest = np.argsort(distance, axis=2)
    first = np.take_along_axis(distance, nearest[..., :1], 2)[..., 0]
    second = np.take_along_axis(distance, nearest[..., 1:2], 2)[..., 0]
    colours = np.array(PALETTE, np.uint8)[rng.integers(len(PALETTE), size=len(seeds))]
    pixels = colours[nearest[..., 0]]
    pixels[np.sqrt(second) - np.sqrt(first) < 3] = (25, 25, 25)
    return Image.fromarray(pixels)


def strokes(rng: np.random.Generator) -> Image.Image:
    """Thick short brush strokes following a swirling flow field."""
    image = Image.new("RGB", (SIZE, SIZE), PALETTE[4])
    draw = ImageDraw.Draw(image)
    for _ in range(2600):
        x, y = rng.uniform(0, SIZE, 2)
        angle = math.sin(x / 60) * 2 + math.cos(y / 45)
        length = rng.uniform(12, 30)
        end = (x + length * math.cos(angle), y + length * math.sin(angle))
        draw.line([(x, y), end], fill=PALETTE[rng.integers(len(PALETTE))], width=int(rng.integers(3, 8)))
    return image.filter(ImageFilter.SMOOTH)


def style_images() -> None:
    out = ROOT / "style"
    out.mkdir(parents=True, exist_ok=True)
    for seed, draw in enumerate((hexagons, waves, mosaic, strokes)):
        draw(np.random.default_rng(seed)).save(out / f"{draw.__name__}.png", optimize=True)


if __name__ == "__main__":
    content_images()
    style_images()
    for path in sorted(ROOT.rglob("*.*")):
        if path.suffix in (".png", ".jpg"):
            print(f"{path.relative_to(ROOT.parent)}: {path.stat().st_size // 1024} KB")
