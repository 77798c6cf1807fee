"""The README's figures of the artists' controls (#14), and their offline metrics, from one command.

    python scripts/control_figures.py [--only style_scale style_loss ...] [--steps 200] [--max-dim 192]
    python scripts/control_figures.py --weights imagenet      # the same figures with the real network

Each figure is a row of results, one per setting, labelled with the flag that made it; the caption says the
weights, size and steps. Each run is scored without ImageNet weights (`nstkit.measure.metrics.evaluate`: content SSIM,
held-out Gram distance, colour distance) and the table is printed and stored in the figure's JSON record.
With random weights the images show the mechanics (palette, fine texture), not what a control does to the
style's shapes: the metrics below cannot judge that, and the command above reruns them with ImageNet weights.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CONTENT, STYLE, SECOND_STYLE = "chelsea.jpg", "mosaic.png", "waves.png"
# Each control: (title, [(label: the flags that made it, stylize options)], style images)
CONTROLS = {
    "style_scale": ("--style-scale: the style's texture at 0.5x, 1x and 2x the output's size",
                    [("--style-scale 0.5", {"style_scale": 0.5}), ("--style-scale 1", {"style_scale": 1.0}),
                     ("--style-scale 2", {"style_scale": 2.0})]),
    "style_loss": ("--style-loss: the statistics the style loss matches",
                   [(f"--style-loss {name}", {"style_loss": name})
                    for name in ("gram", "mean_cov", "wasserstein", "histogram")]),
    "sampled_losses": ("--style-loss remd, nn and mrf draw features at 1024 positions each step; "
                       "--content-loss self_similarity keeps the content's pattern of cosine distances",
                       [("--style-loss gram", {"style_loss": "gram"}), ("--style-loss remd", {"style_loss": "remd"}),
                        ("--style-loss remd\n--content-loss self_similarity",
                         {"style_loss": "remd", "content_loss": "self_similarity"}),
                        ("--style-loss nn", {"style_loss": "nn"}), ("--style-loss mrf", {"style_loss": "mrf"})]),
    "color": (f"--color-transfer: recoloured before the run; the default --color-from content gives the style the "
              f"content's colours, style gives the content the style's, {SECOND_STYLE} a third image's",
              [("no transfer", {}), ("--color-transfer histogram", {"color_transfer": "histogram"}),
               ("--color-from style", {"color_from": "style"}),
               ("--color-from style\n--color-transfer mean_cov", {"color_from": "style", "color_transfer": "mean_cov"}),
               (f"--color-from {SECOND_STYLE}", {"color_from": SECOND_STYLE})]),
    "mask": ("--mask: two styles on two regions (left: mosaic, right: waves), and one style on the right only",
             [("--mask halves.png (2 styles)", {"mask": "halves", "styles": [STYLE, SECOND_STYLE]}),
              ("--mask right.png (black: unstyled)", {"mask": "right"})]),
    "init": ("--init: where the optimisation starts",
             [(f"--init {name}", {"init": name}) for name in ("content", "gray", "uniform", "style_stats")]),
    "pooling": ("--pooling: ResNet-50's max pool after conv1, or an average pool of the same window",
                [("--pooling max", {"pooling": "max"}), ("--pooling avg", {"pooling": "avg"})]),
}
METRICS = ("ssim_luminance", "gram_distance", "color_histogram")


def masks(folder: Path, shape: tuple[int, int]) -> dict[str, Path]:
    """Two masks over the content: red/blue halves (two styles), and black/white halves (the right styled)."""
    height, width = shape
    halves = np.zeros((height, width, 3), np.uint8)
    halves[:, : width // 2], halves[:, width // 2:] = (255, 0, 0), (0, 0, 255)
    right = np.zeros((height, width), np.uint8)
    right[:, width // 2:] = 255
    paths = {"halves": folder / "halves.png", "right": folder / "right.png"}
    Image.fromarray(halves).save(paths["halves"])
    Image.fromarray(right).save(paths["right"])
    return paths


def run_control(name: str, settings, folder: Path) -> dict:
    import nstkit
    from nstkit.measure.metrics import evaluate
    from nstkit.media.images import bundled_image

    title, runs = CONTROLS[name]
    content = bundled_image(CONTENT, settings.max_dim)
    mask_paths = masks(folder, content.shape[:2])
    images, rows = [], []
    for label, options in runs:
        options = dict(options)
        styles = [bundled_image(s, settings.max_dim) for s in options.pop("styles", [STYLE])]
        if "mask" in options:
            options["mask"] = str(mask_paths[options["mask"]])
        if options.get("color_from", "content") not in ("content", "style"):
            options["color_from"] = str(nstkit.sample(options["color_from"]))  # a bundled image as the palette
        result = nstkit.stylize(content, styles if len(styles) > 1 else styles[0],
                                **settings.run_options(**options))
        scores = evaluate(result.image, content, styles[0])
        images.append(result.image)
        rows.append({"run": label, **{m: float(scores[m]) for m in METRICS},
                     "s/step": float(result.record["seconds_per_step"])})
        print(f"  {label}: " + ", ".join(f"{k} {v:.4g}" for k, v in rows[-1].items() if k != "run"))
    return {"title": title, "images": images, "rows": rows, "content": content}


def bit_depth_figure(settings) -> None:
    """What --bit-depth 16 keeps: each encoding's difference from the unrounded image, amplified 40x."""
    import nstkit
    from nstkit.media.images import bundled_image, to_uint16
    from nstkit.ui.notebook import image_grid, save_figure

    print("# bit_depth")
    content = bundled_image(CONTENT, settings.max_dim)
    result = nstkit.stylize(content, bundled_image(STYLE, settings.max_dim), **settings.run_options())
    exact = result.float_image
    eight = np.round(np.clip(exact, 0, 255))
    sixteen = to_uint16(exact) / 65535 * 255
    amplify = lambda error: np.clip(127.5 + 40 * error, 0, 255).astype(np.uint8)  # noqa: E731
    rows = [{"run": "--bit-depth 8", "max error (levels of 255)": float(np.abs(eight - exact).max())},
            {"run": "--bit-depth 16", "max error (levels of 255)": float(np.abs(sixteen - exact).max())}]
    for row in rows:
        print(f"  {row['run']}: max error {row['max error (levels of 255)']:.2e} of 255")
    caption = settings.caption(f"--bit-depth: the output, and each encoding's difference from the unrounded image "
                               f"x40 (mid-gray: none); {CONTENT} x {STYLE}")
    figure = image_grid([[result.image, amplify(eight - exact), amplify(sixteen - exact)]],
                        col_labels=["the output", "8 bits: error x40", "16 bits: error x40"], caption=caption, cell=2.2)
    save_figure(figure, "controls_bit_depth", caption, settings, metrics=rows,
                command=f"python scripts/control_figures.py --only bit_depth --steps {settings.steps} "
                        f"--max-dim {settings.max_dim} --weights {settings.weights}")


def main() -> None:
    from nstkit.network.device import describe
    from nstkit.ui.notebook import NotebookSettings, image_grid, save_figure, table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[*CONTROLS, "bit_depth"], default=[*CONTROLS, "bit_depth"])
    parser.add_argument("--weights", default="random")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--max-dim", type=int, default=192)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    settings = NotebookSettings(args.weights, quick=False, steps=args.steps, max_dim=args.max_dim,
                                device=describe(), precision=args.precision, mode="script")
    with tempfile.TemporaryDirectory() as folder:
        for name in (n for n in args.only if n in CONTROLS):
            print(f"# {name}")
            made = run_control(name, settings, Path(folder))
            caption = settings.caption(f"{made['title']}; {CONTENT} x {STYLE}")
            figure = image_grid([made["images"]], col_labels=[row["run"] for row in made["rows"]],
                                caption=caption, cell=2.2)
            save_figure(figure, f"controls_{name}", caption, settings,
                        command=f"python scripts/control_figures.py --only {name} --steps {args.steps} "
                                f"--max-dim {args.max_dim} --weights {args.weights}",
                        metrics=made["rows"])
            print(table(made["rows"]))
        if "bit_depth" in args.only:
            bit_depth_figure(settings)


if __name__ == "__main__":
    main()
