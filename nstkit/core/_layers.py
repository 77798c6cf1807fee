"""`nstkit.layers` before 0.2 held both the catalog and the presets: both, under the old name (see `nstkit._moved`)."""

import warnings

from .catalog import *  # noqa: F401,F403
from .presets import *  # noqa: F401,F403

warnings.warn("nstkit.layers was split in nstkit 0.2: the catalog is nstkit.core.catalog, the presets "
              "nstkit.core.presets; import from there", DeprecationWarning, stacklevel=2)
