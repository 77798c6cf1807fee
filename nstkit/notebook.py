"""What the numbered notebooks share: settings from the environment, figures, captions.

Each notebook's set-up cell calls `setup()`. One place decides the weights
and the size of every run:

- ``NSTKIT_WEIGHTS``: ``imagenet`` (default), ``random[:SEED]`` or a path;
- ``NSTKIT_QUICK=1``: tiny images, few steps, random weights, so every
  notebook runs top to bottom in CI (nbval) in well under a minute;
- ``NSTKIT_STEPS`` / ``NSTKIT_MAX_DIM``: override the run length and size;
- ``NSTKIT_PRECISION``: ``float32`` (default), ``bfloat16`` (AMX CPUs, recent GPUs) or
  ``float16`` (GPUs): the network's compute precision, for faster runs on Colab's GPUs.

When the weights are random, `setup` prints a banner, and every saved
figure's caption says so: such images show the mechanics, not what
ResNet-50's learned features do.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import precision_from_environment
from .errors import NstkitError  # noqa: F401  (notebooks catch it as nb.NstkitError)
from .images import BUNDLED_IMAGES, bundled_image
from .quiet import import_tensorflow_quietly

IMG = BUNDLED_IMAGES
REPO = IMG.parent
RESULTS = IMG / "results"
RANDOM_BANNER = ("RANDOM WEIGHTS: these images show the mechanics of each experiment, not what "
                 "ResNet-50's ImageNet features do. Set NSTKIT_WEIGHTS=imagenet (the default) for real results.")


@dataclass(frozen=True)
class NotebookSettings:
    weights: str
    quick: bool
    steps: int
    max_dim: int
    device: str
    precision: str = "float32"

    @property
    def random_weights(self) -> bool:
        return self.weights.startswith("random")

    def caption(self, text: str) -> str:
        made = "random weights, not ImageNet" if self.random_weights else f"weights: {self.weights}"
        precision = "" if self.precision == "float32" else f", {self.precision}"
        return f"{text} ({made}; {self.steps} steps, {self.max_dim} px{precision})"

    def run_options(self, **overrides) -> dict:
        """Keyword arguments for `nstkit.stylize` with this notebook's weights, size, steps and precision."""
        precision = {} if self.precision == "float32" else {"precision": self.precision}
        return {"weights": self.weights, "steps": self.steps, "max_dim": self.max_dim, **precision, **overrides}


def setup(verbose: bool = True) -> NotebookSettings:
    """Read the environment, import TensorFlow without log noise, report weights and device."""
    from .widgets import enable_colab_widgets

    import matplotlib

    _, gpus = import_tensorflow_quietly()
    enable_colab_widgets()
    matplotlib.rcParams["figure.dpi"] = 72  # inline figures at screen size keep stored notebooks small
    with contextlib.suppress(ImportError):  # JPEG: grids of noisy images are ~10x smaller than PNG
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("jpeg", pil_kwargs={"quality": 80})
    quick = os.environ.get("NSTKIT_QUICK", "") not in ("", "0")
    weights = os.environ.get("NSTKIT_WEIGHTS") or ("random" if quick else "imagenet")
    steps = int(os.environ.get("NSTKIT_STEPS") or (20 if quick else 1000))
    max_dim = int(os.environ.get("NSTKIT_MAX_DIM") or (64 if quick else 512))
    precision = precision_from_environment() or "float32"
    device = "GPU" if gpus else "CPU"
    settings = NotebookSettings(weights, quick, steps, max_dim, device, precision)
    if verbose:
        print(f"nstkit: weights={weights} steps={steps} max_dim={max_dim} device={device}"
              + (f" precision={precision}" if precision != "float32" else "") + (" quick mode" if quick else ""))
        if settings.random_weights:
            print("*" * 20 + "\n" + RANDOM_BANNER + "\n" + "*" * 20)
    return settings


def image(name: str, max_dim: int) -> np.ndarray:
    """A bundled image by file name, e.g. image("hexagons.png", 512)."""
    return bundled_image(name, max_dim)


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str] = (),
               col_labels: Sequence[str] = (), title: str = "", cell: float = 2.4):
    """A contact sheet of images, rows x columns, with labels."""
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    aspect = max(image.shape[0] / image.shape[1] for row in rows for image in row)  # height/width
    figsize = (cell * n_cols, cell * n_rows * aspect + (0.5 if title else 0.3))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(row):
                ax.imshow(row[c])
            else:
                ax.axis("off")
            if r == 0 and c < len(col_labels):
                ax.set_title(col_labels[c], fontsize=9)
            if c == 0 and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_losses(histories: dict, terms: Sequence[str] = ("total", "content", "style"), title: str = ""):
    """Loss curves, one panel per term, one line per run (label -> history)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(terms), figsize=(3.6 * len(terms), 2.8), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for label, history in histories.items():
            values = np.asarray(history[term])
            if np.any(values > 0):
                ax.plot(np.arange(1, len(values) + 1), values, label=label)
        ax.set_yscale("log")
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("step")
    axes[0][-1].legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def table(rows: Sequence[dict], columns: Sequence[str] | None = None, floats: str = "{:.3g}") -> str:
    """A plain-text table (stable across machines when given stable values)."""
    columns = list(columns or rows[0].keys())
    cells = [[floats.format(row[c]) if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def save_figure(figure, name: str, caption: str, settings: NotebookSettings) -> Path | None:
    """Save a README figure with its caption record to img/results/ (skipped in quick mode)."""
    if settings.quick:
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.jpg"  # photos in a grid: JPEG is a tenth of PNG's size
    figure.savefig(path, dpi=72, bbox_inches="tight", pil_kwargs={"quality": 85})
    record = {"figure": str(path.relative_to(REPO)), "caption": settings.caption(caption),
              "weights": settings.weights, "random_weights": settings.random_weights,
              "steps": settings.steps, "max_dim": settings.max_dim, "device": settings.device}
    path.with_suffix(".json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"saved {path.relative_to(REPO)}: {record['caption']}")
    return path
