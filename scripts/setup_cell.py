# Set-up: use nstkit if Python finds it, else fetch it from its repository (the next cell picks weights and size).
import importlib.util, os, subprocess, sys
REPOSITORY = "{REPOSITORY}"  # python scripts/set_repo_url.py URL changes it in every notebook

class SetupFailed(Exception):
    def _render_traceback_(self):  # IPython shows just this line, and "Run all" stops here
        return [f"nstkit set-up: {self}"]

def fetch_nstkit():  # returns a folder to put on sys.path
    if os.path.isfile("../nstkit/__init__.py"):  # this notebook sits in a clone
        return os.path.abspath("..")
    if "/OWNER/" in REPOSITORY:  # a placeholder: whoever registers OWNER on GitHub would run code here
        raise SetupFailed("nstkit is not installed and this copy does not name its repository yet: get nstkit "
                          "where this notebook came from (the repository holding its notebooks/ folder), "
                          "run `pip install -e .` in your clone and restart the kernel, or set REPOSITORY "
                          "in this cell to that repository's URL")
    clone = "/content/nstkit" if "google.colab" in sys.modules else os.path.expanduser("~/nstkit")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", clone]
    steps = [("pip install", pip)]
    if not os.path.isdir(os.path.join(clone, ".git")):  # else reuse an earlier run's clone
        steps.insert(0, ("git clone", ["git", "clone", "-q", "--depth", "1", REPOSITORY, clone]))
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a missing repository fails, instead of asking for a password
    for name, command in steps:
        run = subprocess.run(command, capture_output=True, text=True, env=env)
        if run.returncode:
            lines = [line.strip() for line in run.stderr.splitlines() if line.strip()] or [f"exit {run.returncode}"]
            why = next((line for line in lines if line.startswith(("fatal:", "ERROR:"))), lines[-1])  # git's, pip's
            raise SetupFailed(f"{name} failed ({why}); install by hand: "
                              f"git clone {REPOSITORY} nstkit && pip install -e nstkit")
    return clone

if importlib.util.find_spec("nstkit") is None:
    sys.path.insert(0, fetch_nstkit())
    importlib.invalidate_caches()  # pip has just installed nstkit's dependencies: let this kernel see them
import nstkit
from nstkit.ui import notebook as nb
