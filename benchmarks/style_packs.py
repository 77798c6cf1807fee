"""What a style pack saves (#26 item 6): a sweep of 8 and a 24-frame clip, from the style image and from its pack.

    python benchmarks/style_packs.py [--max-dim 256] [--steps 20] [--frames 24] [--style-loss gram remd]

For each style loss: the pack is made once (its seconds printed), then the same sweep (8 style weights, one local
worker process, ``--steps`` steps each) and the same clip (``--frames`` frames of a pan, 1 step each after the
first) run from the image and from the pack, side by side in one run; printed are both wall times, the
difference and the ratio. A pack saves, per run, reading and resizing the style, one network pass over it per
stage size, and the summary of its features (a sampled loss's points, the histogram's quantiles); it cannot save
the steps, so its share shrinks as the steps grow. A clip already computes its style's statistics once for all
frames (`run.state.Compiled`), so there the pack saves one pass. Random weights: the time does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _timed(call):
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-dim", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--style-loss", nargs="+", default=["gram", "remd"])
    args = parser.parse_args()

    import nstkit
    from nstkit.api.pack import make_pack
    from nstkit.api.video import stylize_video
    from nstkit.media.clips import Clip
    from nstkit.media.images import bundled_image
    from nstkit.network.device import describe

    content, style = bundled_image("chelsea.jpg", args.max_dim), str(nstkit.sample("mosaic.png"))
    wide = bundled_image("coffee.jpg")  # a pan over it: each frame 4 px further right
    side = min(wide.shape[0], args.max_dim)
    frames = [np.ascontiguousarray(wide[:side, 4 * i: 4 * i + side]).astype(np.uint8) for i in range(args.frames)]
    clip = Clip(frames, 24.0, "coffee pan", [f"frame_{i:05d}" for i in range(args.frames)])
    print(f"{describe()}; {args.max_dim} px, sweep of 8 x {args.steps} steps, clip of {args.frames} frames; "
          "random weights")
    for loss in args.style_loss:
        common = dict(max_dim=args.max_dim, weights="random:0", precision="float32", style_loss=loss,
                      **({"optimizer": "adam"} if loss in ("remd", "nn", "mrf") else {}))
        with tempfile.TemporaryDirectory() as folder:
            pack, made = _timed(lambda: make_pack([style], Path(folder) / "style.npz", **common))
            grid = {"style_weight": [10.0 ** e for e in np.linspace(6, 9, 8)]}
            rows = {}
            for name, source in (("image", style), ("pack", str(pack))):
                _, rows[f"sweep from the {name}"] = _timed(lambda: nstkit.sweep(
                    content, source, grid, workers=1, progress=False, steps=args.steps, **common))
                _, rows[f"clip from the {name}"] = _timed(lambda: stylize_video(
                    clip, source, None, steps=1, frame_steps=1, progress=False, **common))
        print(f"\nstyle loss {loss}: the pack took {made:.1f} s to make")
        for what in ("sweep", "clip"):
            image, packed = rows[f"{what} from the image"], rows[f"{what} from the pack"]
            print(f"  {what:5}: image {image:6.1f} s, pack {packed:6.1f} s: saves {image - packed:5.1f} s "
                  f"({100 * (image - packed) / image:4.1f}%, x{image / packed:.2f})")


if __name__ == "__main__":
    main()
