"""The method comparison, one source for every copy of its table: python scripts/compare_methods.py [--quick]

Runs every method (`research.compare.METHODS`) on the four bundled pairs with three seeds, 300 steps at
256 px (the full comparison: 144 runs, about 2 h on a 2-core CPU with float32), scores each output
with every offline metric, and stores it all in benchmarks/method_comparison.json after each run
(rerun the same command to resume). Then it prints the report, writes the README's table between its
markers, and draws img/results/06_method_comparison.png (intervals per method) and
img/results/06_methods.jpg (the first pair, seed 0, every method).

--quick: 64 px, 3 steps, two pairs, two seeds, into out/method_comparison_quick.json (how CI runs the
mechanics; it touches neither the README nor img/results/). --weights imagenet reruns it with
ImageNet weights (into out/method_comparison_imagenet.json unless --out says otherwise).
"""

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # research/ is the clone's, not the package's

from nstkit.core.errors import NstkitError  # noqa: E402
from research import compare  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
FIGURE = REPO / "img" / "results" / "06_method_comparison.png"
GRID = REPO / "img" / "results" / "06_methods.jpg"


def record(figure: Path, results: dict, shows: str, caption: str) -> dict:
    """The figure's run record: what it shows, what made it, and the results file it was drawn from."""
    return {"figure": str(figure.relative_to(REPO)), "shows": shows, "caption": caption,
            "made_by": compare.made_by(results), "settings": results["settings"],
            "from": str(compare.RESULTS.relative_to(REPO))}


def figures(results: dict, images: Path) -> None:
    """The interval plot of the two style distances and the SSIM, and the first cell's image grid, drawn by
    `nstkit.ui.figures` (110 dpi, 10-pt text, at most six images a row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from nstkit.media.images import bundled_image, load_image
    from nstkit.ui.figures import add_caption, image_grid, save_figure_file, use_legible_defaults

    use_legible_defaults()
    methods = results["settings"]["methods"]
    cells = compare.complete_cells(results)
    metrics = ("gram_distance", "patch_distance", "ssim_luminance")
    figure, axes = plt.subplots(1, len(metrics), figsize=(13, 0.34 * len(methods) + 1.4), sharey=True)
    for axis, metric in zip(axes, metrics):
        stats = [compare.interval(results, m, metric) for m in methods]
        means = np.array([s[0] for s in stats])
        errors = np.array([[s[0] - s[1], s[2] - s[0]] for s in stats]).T
        axis.errorbar(means, np.arange(len(methods)), xerr=errors, fmt="o", capsize=3)
        axis.axvline(means[methods.index(compare.BASELINE)], color="grey", lw=0.8, ls="--")
        axis.set_title(metric.replace("_", " ") + ("\n(higher: more content)" if metric in compare.HIGHER_IS_BETTER
                                                   else "\n(lower: nearer the style)"))
    axes[0].set_yticks(np.arange(len(methods)), methods)
    axes[0].invert_yaxis()
    figure.tight_layout()
    caption = (f"Each method's mean and 95% interval over {len(cells)} (pair, seed) cells; the dashed line is "
               f"{compare.BASELINE}'s. {compare.made_by(results)}")
    add_caption(figure, caption)
    save_figure_file(figure, FIGURE, record(FIGURE, results, "each method's mean and 95% interval of both style "
                                            "distances and the content SSIM", caption))
    print(f"saved {FIGURE.relative_to(REPO)} and its record")
    (pair, seed), settings = cells[0], results["settings"]
    stems = "-".join(Path(name).stem for name in pair)
    outputs = [images / f"{m.replace(' ', '_').replace('+', '_')}-{stems}-seed{seed}.png" for m in methods]
    if all(path.exists() for path in outputs):
        row = [bundled_image(pair[0], settings["max_dim"]), bundled_image(pair[1], settings["max_dim"]),
               *(load_image(path) for path in outputs)]
        caption = f"{pair[0]} x {pair[1]}, seed {seed}, every method: {compare.made_by(results)}"
        grid = image_grid([[np.clip(np.rint(image), 0, 255).astype(np.uint8) for image in row]],
                          col_labels=["content", "style", *methods], cell=2.0, caption=caption)
        save_figure_file(grid, GRID, record(GRID, results, f"{pair[0]} x {pair[1]}, seed {seed}, every method",
                                            caption))
        print(f"saved {GRID.relative_to(REPO)} and its record")
    else:
        print(f"no image grid: the outputs of {pair[0]} x {pair[1]} seed {seed} are not in {images}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 px, 3 steps, 2 pairs, 2 seeds: the mechanics only")
    parser.add_argument("--weights", default="random", help="random (one network per seed), imagenet, or a path")
    parser.add_argument("--methods", nargs="+", choices=list(compare.METHODS), help="a subset (default: all)")
    parser.add_argument("--out", type=Path, help="the results file (default: see above)")
    parser.add_argument("--images", type=Path, help="where each output and its run record go "
                                                     "(default: out/method_comparison[_quick]/)")
    parser.add_argument("--rerun", nargs="+", default=(), choices=list(compare.METHODS), metavar="METHOD",
                        help="run these stored methods again with today's options (their stored runs are dropped)")
    parser.add_argument("--report-only", action="store_true", help="report the stored results, run nothing")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md and img/results/ as they are")
    args = parser.parse_args()
    settings = compare.QUICK if args.quick else compare.FULL
    settings = dataclasses.replace(settings, weights=args.weights,
                                   methods=tuple(args.methods) if args.methods else settings.methods)
    official = not args.quick and args.weights == "random" and args.methods is None and args.out is None
    suffix = "_quick" if args.quick else ("" if args.weights == "random" else f"_{Path(args.weights).stem}")
    out = args.out or (compare.RESULTS if official else REPO / "out" / f"method_comparison{suffix}.json")
    images = args.images or REPO / "out" / f"method_comparison{suffix}"
    try:
        results = compare.load(out) if args.report_only else compare.run(settings, out, images=images, rerun=args.rerun)
        print(compare.report(results))
        if official and not args.no_readme:
            README.write_text(compare.readme_with_table(README.read_text(), results))
            print(f"wrote the table into {README.relative_to(REPO)}")
            figures(results, images)
    except NstkitError as error:
        print(f"compare_methods: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"compare_methods: stopped; the finished runs are in {out}: rerun the same command to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
