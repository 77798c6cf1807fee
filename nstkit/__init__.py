"""nstkit: neural style transfer on a ResNet-50 backbone.

    >>> import nstkit
    >>> result = nstkit.stylize("img/content/astronaut.jpg", "img/style/hexagons.png",
    ...                         preset="robust", steps=200, weights="random")
    >>> result.save("out.png")     # writes out.png and its run record out.json

Modules in layers; data flows down this list and no module imports one above it
(tests/test_layering.py enforces it):

- core, no TensorFlow: `errors`, `fields` (self-describing config fields),
  `layers` (catalogs, presets), `files`, `config` (`StyleConfig`), `images`
  (load, save, caffe pixel space), `record` (run record), `quiet`, `start`
  (start images), `color` (colour control), `tiles` (tile geometry), `masks`
  (spatial control's regions), `flow` (optical flow, warps, where they hold), `clips` (video
  and frame folders in, MP4 out);
- the model: `device`, `folding`, `backbone` (weights, feature extractor),
  `swag`, `param` (pixels or Fourier), `losses` (one small function each),
  `style_stats` (what the style loss matches: Gram, mean/cov, Wasserstein, histogram);
- the engine: `objective` (named loss terms), `optim` (Adam, L-BFGS-B), `sources`
  (whole image or tiles), `engine` (the run loop over stages), `optimize`
  (`stylize`, `stylize_batch`), `video` (`stylize_video`: a clip, warm-started and
  tied frame to frame);
- the interfaces: `memory`, `timing`, `metrics`, `analysis`, `compare`,
  `sweep`, `cli`, `widgets`, `notebook`.

TensorFlow is imported only when a run starts, so the CLI answers fast.
"""

from .config import StyleConfig
from .errors import NstkitError
from .layers import CATALOG, all_presets, get_preset
from .optimize import Progress, Result, RunStopped, stylize, stylize_batch, stylize_tiled
from .support import warn_if_untested_tensorflow
from .sweep import SweepResult, sweep
from .video import VideoResult, stylize_video
from . import metrics  # noqa: E402  (nstkit.metrics.evaluate after `import nstkit`; imports nothing heavy)

warn_if_untested_tensorflow()

__version__ = "0.1.0"
__all__ = ["StyleConfig", "NstkitError", "CATALOG", "all_presets", "get_preset", "Progress", "Result", "RunStopped",
           "stylize", "stylize_batch", "stylize_tiled", "SweepResult", "sweep", "stylize_video", "VideoResult", "metrics",
           "__version__"]
