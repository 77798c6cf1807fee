"""A live control panel for notebooks: tweak, Run, watch, Stop.

    from nstkit.widgets import StylePanel
    StylePanel(weights="random")          # displays itself in Jupyter / Colab

The run happens in a background thread, so the kernel stays free to handle
the Stop button (it sets the same `threading.Event` that `stylize` checks
after every step) and the notebook stays usable. The preview image and the
loss plot are redrawn every ``preview_every`` steps.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .config import StyleConfig
from .errors import NstkitError
from .folding import PRECISIONS
from .layers import CATALOG, PRESET_NAMES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_IMAGE_DIR = Path(__file__).resolve().parents[1] / "img"


def enable_colab_widgets() -> bool:
    """Colab renders ipywidgets 8 only with its custom widget manager; turn it on when running there."""
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return False
    output.enable_custom_widget_manager()
    return True


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def loss_plot_png(history: dict[str, list[float]], width: float = 4.0, height: float = 2.6) -> bytes:
    """Per-term loss curves (log scale) as PNG bytes; uses a bare Figure, safe off the main thread."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=80)
    axes = figure.add_subplot()
    for term, values in history.items():
        if values and any(v > 0 for v in values):
            axes.plot(np.arange(1, len(values) + 1), values, label=term)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class StylePanel:
    """Sliders, pickers, Run/Stop, a live preview and a live loss plot around `nstkit.stylize`."""

    def __init__(self, image_dir: str | Path = DEFAULT_IMAGE_DIR, *, weights: str = "imagenet",
                 config: StyleConfig | None = None, preview_every: int = 10, display: bool = True):
        import ipywidgets as w

        base = config or StyleConfig()
        defaults = base.resolved()
        self.weights = weights
        self.result = None
        self.error: str | None = None
        self.history: dict[str, list[float]] = {}
        self.previews = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._uploads: dict[str, np.ndarray] = {}

        image_dir = Path(image_dir)
        contents = _images_in(image_dir / "content")
        styles = _images_in(image_dir / "style")
        self.content = w.Dropdown(options=contents, description="content")
        self.style = w.Dropdown(options=styles, description="style")
        self.upload_content = w.FileUpload(accept="image/*", description="upload content")
        self.upload_style = w.FileUpload(accept="image/*", description="upload style")
        self.upload_content.observe(lambda change: self._add_upload(change, self.content), names="value")
        self.upload_style.observe(lambda change: self._add_upload(change, self.style), names="value")

        self.preset = w.Dropdown(options=[*PRESET_NAMES[:-1], "conv_relu:0.5"], value=defaults.preset,
                                 description="preset")
        self.layers = w.SelectMultiple(options=list(CATALOG), rows=6, description="style layers",
                                       tooltip="empty = the preset's layers")
        self.style_weight = w.FloatLogSlider(value=defaults.style_weight, base=10, min=0, max=12, step=0.5,
                                             description="style weight")
        self.content_weight = w.FloatLogSlider(value=defaults.content_weight, base=10, min=-2, max=6, step=0.5,
                                               description="content weight")
        self.learning_rate = w.FloatSlider(value=defaults.learning_rate, min=0.5, max=50, step=0.5, description="lr")
        self.steps = w.IntSlider(value=base.steps, min=5, max=2000, step=5, description="steps")
        self.max_dim = w.IntSlider(value=base.max_dim, min=64, max=1024, step=32, description="max size")
        self.precision = w.Dropdown(options=list(PRECISIONS), value=base.precision, description="precision",
                                    tooltip="bfloat16: ~2x faster on AMX CPUs and recent GPUs; float16: GPUs")
        self.preview_every = w.IntSlider(value=preview_every, min=1, max=100, description="preview every")
        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.status = w.Label(value=f"weights: {weights}")
        self.preview = w.Image(format="png", width=320)
        self.plot = w.Image(format="png", width=320)

        controls = w.VBox([self.content, self.upload_content, self.style, self.upload_style, self.preset,
                           self.layers, self.style_weight, self.content_weight, self.learning_rate, self.steps,
                           self.max_dim, self.precision, self.preview_every, w.HBox([self.run_button, self.stop_button])])
        self.widget = w.VBox([w.HBox([controls, w.VBox([self.preview, self.plot])]), self.status])
        if display:
            enable_colab_widgets()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _add_upload(self, change: dict[str, Any], dropdown) -> None:
        from .images import load_image

        for item in change["new"]:
            label = f"uploaded: {item['name']}"
            try:
                from PIL import Image

                self._uploads[label] = load_image(Image.open(io.BytesIO(bytes(item["content"]))),
                                                  what=item["name"])
            except (NstkitError, OSError) as exc:
                self.status.value = f"could not read {item['name']}: {exc}"
                continue
            dropdown.options = [*dropdown.options, (label, label)]
            dropdown.value = label

    def config(self) -> StyleConfig:
        return StyleConfig(preset=self.preset.value, style_layers=list(self.layers.value) or None,
                           style_weight=self.style_weight.value, content_weight=self.content_weight.value,
                           learning_rate=self.learning_rate.value, steps=self.steps.value,
                           max_dim=self.max_dim.value, precision=self.precision.value, weights=self.weights)

    def _source(self, dropdown):
        value = dropdown.value
        return self._uploads.get(value, value)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Start a run in the background (ignored while one is running)."""
        if self.running:
            return
        self._stop.clear()
        self.result, self.error, self.history = None, None, {}
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = "starting (building the model)…"
        self._thread = threading.Thread(target=self._work, args=(self.config(),), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.status.value = "stopping after this step…"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (for scripts and tests); returns False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _work(self, config: StyleConfig) -> None:
        from .optimize import stylize

        try:
            self.result = stylize(self._source(self.content), self._source(self.style), config,
                                  callbacks=[self._on_progress], stop_event=self._stop)
            self.preview.value = png_bytes(self.result.image)
            record = self.result.record
            self.status.value = (f"{'stopped' if self.result.stopped_early else 'done'}: {record['steps_run']} "
                                 f"steps, best loss {record['best_loss']:.4g}; weights: "
                                 f"{record['weights']['description']}")
        except NstkitError as exc:
            self.error = str(exc)
            self.status.value = f"error: {exc}"
        except Exception as exc:  # show it in the panel: a thread's traceback would vanish
            self.error = f"{type(exc).__name__}: {exc}"
            self.status.value = f"unexpected error: {self.error}"
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _on_progress(self, progress) -> None:
        for term, value in progress.losses.items():
            self.history.setdefault(term, []).append(value)
        if progress.step % self.preview_every.value == 0 or progress.step == 1:
            self.preview.value = png_bytes(progress.image())
            self.plot.value = loss_plot_png(self.history)
            self.previews += 1
        self.status.value = (f"step {progress.step}/{progress.steps}  "
                             + "  ".join(f"{k} {v:.3g}" for k, v in progress.losses.items()))


def _images_in(folder: Path) -> list[tuple[str, str]]:
    if not folder.is_dir():
        return []
    return [(path.name, str(path)) for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES]
