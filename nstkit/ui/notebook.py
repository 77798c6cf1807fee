"""What the numbered notebooks share: settings from the environment, the cost up front, captioned figures.

Each notebook calls `setup` once, with the size and step count at which its
experiment shows in showcase mode. One place decides the weights and the
size of every run, from the environment (in Jupyter or Colab, set them
before `setup` runs: ``%env NSTKIT_MODE=showcase`` or ``os.environ[...]``):

- ``NSTKIT_MODE``: ``full`` (the default: ImageNet weights, the seed's 512 px
  and 1000 steps), ``showcase`` (random weights, each notebook's own size and
  steps, a few minutes on a 2-core CPU: how the stored outputs and the
  README's figures are made) or ``quick`` (64 px, 20 steps, random weights:
  how CI checks the notebooks; ``NSTKIT_QUICK=1`` says the same);
- ``NSTKIT_WEIGHTS``: ``imagenet``, ``random[:SEED]`` or a path, over the mode's;
- ``NSTKIT_STEPS`` / ``NSTKIT_MAX_DIM``: the run length and size, over the mode's;
- ``NSTKIT_PRECISION``: ``float32``, ``bfloat16`` or ``float16``; by default
  the precision that pays on this device in showcase mode and on GPUs
  (`device.preferred_precision`), float32 (the seed's exact objective) on a CPU otherwise.

With random weights `setup` prints a banner, and every figure's caption says
so: such images show the mechanics, not what ResNet-50's learned features do.
A bad setting is one line (no traceback), naming the variable and the fix.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import fields
from ..core.config import (
    OPTIONS,
    StyleConfig,
    parse_weights,
    precision_from_environment,
)
from ..core.errors import NstkitError
from ..media.images import BUNDLED_IMAGES, bundled_image
from ..network.quiet import import_tensorflow_quietly
from .figures import add_caption as with_caption  # noqa: F401  (the notebooks' names for the figure helpers)
from .figures import image_grid, plot_losses, save_figure_file, use_legible_defaults  # noqa: F401


def find_repository(start: os.PathLike | str | None = None) -> Path | None:
    """The clone of nstkit that ``start`` (default: the working directory, a notebook's own folder) sits in.

    The notebooks are the repository's: they save their figures into its img/results/ and read its stored
    comparison. The package itself is installed, and reads nothing of a checkout.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir() and (folder / "img").is_dir():
            return folder
    return None


IMG = BUNDLED_IMAGES  # the sample images, installed with the package
REPO = find_repository() or Path.cwd()  # outside a clone, figures and outputs go under the working directory
RESULTS = REPO / "img" / "results"
MODES = ("full", "showcase", "quick")
RANDOM_BANNER = ("RANDOM WEIGHTS: these images show the mechanics of each experiment, not what "
                 "ResNet-50's ImageNet features do. Set NSTKIT_WEIGHTS=imagenet (the default) for real results.")
SEED_OPTIMIZER = "adam"  # the seed's (lr 20, β1 0.99, ε 0.1): what the notebooks' runs use unless they say otherwise


@dataclass(frozen=True)
class NotebookSettings:
    weights: str
    quick: bool
    steps: int
    max_dim: int
    device: str
    precision: str = "float32"
    mode: str = "full"

    @property
    def random_weights(self) -> bool:
        return self.weights.startswith("random")

    @property
    def showcase(self) -> bool:
        return self.mode == "showcase"

    def caption(self, text: str, *, steps: int | None = None, max_dim: int | None = None) -> str:
        """``text`` and what made the figure: the weights, the steps, the size (and a low precision)."""
        made = "random weights, not ImageNet" if self.random_weights else f"weights: {self.weights}"
        precision = "" if self.precision == "float32" else f", {self.precision}"
        steps = self.steps if steps is None else steps
        ran = f"{steps} steps" if steps else "no optimisation"  # a statistic of the inputs: nothing ran
        return f"{text} ({made}; {ran}, {max_dim or self.max_dim} px{precision})"

    def run_options(self, **overrides) -> dict:
        """Keyword arguments for `nstkit.stylize` with this notebook's weights, size, steps and precision, and the
        seed's optimiser, Adam: the notebooks retrace the seed's runs step for step (nstkit's own default,
        optimizer "auto", takes L-BFGS where it applies: README, "Speed")."""
        return {"weights": self.weights, "steps": self.steps, "max_dim": self.max_dim, "precision": self.precision,
                "optimizer": SEED_OPTIMIZER, **overrides}


def setup(verbose: bool = True, *, showcase_steps: int = 200, showcase_max_dim: int = 256) -> NotebookSettings:
    """Read the environment, import TensorFlow without log noise, report the weights and the device.

    ``showcase_steps`` / ``showcase_max_dim``: this notebook's size and length in showcase mode.
    """
    from ..network import device
    from .panel import enable_colab_widgets

    settings = settings_from_environment(showcase_steps, showcase_max_dim)
    import_tensorflow_quietly()
    enable_colab_widgets()
    use_legible_defaults()  # hand-made plots too: 110 dpi, 10-pt text
    with contextlib.suppress(ImportError):  # JPEG: grids of noisy images are ~10x smaller than PNG
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("jpeg", pil_kwargs={"quality": 80})
    settings = NotebookSettings(**{**vars(settings), "device": device.describe(),
                                   # "auto" is named for what it is here, so every caption says the real one
                                   "precision": (device.resolve_precision(StyleConfig())[0].precision
                                                 if settings.precision == "auto"
                                                 else settings.precision or _default_precision(settings.mode))})
    if verbose:
        print(f"nstkit: mode={settings.mode} weights={settings.weights} steps={settings.steps} "
              f"max_dim={settings.max_dim} precision={settings.precision} optimizer={SEED_OPTIMIZER} (the seed's)")
        print(f"device: {settings.device}")
        if "GPU" not in settings.device.split(":")[0]:
            print("(On Colab, Runtime > Change runtime type > GPU runs these notebooks many times faster.)")
        if settings.random_weights:
            print("*" * 20 + "\n" + RANDOM_BANNER + "\n" + "*" * 20)
    return settings


def settings_from_environment(showcase_steps: int = 200, showcase_max_dim: int = 256) -> NotebookSettings:
    """The mode and its overrides from ``NSTKIT_*``, checked; precision None means "the device's choice"."""
    mode = (os.environ.get("NSTKIT_MODE") or "").strip().lower()
    quick_flag = os.environ.get("NSTKIT_QUICK", "") not in ("", "0")
    if mode and mode not in MODES:
        raise NstkitError(f"NSTKIT_MODE={mode}: use one of {', '.join(MODES)}")
    mode = mode or ("quick" if quick_flag else "full")
    weights, steps, max_dim = {"quick": ("random", 20, 64), "showcase": ("random", showcase_steps, showcase_max_dim),
                               "full": ("imagenet", 1000, 512)}[mode]
    weights = os.environ.get("NSTKIT_WEIGHTS") or weights
    try:
        parse_weights(weights)
    except NstkitError as error:
        raise NstkitError(f"NSTKIT_WEIGHTS: {error}") from None
    steps = _whole_from_environment("NSTKIT_STEPS", "steps", steps)
    max_dim = _whole_from_environment("NSTKIT_MAX_DIM", "max_dim", max_dim)
    return NotebookSettings(weights, mode == "quick", steps, max_dim, "", precision_from_environment(), mode)


def _whole_from_environment(variable: str, field: str, default: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return default
    _, spec = OPTIONS[field]
    value = fields.parse(field, spec, text, source=variable)
    try:
        spec.check(variable, value)
    except NstkitError as error:
        raise NstkitError(f"{error}: set {variable} to a larger whole number, or unset it") from None
    return value


def _default_precision(mode: str) -> str:
    """Showcase mode, and any mode on a GPU, use the precision that pays; full mode on a CPU the seed's float32."""
    from ..network import device

    preferred = device.preferred_precision()
    return preferred if mode == "showcase" or device.gpu_details() else "float32"


def announce_cost(settings: NotebookSettings, runs: int = 1, *, steps: int | Sequence[int] | None = None,
                  max_dim: int | None = None, preset: str = "robust", batch: int = 1, note: str = "") -> float:
    """Print what the next cells will cost on this device, from a measured step; return the seconds.

    ``runs`` stylisations of ``steps`` steps each (default: the notebook's;
    or a list, one count per run) at ``max_dim``, ``batch`` images per step.
    The step and what each run adds to its steps (building and tracing its
    step) are measured with a short warm-up run of the same preset and size, not assumed.
    """
    from ..measure.timing import expected_seconds, format_duration, measure_run

    max_dim = max_dim or settings.max_dim
    counts = list(steps) if isinstance(steps, (list, tuple)) else [steps or settings.steps] * runs
    per_step, per_run = measure_run(preset=preset, max_dim=max_dim, batch=batch, weights=settings.weights,
                                    precision=settings.precision)
    seconds = sum(expected_seconds(count, per_step, per_run) for count in counts)
    print(f"cost: {len(counts)} run(s), {sum(counts)} steps at {max_dim} px; measured here {per_step:.3f} s/step "
          f"and {per_run:.1f} s to build each run ({preset}{f', batches of {batch}' if batch > 1 else ''}): about "
          f"{format_duration(seconds)} on {settings.device.split(' (')[0]}.{' ' + note if note else ''}")
    if seconds >= 600:
        ways = (["NSTKIT_MODE=showcase (a few minutes)"] if settings.mode != "showcase" else []) + [
            "NSTKIT_STEPS / NSTKIT_MAX_DIM", *(["Colab's GPU runtime"] if "GPU" not in settings.device[:4] else [])]
        print(f"  to shrink it: {', or '.join(ways)}")
    return seconds


def image(name: str, max_dim: int) -> np.ndarray:
    """A bundled image by file name, e.g. image("hexagons.png", 512)."""
    return bundled_image(name, max_dim)


def table(rows: Sequence[dict], columns: Sequence[str] | None = None, floats: str = "{:.3g}") -> str:
    """A plain-text table (stable across machines when given stable values)."""
    columns = list(columns or rows[0].keys())
    cells = [[floats.format(row[c]) if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def save_figure(figure, name: str, caption: str, settings: NotebookSettings, **made) -> Path | None:
    """Save a README figure, caption included, with its record to img/results/ (skipped in quick mode).

    ``caption`` is the full caption (``settings.caption(...)``), as drawn under the figure.
    """
    if settings.quick:
        return None
    path = RESULTS / f"{name}.jpg"  # photos in a grid: JPEG is a tenth of PNG's size
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    save_figure_file(figure, path, {
        "figure": str(shown), "caption": caption, "mode": settings.mode, "weights": settings.weights,
        "random_weights": settings.random_weights, "steps": settings.steps, "max_dim": settings.max_dim,
        "precision": settings.precision, "device": settings.device, **made})
    print(f"saved {shown}")
    return path


def videos_side_by_side(paths: Sequence[os.PathLike | str], labels: Sequence[str], width: int = 256):
    """Inline HTML5 players for MP4s, side by side and looping, each under its label (stored in the notebook:
    keep the clips small)."""
    import base64
    import html

    from IPython.display import HTML

    cells = []
    for path, label in zip(paths, labels):
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        cells.append(f'<figure style="display:inline-block;margin:4px"><video width="{width}" autoplay loop muted '
                     f'playsinline controls src="data:video/mp4;base64,{data}"></video>'
                     f'<figcaption style="font-size:11px">{html.escape(label)}</figcaption></figure>')
    return HTML("<div>" + "".join(cells) + "</div>")
