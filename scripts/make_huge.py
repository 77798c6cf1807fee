"""Stylise a 4096 px image in tiles on a CPU box, and keep crops of it for the README.

    python scripts/make_huge.py                       # the README's run: 9-13 min on the 2-core box
    python scripts/make_huge.py --start-steps 3 --steps 1 --no-crops   # time a step first, to budget

The bundled content images are 512 px, so the most detailed one (coffee.jpg,
by mean luminance gradient) is first upscaled 8x (Lanczos) to 4096x2728: the
input is smooth at full size, and the detail at 4096 px is what the tiles add.
Random weights (seed 0), not ImageNet: palette and fine texture, not shapes.

Writes the full-size result to out/huge/ (git-ignored) and, unless
``--no-crops``, two crops with their run records to img/results/:

- ``huge_tiles_crop.jpg``: 768x512 px at 1:1 around the corner where four
  tiles of a fixed 512 px grid meet, (2048, 1536): where a tiler that does
  not shift its grid would leave its seams;
- ``huge_tiles_before_after.jpg``: the same spot, the one-pass start
  upsampled (left) and after the tiled refinement (right).

The record also holds a seam measure (`seam_report`): how strongly the colour
steps across each step's tile borders, and across a fixed 512 px grid,
against the median row / column boundary (1.0: a border looks like anywhere
else), with the 99th percentile of all boundaries for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nstkit.core.record import write_record  # noqa: E402
from nstkit.measure.memory import measured_peak_rss_bytes  # noqa: E402
from nstkit.media.images import Encoding, load_image, resize_to, save_image, to_uint8  # noqa: E402

CONTENT = ROOT / "nstkit/media/samples/content/coffee.jpg"
STYLE = ROOT / "nstkit/media/samples/style/strokes.png"
LONG_SIDE = 4096
CROP = (768, 512)  # width, height
CROP_CENTRE = (2048, 1536)  # x, y: a corner of a fixed 512 px grid


def upscaled_content() -> np.ndarray:
    rgb = load_image(CONTENT)
    scale = LONG_SIDE / max(rgb.shape[:2])
    return resize_to(rgb, round(rgb.shape[0] * scale), round(rgb.shape[1] * scale))


def crop(rgb: np.ndarray, centre=CROP_CENTRE, size=CROP) -> np.ndarray:
    (x, y), (width, height) = centre, size
    return rgb[y - height // 2:y + height // 2, x - width // 2:x + width // 2]


def step_profile(rgb: np.ndarray, axis: int, band: int = 8) -> np.ndarray:
    """For each row (axis 0) or column (axis 1) boundary p: mean |mean of the next `band` px - of the previous|.

    A seam is a colour step under the texture: it stands out of this profile, while pixel noise averages away.
    Entry i is the boundary at position band + i.
    """
    pixels = rgb.astype(np.float64)
    if axis == 0:
        pixels = pixels.transpose(1, 0, 2)
    sums = np.cumsum(np.pad(pixels, ((0, 0), (1, 0), (0, 0))), axis=1)
    positions = np.arange(band, pixels.shape[1] - band)
    after = (sums[:, positions + band] - sums[:, positions]) / band
    before = (sums[:, positions] - sums[:, positions - band]) / band
    return np.abs(after - before).mean(axis=(0, 2))


def seam_report(rgb: np.ndarray, offsets: list[list[int]], tile: int, band: int = 8) -> dict:
    """Step strength at tile borders over the median boundary's (1.0: a border looks like anywhere else)."""
    report = {}
    for axis, name in ((0, "rows"), (1, "columns")):
        profile = step_profile(rgb, axis, band)
        median, size = np.median(profile), rgb.shape[axis]

        def at(borders):
            inside = [b - band for b in borders if band <= b < size - band]
            return round(float(np.mean(profile[inside]) / median), 3) if inside else None

        report[name] = {
            "each_step_borders": [at(range(tile - offset[axis], size, tile)) for offset in offsets],
            "fixed_512_grid": at(range(tile, size, tile)),
            "99th_percentile_of_all_boundaries": round(float(np.percentile(profile, 99) / median), 3)}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="tiled steps at 4096 px")
    parser.add_argument("--start-steps", type=int, default=120, help="one-pass steps at --start-dim")
    parser.add_argument("--start-dim", type=int, default=1024)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--precision", default="bfloat16", help="bfloat16: 1.4x faster per window on this CPU")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "out/huge")
    parser.add_argument("--no-crops", action="store_true", help="do not write img/results/ (for timing runs)")
    args = parser.parse_args()

    import nstkit

    content = upscaled_content()
    print(f"content {CONTENT.name} upscaled to {content.shape[1]}x{content.shape[0]}", flush=True)
    starts: dict[str, np.ndarray] = {}

    def report(progress) -> None:
        if progress.step == args.start_steps and "start" not in starts:  # the start's last image, upsampled
            starts["start"] = progress.best_image()
        if progress.step % 25 == 0 or progress.step > args.start_steps:
            print(f"step {progress.step}/{progress.steps}  loss {progress.losses['total']:.4g}  "
                  f"{progress.elapsed:.0f} s  peak RSS {peak_rss_gib():.2f} GiB", flush=True)

    started = time.perf_counter()
    result = nstkit.stylize_tiled(content, STYLE, weights="random", precision=args.precision, max_dim=LONG_SIDE,
                                  tile_size=args.tile_size, tile_start_dim=args.start_dim,
                                  tile_start_steps=args.start_steps, steps=args.steps, callbacks=[report])
    wall = time.perf_counter() - started
    args.out_dir.mkdir(parents=True, exist_ok=True)
    full = result.save(args.out_dir / "coffee_strokes_4096.png")
    record = result.record
    tiled = record["stages"][-1]
    tile = tiled["tile_size"]
    height, width = result.image.shape[:2]
    made = {
        "made_by": "scripts/make_huge.py",
        "content_note": (f"{CONTENT.relative_to(ROOT)} ({load_image(CONTENT).shape[1]}x{load_image(CONTENT).shape[0]}) "
                         f"upscaled 8x with Lanczos to {width}x{height} before stylising"),
        "weights_note": "random weights (seed 0), not ImageNet: palette and fine texture, not shapes",
        "image_size": [height, width],
        "tile_size": tile,
        "tile_overlap": tiled["tile_overlap"],
        "start": record["stages"][0] if len(record["stages"]) > 1 else None,
        "tiled_steps": tiled["steps_run"],
        "seconds_per_tiled_step": tiled["seconds_per_step"],
        "wall_time_s": round(wall, 1),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "seam_measure": seam_report(result.image, tiled["tile_offsets"], tile),
        "full_size_output": str(full.relative_to(ROOT)),
    }
    print(json.dumps(made, indent=2), flush=True)
    if args.no_crops:
        return 0
    results = ROOT / "img/results"
    centre = {"crop_centre_xy": list(CROP_CENTRE), "crop_size_wh": list(CROP)}
    saved = save_image(results / "huge_tiles_crop.jpg", crop(result.image), encoding=Encoding(quality=75))
    write_record(saved, {**record, **made, **centre, "figure": f"{saved.name}: a 1:1 crop of the 4096 px result"})
    if "start" in starts:
        before = crop(to_uint8(resize_to(starts["start"].astype(np.float32), height, width)))
        pair = np.concatenate([before, np.full((CROP[1], 8, 3), 255, np.uint8), crop(result.image)], axis=1)
        saved = save_image(results / "huge_tiles_before_after.jpg", pair, encoding=Encoding(quality=75))
        write_record(saved, {**record, **made, **centre,
                             "figure": f"{saved.name}: left, the one-pass start at {args.start_dim} px upsampled; "
                                       "right, after the tiled steps at 4096 px (1:1 crops of the same spot)"})
    return 0


def peak_rss_gib() -> float:
    return measured_peak_rss_bytes() / 2 ** 30


if __name__ == "__main__":
    sys.exit(main())
