"""The TensorFlow versions nstkit is tested with, and one warning when the installed one is newer.

pyproject.toml asks for ``tensorflow>=2.16`` with no upper cap: a cap would make pip replace the TensorFlow
that Colab ships (a large download, and resolver conflicts) on the day Colab moves past it. CI tests both
ends of TESTED_TENSORFLOW (``make test``, ``make test-oldest-tf``); a newer TensorFlow gets this warning
instead of a reinstall. Read from the package metadata, so `import nstkit` still does not import TensorFlow.
"""

from __future__ import annotations

import re
import warnings
from importlib import metadata

TESTED_TENSORFLOW = ("2.16", "2.21")  # oldest and newest minor versions CI runs


def _minor(version: str) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def warn_if_untested_tensorflow() -> str | None:
    """Warn once if TensorFlow is newer than the newest tested version; the message, or None."""
    try:
        installed = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:  # tensorflow-cpu and other builds: nothing to compare
        return None
    minor, newest = _minor(installed), _minor(TESTED_TENSORFLOW[1])
    if minor is None or minor <= newest:
        return None
    message = (f"nstkit is tested with TensorFlow {TESTED_TENSORFLOW[0]} to {TESTED_TENSORFLOW[1]}; this is "
               f"{installed}. If something fails, try pip install 'tensorflow<{newest[0]}.{newest[1] + 1}'")
    warnings.warn(message, stacklevel=2)
    return message
