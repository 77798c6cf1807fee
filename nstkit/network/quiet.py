"""Import TensorFlow without the C++ log lines it prints on stderr, but keep what they said.

TF 2.21 writes absl INFO/ERROR lines on import and on the first device query
(the oneDNN notice, "Could not find cuda drivers", "failed call to cuInit")
that no ``TF_CPP_MIN_LOG_LEVEL`` silences, because they bypass Python and are
written before absl's logging is set up. They land in notebook outputs and
bury the CLI's own lines. File descriptor 2 points at a temporary file for
just those calls: the lines stay off the terminal, and `import_messages`
keeps them, so `device` can say why TensorFlow sees no GPU (the CUDA load
error, in one line). If the import itself fails, the lines are printed
before the error, so a broken install is never silent.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

_messages: list[str] = []
_imported = False


@contextlib.contextmanager
def _stderr_captured(into: list[str]):
    """Send fd 2 to a temp file for the block; its lines go into ``into`` (and to stderr if the block fails)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            into.extend(line for line in text.splitlines() if line.strip())
            if failed and text:
                sys.stderr.write(text)
                sys.stderr.flush()


def import_tensorflow_quietly():
    """``(tensorflow, its GPUs)``, imported with its start-up lines kept in `import_messages`."""
    global _imported
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _imported:  # once per process: fd 2 is process-wide, and other threads may be writing to it
        import tensorflow as tf

        return tf, tf.config.list_physical_devices("GPU")
    with _stderr_captured(_messages):
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    _imported = True
    return tf, gpus


def import_messages() -> list[str]:
    """What TensorFlow printed while it was imported and first asked for its devices."""
    return list(_messages)
