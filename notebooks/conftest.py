"""nbval runs the notebooks in quick mode (tiny images, few steps, random weights) unless told otherwise."""

import os

os.environ.setdefault("NSTKIT_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
