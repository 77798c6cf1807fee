"""nstkit: neural style transfer on a ResNet-50 backbone.

    >>> import nstkit
    >>> result = nstkit.stylize(nstkit.sample("chelsea.jpg"), nstkit.sample("mosaic.png"),
    ...                         steps=200, weights="random")
    >>> result.save("out.png")     # writes out.png and its run record out.json

The package is in layers, one folder each, lowest first: `core` (config, catalog, presets, record; no
TensorFlow), `media` (images, masks, flow, clips; no TensorFlow), `network`, `objective`, `optim`, `run`,
`api` (`stylize`, `stylize_video`), `measure`, `sweep`, `ui`. Data flows up that list: no module imports a folder after its own
(tests/test_layering.py reads the order from the README's map and the modules from the folders).
TensorFlow is imported only when a run starts, so the CLI answers fast.
"""

from . import _moved
from ._version import __version__
from .api.stylize import (
           Progress,
           Result,
           RunStopped,
           stylize,
           stylize_batch,
           stylize_tiled,
)
from .api.recolor import Recolored, recolor
from .api.video import VideoResult, stylize_video
from .core.catalog import CATALOG
from .core.config import StyleConfig
from .core.errors import NstkitError
from .core.presets import all_presets, get_preset
from .measure import metrics
from .media.images import sample, sample_names
from .network.support import warn_if_untested_tensorflow
from .sweep import SweepResult, sweep

_moved.install()
warn_if_untested_tensorflow()

__all__ = ["StyleConfig", "NstkitError", "CATALOG", "all_presets", "get_preset", "Progress", "Result", "RunStopped",
           "stylize", "stylize_batch", "stylize_tiled", "recolor", "Recolored", "SweepResult", "sweep",
           "stylize_video", "VideoResult",
           "metrics", "sample", "sample_names", "__version__"]
