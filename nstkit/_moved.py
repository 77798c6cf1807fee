"""Module paths from before nstkit 0.2 (one flat folder), kept importable for code and notebooks written then.

``import nstkit.optimize`` or ``from nstkit.images import load_image`` still works: the old name is the new
module itself (one object, so a monkeypatch through either name patches both), with one DeprecationWarning
naming the new place. Nothing inside nstkit imports through here.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# old module -> new module, for every module that moved in 0.2 (`layers` split into catalog and presets).
MOVED = {
    "errors": "core.errors", "files": "core.files", "fields": "core.fields", "config": "core.config",
    "record": "core.record", "layers": "core._layers",
    "images": "media.images", "start": "media.start", "color": "media.color", "masks": "media.masks",
    "tiles": "media.tiles", "flow": "media.flow", "clips": "media.clips",
    "quiet": "network.quiet", "support": "network.support", "device": "network.device",
    "folding": "network.folding", "backbone": "network.backbone", "swag": "network.swag",
    "losses": "objective.losses", "style_stats": "objective.style_stats", "objective": "objective.terms",
    "param": "optim.param", "optim": "optim.optimizers",
    "sources": "run.gradients", "checkpoint": "run.checkpoint", "engine": "run.loop", "optimize": "api.stylize",
    "video": "api.video",
    "memory": "measure.memory", "timing": "measure.timing", "metrics": "measure.metrics",
    "analysis": "measure.analysis",
    "cli": "ui.cli", "widgets": "ui.panel", "notebook": "ui.notebook",
    # 0.2's first layout had the entry points in run/
    "run.stylize": "api.stylize", "run.video": "api.video", "run.progress": "api.progress",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        old = fullname.removeprefix("nstkit.")
        if fullname.startswith("nstkit.") and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = "nstkit." + MOVED[spec.name.removeprefix("nstkit.")]
        if not new.endswith("._layers"):
            warnings.warn(f"{spec.name} moved to {new} in nstkit 0.2; import it from there",
                          DeprecationWarning, stacklevel=4)
        module = importlib.import_module(new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        pass  # the module ran when it was imported under its new name


def install() -> None:
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
