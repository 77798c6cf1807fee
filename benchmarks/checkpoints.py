"""What checkpoints cost: a run with a checkpoint after every step, against the same run without, in one process.

    python benchmarks/checkpoints.py [--size 512] [--steps 20] [--precision bfloat16]

Prints the seconds one checkpoint takes to write (it holds the image's parameters, Adam's two moments and the
best image: four image-sized float32 arrays, plus the history), the run's seconds per step, and what a
checkpoint a minute (the default for runs expected to take over three minutes) costs as a share of run time.
Random weights; timings drift 10-40% on a shared machine, so the ratio comes from one run.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import nstkit  # noqa: E402
from nstkit.run.checkpoint import AUTO_INTERVAL_SECONDS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", default="bfloat16")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (args.size * 3 // 4, args.size, 3)).astype(np.float32)
    options = dict(steps=args.steps, max_dim=args.size, weights="random", precision=args.precision,
                   optimizer="adam")  # Adam's state, as measured for BENCHMARKS.md (L-BFGS's holds ~8x more)
    nstkit.stylize(content, content[::-1], **{**options, "steps": 2})  # build and trace once, outside the timing
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        plain = nstkit.stylize(content, content[::-1], **options)
        plain_wall = time.perf_counter() - started
        started = time.perf_counter()
        kept = nstkit.stylize(content, content[::-1], checkpoint=os.path.join(folder, "run.npz"), checkpoint_every=1,
                              **options)
        kept_wall = time.perf_counter() - started
    written = kept.record["checkpoints"]["written"]
    per_checkpoint = kept.record["checkpoints"]["seconds_writing"] / written
    per_step = plain.record["seconds_per_step"]
    print(f"{args.size} px {args.precision}: {per_step:.3f} s/step; a checkpoint takes {per_checkpoint * 1000:.0f} ms "
          f"to write ({written} written); a run with one every step took {kept_wall / plain_wall:.2f}x as long")
    print(f"one checkpoint a minute (the default for long runs): {per_checkpoint / AUTO_INTERVAL_SECONDS:.2%} of run "
          f"time; one every {max(1, round(AUTO_INTERVAL_SECONDS / per_step))} steps at this speed")


if __name__ == "__main__":
    main()
