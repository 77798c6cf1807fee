"""A live control panel for notebooks: tweak, Run, watch, Stop.

    from nstkit.widgets import StylePanel
    StylePanel(weights="random")          # displays itself in Jupyter / Colab

The controls are made from the config's own field descriptions (`fields`):
every `StyleConfig` field with a ``widget`` gets its control, with the
field's range, and choosing a preset moves the loss weights and the learning
rate to that preset's values. The run happens in a background thread, so
the kernel stays free to handle Stop (it sets the same `threading.Event`
that the run checks between its phases and after every step) and the
notebook stays usable. One run at a time per kernel: a new panel, or Run on
another panel, stops the run in progress first. The preview image and the
loss plot are redrawn every ``preview_every`` steps.
"""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..api.progress import RunTimeEstimate
from ..core.catalog import CATALOG
from ..core.config import (
    OPTIONS,
    PRESET_FIELDS,
    StyleConfig,
    precision_from_environment,
)
from ..core.errors import NstkitError
from ..core.packs import PACK_SUFFIX, is_pack, read_pack
from ..core.record import record_path
from ..media.images import BUNDLED_IMAGES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_IMAGE_DIR = BUNDLED_IMAGES

_active_lock = threading.Lock()
_active: "StylePanel | None" = None  # the panel whose run is in progress in this kernel


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


def control_for(name: str, value: Any):
    """The ipywidgets control a config field's ``widget`` description asks for, set to ``value``."""
    import ipywidgets as w

    _, spec = OPTIONS[name]
    kind, *bounds = spec.widget
    label = name.replace("_", " ")
    if kind == "log":
        low, high, step = bounds
        return w.FloatLogSlider(value=value, base=10, min=low, max=high, step=step, description=label,
                                tooltip=spec.help)
    if kind == "float":
        low, high, step = bounds
        return w.FloatSlider(value=value, min=low, max=high, step=step, description=label, tooltip=spec.help)
    if kind == "int":
        low, high, step = bounds
        return w.IntSlider(value=value, min=low, max=high, step=step, description=label, tooltip=spec.help)
    return w.Dropdown(options=list(bounds), value=value, description=label, tooltip=spec.help)


def control_range(name: str) -> tuple[float, float] | tuple[str, ...]:
    """The values a field's control can show: (low, high) for sliders, the options for a dropdown."""
    _, spec = OPTIONS[name]
    kind, *bounds = spec.widget
    if kind == "log":
        return 10.0 ** bounds[0], 10.0 ** bounds[1]
    if kind in ("float", "int"):
        return bounds[0], bounds[1]
    return tuple(bounds)


