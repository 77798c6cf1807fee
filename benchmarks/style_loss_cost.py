"""What each style loss costs a step: seconds per Adam step at one size, every --style-loss side by side in one run.

    python benchmarks/style_loss_cost.py [--size 512] [--steps 12] [--losses gram remd nn mrf] [--preset robust]

Each loss runs ``--steps`` Adam steps (float32, random weights, chelsea x mosaic) in this process, one after the
other; the first step (the trace) is left out of the median. Printed: the median seconds per step and the ratio
to the Gram loss's, measured in the same run. The sampled losses (remd, nn, mrf) draw 1024 of the image's
positions per layer and step against 2048 of the style's (`nstkit.objective.style_stats`).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def seconds_per_step(style_loss: str, size: int, steps: int, preset: str) -> float:
    import nstkit
    from nstkit.media.images import sample

    times: list[float] = []
    last = [None]

    def clock(progress) -> None:
        now = time.perf_counter()
        if last[0] is not None:
            times.append(now - last[0])
        last[0] = now

    nstkit.stylize(sample("chelsea.jpg"), sample("mosaic.png"), preset=preset, style_loss=style_loss,
                   steps=steps, max_dim=size, weights="random", precision="float32", optimizer="adam",
                   callbacks=[clock], progress=False)
    return float(np.median(times))


def main() -> None:
    from nstkit.core.config import STYLE_LOSSES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--preset", default="robust")
    parser.add_argument("--losses", nargs="+", default=["gram", "remd", "nn", "mrf"], choices=STYLE_LOSSES)
    args = parser.parse_args()

    from nstkit.network.device import describe

    print(f"machine: {describe()}\n{args.preset}, {args.size} px, Adam, float32, {args.steps} steps each "
          "(median of all but the first)")
    measured = {name: seconds_per_step(name, args.size, args.steps, args.preset) for name in args.losses}
    base = measured.get("gram")
    for name, seconds in measured.items():
        ratio = f"{seconds / base:.2f}x the gram loss's" if base else ""
        print(f"  {name:12s} {seconds:.3f} s/step  {ratio}")


if __name__ == "__main__":
    main()
