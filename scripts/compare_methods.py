"""Print notebook 06's comparison table: python scripts/compare_methods.py [--weights random] [--steps 200]

Runs every method (vanilla, robust, SWAG, Fourier, SWAG+Fourier, VGG19) on the bundled content/style pairs
with equal step budgets and several seeds, and prints every offline metric as mean ± spread, the seconds
per step, which weights made the table, and whether SWAG and Fourier meet the issue's target.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nstkit.compare import METHODS, PAIRS, compare, summary, verdict  # noqa: E402
from nstkit.notebook import table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="random", help="imagenet, a path, or random (one network per seed)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--max-dim", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pairs", type=int, default=len(PAIRS), help="how many of the bundled pairs")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "float16"))
    args = parser.parse_args()
    runs = compare(args.methods, PAIRS[: args.pairs], args.seeds, weights=args.weights, steps=args.steps,
                   max_dim=args.max_dim, precision=args.precision)
    made_by = ("random weights (one seeded random network per seed), NOT ImageNet"
               if args.weights.startswith("random") else f"weights {args.weights}")
    print(f"\n# {len(runs)} runs: {args.pairs} pairs x {len(args.methods)} methods x {len(args.seeds)} seeds, "
          f"{args.steps} steps at {args.max_dim} px, {args.precision}; {made_by}; Gram distance judged by a held-out random ResNet-50")
    print(table(summary(runs)))
    print("\n".join(verdict(runs)))


if __name__ == "__main__":
    main()
