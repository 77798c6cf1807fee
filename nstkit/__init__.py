"""nstkit: neural style transfer on a ResNet-50 backbone.

    >>> import nstkit
    >>> result = nstkit.stylize("img/content/astronaut.png", "img/style/hexagons.png",
    ...                         preset="robust", steps=200, weights="random")
    >>> result.save("out.png")     # writes out.png and its run record out.json

Modules, in the order data flows: `images` (load, save, caffe pixel space),
`layers` (catalogs, presets), `backbone` (weights, feature extractor),
`swag` (activation smoothing), `param` (pixels or Fourier), `color`,
`losses`, `optimize` (the loop), `tiling` (huge images, in shifting tiles),
`record` (run record), `cli`; then
`sweep` (parameter grids, locally or on a Dask cluster), `metrics` and
`compare` (offline quality), `widgets`, `notebook`, `analysis`.
TensorFlow is imported only when a run starts, so the CLI answers fast.
"""

from .config import StyleConfig
from .errors import NstkitError
from .layers import CATALOG, all_presets, get_preset
from .optimize import Progress, Result, stylize, stylize_batch
from .support import warn_if_untested_tensorflow
from .sweep import SweepResult, sweep
from .tiling import stylize_tiled

warn_if_untested_tensorflow()

__version__ = "0.1.0"
__all__ = ["StyleConfig", "NstkitError", "CATALOG", "all_presets", "get_preset", "Progress", "Result",
           "stylize", "stylize_batch", "stylize_tiled", "SweepResult", "sweep", "__version__"]
