"""Build nstkit's wheel from this checkout, install it non-editable in a fresh environment outside the checkout,
and use it from another folder: what a user of `pip install nstkit` (or of a wheel) gets.

    python scripts/check_wheel.py [--tensorflow "tensorflow==2.21.*"] [--keep DIR]

Fails (exit 1, one line saying what) if the build prints a warning, a subpackage does not import, `nstkit
--version` disagrees with the package, or `nstkit stylize` cannot run at 64 px from the installed samples. CI
runs it (`make test-wheel`). The fresh environment takes TensorFlow from uv's or pip's cache when it has it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# pip's own notes while building in place; anything else that warns is the package's configuration.
PIP_NOISE = ("byte-compiling is disabled", "Location '")
IMPORT_ALL = """
import importlib, pkgutil, sys
import nstkit
names = [m.name for m in pkgutil.walk_packages(nstkit.__path__, "nstkit.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names), nstkit.__version__, nstkit.__file__)
"""


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **options)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise SystemExit(f"check_wheel: failed: {' '.join(map(str, command))}\n" + "\n".join(tail))
    return done


def installer(python: Path) -> list[str]:
    """The command that installs into ``python``'s venv: uv's pip where this environment has uv (the Makefile's
    venvs do: the same wheel installed, non-editable, several times faster), else that venv's pip."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    return [uv, "pip", "install", "--quiet", "--python", str(python)] if uv else \
        [str(python), "-m", "pip", "install", "--quiet"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensorflow", default="tensorflow==2.21.*", help="the TensorFlow to install beside it")
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nstkit-wheel-") as temporary:
        work = Path(args.keep or temporary)
        work.mkdir(parents=True, exist_ok=True)
        dist = work / "dist"
        built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(dist), str(ROOT)])
        warnings = [line.strip() for line in (built.stdout + built.stderr).splitlines()
                    if re.search(r"warn|deprecat", line, re.I) and not any(n in line for n in PIP_NOISE)]
        if warnings:
            raise SystemExit("check_wheel: the build warns:\n" + "\n".join(warnings[:20]))
        wheel = next(dist.glob("nstkit-*.whl"))
        names = zipfile.ZipFile(wheel).namelist()
        for needed in ("nstkit/sweep/__init__.py", "nstkit/media/samples/content/chelsea.jpg",
                       "nstkit/media/samples/README.md"):
            if needed not in names:
                raise SystemExit(f"check_wheel: {wheel.name} lacks {needed}")
        if any(name.startswith(("research/", "tests/", "benchmarks/", "scripts/")) for name in names):
            raise SystemExit(f"check_wheel: {wheel.name} holds the repository's own code")
        print(f"check_wheel: built {wheel.name} ({wheel.stat().st_size // 1024} KB, {len(names)} files), no warnings")

        venv = work / "venv"
        run([sys.executable, "-m", "venv", str(venv)])
        python, nstkit = venv / "bin" / "python", venv / "bin" / "nstkit"
        run([*installer(python), str(wheel), args.tensorflow])
        elsewhere = work / "elsewhere"
        elsewhere.mkdir(exist_ok=True)
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        imported = run([str(python), "-c", IMPORT_ALL], cwd=elsewhere, env=env).stdout.split()
        if str(ROOT) in imported[-1]:
            raise SystemExit(f"check_wheel: imported nstkit from the checkout ({imported[-1]}), not the wheel")
        print(f"check_wheel: imported all {imported[0]} modules of nstkit {imported[1]} from {imported[2]}")
        version = run([str(nstkit), "--version"], cwd=elsewhere, env=env).stdout.strip()
        if version != f"nstkit {imported[1]}":
            raise SystemExit(f"check_wheel: nstkit --version says {version!r}, the package {imported[1]}")
        content, style = (run([str(nstkit), "samples", name], cwd=elsewhere, env=env).stdout.strip()
                          for name in ("chelsea.jpg", "mosaic.png"))
        run([str(nstkit), "stylize", content, style, "-o", "out.png", "--weights", "random", "--steps", "3",
             "--max-dim", "64", "--quiet"], cwd=elsewhere, env=env)
        for made in ("out.png", "out.png.json"):
            if not (elsewhere / made).is_file():
                raise SystemExit(f"check_wheel: nstkit stylize wrote no {made}")
        print(f"check_wheel: {version} stylized {Path(content).name} x {Path(style).name} at 64 px in {elsewhere}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
