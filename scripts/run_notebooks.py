"""Execute the notebooks in place, in one mode, and keep their outputs clean: how the stored outputs are made.

    python scripts/run_notebooks.py                 # showcase mode, every notebook (what `make showcase` runs)
    python scripts/run_notebooks.py 02 04 --mode quick

Each notebook runs top to bottom in a fresh kernel with ``NSTKIT_MODE`` set,
its figures saved to img/results/ (showcase and full modes). Outputs on
stderr (a library's warning, TensorFlow's start-up lines) are dropped from the
stored notebook, which nbval and GitHub readers see; a cell that fails stops
the run with its error, and the notebook on disk is left as it was.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def run(path: Path, mode: str, timeout: int) -> float:
    notebook = nbformat.read(path, as_version=4)
    os.environ["NSTKIT_MODE"] = mode
    os.environ.pop("NSTKIT_QUICK", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["NSTKIT_PROGRESS"] = "0"  # stored outputs show results, not progress bars
    started = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
                   ).execute()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs if not (out.output_type == "stream" and out.name == "stderr")]
    nbformat.write(notebook, path)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", help="notebook numbers or names (default: all)")
    parser.add_argument("--mode", default="showcase", choices=("showcase", "quick", "full"))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args()
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.which:
        paths = [p for p in paths if any(p.name.startswith(w) or p.stem == w for w in args.which)]
    for path in paths:
        seconds = run(path, args.mode, args.timeout)
        print(f"{path.name}: {seconds / 60:.1f} min in {args.mode} mode, {path.stat().st_size // 1024} KB stored",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
