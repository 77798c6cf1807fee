"""Import TensorFlow without the C++ log lines it prints on stderr.

TF 2.21 writes absl INFO/ERROR lines on import and on the first device query
(the oneDNN notice, "Could not find cuda drivers", "failed call to cuInit")
that no ``TF_CPP_MIN_LOG_LEVEL`` silences, because they bypass Python and are
written before absl's logging is set up. They land in notebook outputs and
bury the CLI's own lines. Pointing file descriptor 2 at /dev/null for just
those calls removes them; Python errors and later TF warnings still show.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_to_devnull():
    """Silence C++ log lines (TF's oneDNN notice) that bypass Python and land in notebook outputs."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def import_tensorflow_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_to_devnull():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    return tf, gpus
