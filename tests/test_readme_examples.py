"""Every Python block in the README runs as written: as a plain script from a folder outside the checkout, and
the first in a Jupyter kernel. Steps and size are shrunk (``steps=N`` becomes ``steps=3, max_dim=64``), nothing
else is changed. A sweep at a script's top level without a ``__main__`` guard stops at once with one line.
"""

import re
import subprocess
import sys
import textwrap

import pytest
from nst_helpers import ROOT

pytestmark = pytest.mark.slow

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _shrunk(code: str) -> str:
    assert "max_dim" not in code, "a README block sets max_dim: shrink it some other way"
    return re.sub(r"\bsteps=\d+", "steps=3, max_dim=64", code)


def _run_script(code: str, folder, timeout: float = 600) -> subprocess.CompletedProcess:
    script = folder / "example.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True,
                          timeout=timeout)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2 and any("nstkit.stylize(" in b for b in BLOCKS) and any("nstkit.sweep(" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_block_runs_as_a_script(index, tmp_path):
    done = _run_script(_shrunk(BLOCKS[index]), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    if "result.save(\"cat.png\")" in BLOCKS[index]:
        assert (tmp_path / "cat.png").stat().st_size > 0 and (tmp_path / "cat.png.json").exists()
    if "out_dir=\"sweep/\"" in BLOCKS[index]:
        assert (tmp_path / "sweep.csv").exists() and (tmp_path / "sweep" / "contact_sheet.png").exists()


def test_an_unguarded_sweep_stops_at_once_with_one_line(tmp_path):
    block = next(b for b in BLOCKS if "nstkit.sweep(" in b)
    head, _, body = block.partition('if __name__ == "__main__":')
    head = head.rstrip().rsplit("\n", 1)[0] if head.rstrip().endswith(":") else head
    unguarded = head + textwrap.dedent(body.split("\n", 1)[1])
    assert "__main__" not in unguarded
    done = _run_script(_shrunk(unguarded), tmp_path, timeout=120)  # it used to hang here, at 0% CPU
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "NstkitError" in last and 'if __name__ == "__main__":' in last, done.stderr[-2000:]
    assert not (tmp_path / "sweep").exists(), "nothing may start before the refusal"


def test_the_stylize_block_runs_in_a_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv("NSTKIT_PROGRESS", raising=False)  # `make test` turns bars off; a user's notebook has them
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = _shrunk(next(b for b in BLOCKS if "nstkit.stylize(" in b))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    assert (tmp_path / "cat.png").exists()
    # In a kernel the bar is tqdm's widget (progress=None: on in notebooks)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