class StylePanel:
    """Sliders, pickers, Run/Stop, a live preview and a live loss plot around `nstkit.stylize`."""

    def __init__(self, image_dir: str | Path = DEFAULT_IMAGE_DIR, *, weights: str = "imagenet",
                 config: StyleConfig | None = None, preview_every: int = 10, display: bool = True):
        import ipywidgets as w

        base = config or StyleConfig()
        precision = precision_from_environment()  # NSTKIT_PRECISION, as the notebooks' runs use it
        if precision is not None and base.precision == OPTIONS["precision"][0].default:
            base = base.replace(precision=precision)
        defaults = base.resolved()
        self.weights = weights
        self.result = None
        self.error: str | None = None
        self.history: dict[str, list[float]] = {}
        self._estimate = RunTimeEstimate()
        self.previews = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._uploads: dict[str, Any] = {}  # an uploaded option's label -> its image, or its pack's path

        image_dir = Path(image_dir)
        # Options show file names; the paths stay here (a stored notebook shows no machine's folders).
        contents = _images_in(image_dir / "content")
        styles = _images_in(image_dir / "style", IMAGE_SUFFIXES + (PACK_SUFFIX,))
        self._files = {"content": contents, "style": styles}  # each picker its own: both may hold an a.png
        self.content = w.Dropdown(options=list(contents), description="content")
        # A style can be a pack (`nstkit pack`): the folder's .npz files are listed beside its images.
        self.style = w.Dropdown(options=list(styles), description="style")
        self.upload_content = w.FileUpload(accept="image/*", description="upload content")
        self.upload_style = w.FileUpload(accept=f"image/*,{PACK_SUFFIX}", description="upload style",
                                         tooltip="an image, or a style pack (.npz) made by nstkit pack")
        self._pack_folder: Path | None = None  # where uploaded packs are written: a pack is read from a file
        self.upload_content.observe(lambda change: self._add_upload(change, self.content), names="value")
        self.upload_style.observe(lambda change: self._add_upload(change, self.style), names="value")
        self.layers = w.SelectMultiple(options=list(CATALOG), rows=6, description="style layers",
                                       tooltip="empty = the preset's layers")
        # One control per field that describes one, in the config's order.
        self.controls = {name: control_for(name, getattr(defaults, name))
                         for name, (_, spec) in OPTIONS.items() if spec.widget is not None}
        for name, control in self.controls.items():
            setattr(self, name, control)
        self.controls["preset"].observe(lambda change: self.follow_preset(change["new"]), names="value")
        self.controls["style_loss"].observe(lambda change: self.follow_style_loss(change["new"]), names="value")
        self.preview_every = w.IntSlider(value=preview_every, min=1, max=100, description="preview every")
        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.save_path = w.Text(value="out/panel.png", description="save as",
                                tooltip="the best image, with its run record beside it (.png, .jpg, .tif, .webp)")
        self.save_button = w.Button(description="Save", icon="save", disabled=True)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.save_button.on_click(lambda _: self.save())
        self.status = w.Label(value=f"weights: {weights}")
        self.preview = w.Image(format="png", width=320)
        self.plot = w.Image(format="png", width=320)

        controls = w.VBox([self.content, self.upload_content, self.style, self.upload_style,
                           self.controls["preset"], self.layers,
                           *(c for n, c in self.controls.items() if n != "preset"),
                           self.preview_every, w.HBox([self.run_button, self.stop_button]),
                           w.HBox([self.save_path, self.save_button])])
        self.widget = w.VBox([w.HBox([controls, w.VBox([self.preview, self.plot])]), self.status])
        earlier = _stop_active_run()
        if earlier is not None:
            self.status.value = f"stopped the run of an earlier panel; weights: {weights}"
        if display:
            enable_colab_widgets()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def follow_preset(self, preset: str) -> None:
        """Move the loss weights and the learning rate to ``preset``'s values, and clear the layer override."""
        resolved = StyleConfig(preset=preset, style_loss=self.controls["style_loss"].value).resolved()
        self.layers.value = ()
        for name in PRESET_FIELDS:
            if name in self.controls:
                self.controls[name].value = getattr(resolved, name)

    def follow_style_loss(self, style_loss: str) -> None:
        """Move the style weight to the chosen statistic's scale: the preset's for gram, else the normalised one."""
        resolved = StyleConfig(preset=self.controls["preset"].value, style_loss=style_loss).resolved()
        self.controls["style_weight"].value = resolved.style_weight

    def _add_upload(self, change: dict[str, Any], dropdown) -> None:
        from ..media.images import load_image_bytes

        for item in _uploaded(change["new"]):
            label = f"uploaded: {item['name']}"
            try:
                if dropdown is self.style and is_pack(item["name"]):
                    self._uploads[label] = self._keep_pack(item["name"], item["content"])
                else:
                    self._uploads[label] = load_image_bytes(item["content"], item["name"])
            except NstkitError as exc:
                self.status.value = f"could not use {item['name']}: {exc}"
                continue
            dropdown.options = [*dropdown.options, label]
            dropdown.value = label

    def _keep_pack(self, name: str, content) -> str:
        """Write an uploaded pack to this panel's own folder (a pack is read from a file) and check it reads."""
        import tempfile

        if self._pack_folder is None:
            self._pack_folder = Path(tempfile.mkdtemp(prefix="nstkit-panel-packs-"))
        path = self._pack_folder / Path(name).name
        path.write_bytes(bytes(content))
        try:
            read_pack(path)  # damaged or foreign: one line now, not at Run
        except NstkitError:
            path.unlink()
            raise
        return str(path)

    def config(self) -> StyleConfig:
        values = {name: control.value for name, control in self.controls.items()}
        return StyleConfig(**values, style_layers=list(self.layers.value) or None, weights=self.weights)

    def _source(self, dropdown):
        value = dropdown.value
        if value in self._uploads:
            return self._uploads[value]
        return self._files["style" if dropdown is self.style else "content"].get(value, value)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Start a run in the background (ignored while this panel runs; another panel's run is stopped first)."""
        global _active
        if self.running:
            return
        earlier = _stop_active_run()
        self._stop.clear()
        self.result, self.error, self.history = None, None, {}
        self._estimate = RunTimeEstimate()  # the same estimate the CLI prints
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = "starting (building the model)…"
        self._thread = threading.Thread(target=self._work, args=(self.config(), earlier), daemon=True)
        with _active_lock:
            _active = self
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.status.value = "stopping after this step…"

    def save(self, path: str | Path | None = None) -> Path | None:
        """Save the last run's image and record (to ``path``, else the "save as" box); the panel says where.

        If the folder cannot take it (full, read-only, gone), the result goes to a rescue folder and the
        status line says so: nothing computed is lost.
        """
        from ..run.result import OutputNotSaved

        if self.result is None:
            self.status.value = "nothing to save yet: press Run first"
            return None
        target = Path(path or self.save_path.value).expanduser()
        with contextlib.suppress(OSError):  # a folder that cannot be made: the save below rescues the result
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            saved = self.result.save(target)
        except OutputNotSaved as lost:
            self.status.value = str(lost)
            return lost.saved_to
        except (NstkitError, OSError) as error:
            self.status.value = f"could not save {target}: {error}"
            return None
        self.status.value = f"saved {saved} and {record_path(saved)}"
        return saved

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (for scripts and tests); returns False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _work(self, config: StyleConfig, earlier: "StylePanel | None") -> None:
        from ..api.stylize import stylize
        from ..run.result import RunStopped

        message = "stopped"
        try:
            if earlier is not None:
                earlier.wait()  # one run at a time: the earlier one stops after its current step
            self.result = stylize(self._source(self.content), self._source(self.style), config,
                                  callbacks=[self._on_progress], stop_event=self._stop,
                                  progress=False)  # the panel shows its own status line
            self.preview.value = png_bytes(self.result.image)
            record = self.result.record
            message = (f"{'stopped' if self.result.stopped_early else 'done'}: {record['steps_run']} "
                       f"steps, best loss {_loss(record['best_loss'])}; weights: "
                       f"{record['weights']['description']}"
                       + (f"; {self.result.no_improvement}" if self.result.no_improvement else ""))
        except RunStopped as exc:
            message = str(exc)
        except NstkitError as exc:
            self.error = str(exc)
            message = f"error: {exc}"
        except Exception as exc:  # show it in the panel: a thread's traceback would vanish
            self.error = f"{type(exc).__name__}: {exc}"
            message = f"unexpected error: {self.error}"
        finally:
            # Buttons first, then the status line: whoever reads "done"/"stopped" can press Run again.
            self.run_button.disabled, self.stop_button.disabled = False, True
            self.save_button.disabled = self.result is None
            self.status.value = message

    def _on_progress(self, progress) -> None:
        for term, value in progress.losses.items():
            self.history.setdefault(term, []).append(value)
        if progress.step % self.preview_every.value == 0 or progress.step == 1:
            self.preview.value = png_bytes(progress.image())
            self.plot.value = loss_plot_png(self.history)
            self.previews += 1
        self._estimate(progress)
        left = f"  ({self._estimate.line()})" if self._estimate.ready else ""
        self.status.value = (f"step {progress.step}/{progress.steps}  "
                             + "  ".join(f"{k} {v:.3g}" for k, v in progress.losses.items()) + left)


def _loss(value: float | None) -> str:
    return "not scored" if value is None else f"{value:.4g}"


def _stop_active_run() -> "StylePanel | None":
    """Stop the run in progress in this kernel, if any; return its panel (to wait for) or None."""
    with _active_lock:
        panel = _active
    if panel is not None and panel.running:
        panel.stop()
        return panel
    return None


def _uploaded(value) -> list[dict[str, Any]]:
    """FileUpload's value as a list of {name, content}: ipywidgets 8 gives a tuple of such dicts, 7 (Colab's)
    a dict of file name -> {metadata, content}."""
    if isinstance(value, dict):
        return [{"name": name, "content": item["content"]} for name, item in value.items()]
    return [{"name": item["name"], "content": item["content"]} for item in value]


def _images_in(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> dict[str, str]:
    """File name -> path of the images (and ``suffixes``) in ``folder``, sorted."""
    if not folder.is_dir():
        return {}
    return {path.name: str(path) for path in sorted(folder.iterdir()) if path.suffix.lower() in suffixes}
