"""The notebooks' set-up cell, run for real in a fresh virtual environment that looks like Colab.

The fresh venv sees this environment's packages (TensorFlow among them) through a .pth file, as Colab's
preinstalled ones, without downloading them again; nstkit is left out. "The repository" is a local clone of
this one (its committed state), and pip runs without an index, so nothing is downloaded. The cell is
scripts/setup_cell.py rendered with a test URL, run as a script by RUNNER, which does what IPython does
with an exception that has ``_render_traceback_``: show only its lines.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from nst_helpers import ROOT

import nstkit

pytestmark = pytest.mark.slow  # fresh venvs and a git clone: TensorFlow's version does not change what they test

sys.path.insert(0, str(ROOT / "scripts"))
import set_repo_url  # noqa: E402

RUNNER = """\
import sys
namespace = {"__name__": "__main__"}
try:
    exec(compile(open(sys.argv[1]).read(), "set-up cell", "exec"), namespace)
except Exception as error:
    if not hasattr(error, "_render_traceback_"):
        raise
    sys.exit("\\n".join(error._render_traceback_()))  # IPython shows these lines and nothing else
print("nstkit from", namespace["nstkit"].__file__)
namespace["nb"].setup()  # what each notebook's next cell does
"""
# Not Colab's packages: what the test environment installed for nstkit itself
_NOT_PREINSTALLED = ("nstkit", "__editable__", "__pycache__")


@pytest.fixture(scope="module")
def preinstalled(tmp_path_factory) -> Path:
    """This environment's site-packages without nstkit: a folder of links, one per package."""
    folder = tmp_path_factory.mktemp("preinstalled")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(_NOT_PREINSTALLED) and entry.suffix != ".pth":
            (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    clone = tmp_path_factory.mktemp("repository") / "nstkit"
    subprocess.run(["git", "clone", "-q", "--depth", "1", ROOT.as_uri(), str(clone)], check=True)
    return clone


def fresh_venv(path: Path, preinstalled: Path, with_pip: bool = False) -> Path:
    """A new venv whose own site-packages is empty but for a .pth pointing at `preinstalled`."""
    subprocess.run([sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(path)], check=True)
    site = next(path.glob("lib/python*/site-packages"))
    for bundled in site.glob("setuptools*"):  # ensurepip's old setuptools (65 on 3.11) would shadow Colab's own
        shutil.rmtree(bundled) if bundled.is_dir() else bundled.unlink()
    (site / "preinstalled.pth").write_text(f"{preinstalled}\n")
    return path / "bin" / "python"


def clean_env(**extra) -> dict:
    """This environment's variables without what would show the fresh venv our nstkit."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")} | extra


def run_cell(python: Path, url: str, cwd: Path, home: Path, **env) -> subprocess.CompletedProcess:
    (cwd.parent / "setup_cell.py").write_text(set_repo_url.setup_cell(url))
    (cwd.parent / "runner.py").write_text(RUNNER)
    environment = clean_env(HOME=str(home), NSTKIT_QUICK="1", TF_CPP_MIN_LOG_LEVEL="2", **env)
    return subprocess.run([str(python), str(cwd.parent / "runner.py"), str(cwd.parent / "setup_cell.py")],
                          cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


@pytest.fixture
def colab(tmp_path, preinstalled):
    """A fresh venv without pip (nothing here installs), a home, and a working folder outside any clone."""
    python = fresh_venv(tmp_path / "venv", preinstalled)
    (tmp_path / "home").mkdir()
    (tmp_path / "content" / "work").mkdir(parents=True)
    found = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('nstkit'), "
                            "u.find_spec('tensorflow') is not None)"], capture_output=True, text=True,
                           env=clean_env(), cwd=tmp_path / "content" / "work")
    assert found.stdout.split() == ["None", "True"], found  # TensorFlow is there, nstkit is not
    return python, tmp_path / "home", tmp_path / "content" / "work"


def test_nstkit_that_python_finds_is_used_as_it_is(colab, repository):
    python, home, work = colab
    run = run_cell(python, "file:///nowhere/nstkit", work, home, PYTHONPATH=str(repository))
    assert run.returncode == 0, run.stderr
    assert f"nstkit from {repository}/nstkit/__init__.py" in run.stdout
    assert "weights=random" in run.stdout and not (home / "nstkit").exists()  # nb.setup() ran; nothing cloned


def test_a_notebook_inside_a_clone_uses_that_clone(colab, repository):
    python, home, _ = colab
    run = run_cell(python, "file:///nowhere/nstkit", repository / "notebooks", home)
    assert run.returncode == 0, run.stderr
    assert f"nstkit from {repository}/nstkit/__init__.py" in run.stdout and not (home / "nstkit").exists()


def test_without_nstkit_it_clones_and_installs_and_leaves_tensorflow_alone(tmp_path, preinstalled, repository):
    python = fresh_venv(tmp_path / "venv", preinstalled, with_pip=True)
    site = next((tmp_path / "venv").glob("lib/python*/site-packages"))
    before = {entry.name for entry in site.iterdir()}
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    builds = subprocess.run([str(python), "-c", "import setuptools, wheel"], env=clean_env(), capture_output=True)
    if builds.returncode:
        pytest.skip("no setuptools and wheel to build nstkit offline (Python 3.12+ venvs have no setuptools)")
    # No index: pip must find every dependency already installed, TensorFlow included, and download nothing.
    # PIP_NO_BUILD_ISOLATION=0 means --no-build-isolation (pip reads the variable inverted): build offline.
    run = run_cell(python, repository.as_uri(), tmp_path / "work", tmp_path / "home",
                   PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0")
    assert run.returncode == 0, run.stderr
    clone = tmp_path / "home" / "nstkit"
    assert f"nstkit from {clone}/nstkit/__init__.py" in run.stdout and (clone / ".git").is_dir()
    added = {entry.name for entry in site.iterdir()} - before
    assert not any(name.lower().startswith(("tensorflow", "keras")) for name in added), added
    assert {name for name in added if name.endswith(".dist-info")} == {f"nstkit-{nstkit.__version__}.dist-info"}
    again = run_cell(python, "file:///nowhere/nstkit", tmp_path / "work", tmp_path / "home")
    assert again.returncode == 0 and f"nstkit from {clone}" in again.stdout, again.stderr  # installed: no clone


def test_a_failed_clone_stops_with_one_line(colab):
    python, home, work = colab
    run = run_cell(python, "file:///nowhere/nstkit", work, home)
    assert run.returncode == 1 and run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith("nstkit set-up: git clone failed (fatal: ") and "/nowhere/nstkit" in line, line
    assert line.endswith("install by hand: git clone file:///nowhere/nstkit nstkit && pip install -e nstkit")


def test_the_placeholder_url_is_never_cloned(colab):
    python, home, work = colab
    run = run_cell(python, set_repo_url.PLACEHOLDER, work, home)
    assert run.returncode == 1 and run.stdout == "" and not (home / "nstkit").exists()
    [line] = run.stderr.splitlines()
    assert "does not name its repository yet" in line and "pip install -e ." in line, line
    assert "where this notebook came from" in line and "set REPOSITORY" in line, line  # where to get it


def test_ipython_shows_the_one_line_and_no_traceback(colab):
    """The same refusal in a real IPython shell: `_render_traceback_` replaces the traceback."""
    python, home, work = colab
    (work.parent / "setup_cell.py").write_text(set_repo_url.setup_cell(set_repo_url.PLACEHOLDER))
    shell = ("from IPython.core.interactiveshell import InteractiveShell\n"
             "result = InteractiveShell.instance().run_cell(open('../setup_cell.py').read())\n"
             "raise SystemExit(0 if result.success else 3)\n")
    run = subprocess.run([str(python), "-c", shell], cwd=work, capture_output=True, text=True,
                         env=clean_env(HOME=str(home)), timeout=120)
    assert run.returncode == 3, run
    assert run.stdout.strip().splitlines() == [
        "nstkit set-up: nstkit is not installed and this copy does not name its repository yet: get nstkit where "
        "this notebook came from (the repository holding its notebooks/ folder), run `pip install -e .` in your "
        "clone and restart the kernel, or set REPOSITORY in this cell to that repository's URL"], run.stdout
