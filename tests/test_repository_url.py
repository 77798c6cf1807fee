"""One place names the repository (pyproject's [project.urls]); every badge, set-up cell and README link agrees."""

import json
import shutil
import sys

import pytest
from nst_helpers import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import set_repo_url  # noqa: E402

NOTEBOOK = "03_conv_relu_ratio.ipynb"


def test_every_badge_set_up_cell_and_readme_link_agrees_with_pyproject():
    assert set_repo_url.mismatches() == []


def test_every_notebook_starts_with_the_one_set_up_cell():
    cell = set_repo_url.setup_cell(set_repo_url.repository_url())
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        first_code = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert "".join(first_code["source"]) == cell, path.name


@pytest.fixture
def copy(tmp_path):
    """pyproject, README and notebooks in a folder of their own, with a README link to check too."""
    for name in ("pyproject.toml", "README.md", "notebooks"):
        (shutil.copytree if name == "notebooks" else shutil.copy)(ROOT / name, tmp_path / name)
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text() + f"\n[Source]({set_repo_url.repository_url()})\n")
    return tmp_path


def test_one_notebook_pointing_elsewhere_is_caught(copy):
    url = set_repo_url.repository_url()
    path = copy / "notebooks" / NOTEBOOK
    path.write_text(path.read_text().replace(f"github/{set_repo_url.github_repo(url)}/", "github/someone/nstkit/", 1))
    assert set_repo_url.mismatches(copy) == [f"{NOTEBOOK}: the first line is not the Colab badge for {url}"]
    notebook = json.loads(path.read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    cell["source"] = [line.replace(url, "https://github.com/someone/nstkit") for line in cell["source"]]
    path.write_text(json.dumps(notebook))
    assert set_repo_url.mismatches(copy)[1:] == [f"{NOTEBOOK}: the set-up cell is not scripts/setup_cell.py for {url}"]
    readme = copy / "README.md"
    readme.write_text(readme.read_text().replace(f"[Source]({url})", "[Source](https://github.com/someone/nstkit)"))
    assert set_repo_url.mismatches(copy)[2:] == [
        f"README.md: https://github.com/someone/nstkit is not {set_repo_url.github_repo(url)}"]


def test_set_repository_rewrites_them_all(copy):
    changed = set_repo_url.set_repository("https://github.com/example-org/nstkit", copy)
    assert set_repo_url.repository_url(copy) == "https://github.com/example-org/nstkit"
    assert len(changed) == 2 + len(list((copy / "notebooks").glob("[0-9]*.ipynb")))  # pyproject, README, notebooks
    assert set_repo_url.mismatches(copy) == []
    notebook = (copy / "notebooks" / NOTEBOOK).read_text()
    assert "colab.research.google.com/github/example-org/nstkit/blob/main/notebooks/" + NOTEBOOK in notebook
    assert set_repo_url.PLACEHOLDER not in notebook + (copy / "README.md").read_text()
    assert "github/OWNER/" not in notebook
    assert set_repo_url.set_repository("https://github.com/example-org/nstkit", copy) == []  # idempotent


def test_a_url_colab_cannot_open_is_refused(copy):
    with pytest.raises(SystemExit, match="not a https://github.com/OWNER/NAME URL"):
        set_repo_url.set_repository("https://gitlab.com/x/nstkit", copy)


def test_a_notebook_not_asking_colab_for_a_gpu_and_a_readme_without_its_badge_are_caught(copy):
    url = set_repo_url.repository_url()
    path = copy / "notebooks" / NOTEBOOK
    notebook = json.loads(path.read_text())
    del notebook["metadata"]["accelerator"]
    path.write_text(json.dumps(notebook))
    readme = copy / "README.md"
    readme.write_text(readme.read_text().replace(f"{set_repo_url.BADGE}({set_repo_url.colab_link(url, NOTEBOOK)})", ""))
    assert set_repo_url.mismatches(copy) == [f"{NOTEBOOK}: its metadata does not ask Colab for a GPU runtime",
                                             f"README.md: no Colab badge for {NOTEBOOK}"]
    set_repo_url.set_repository(url, copy)  # puts the metadata back; the README's table is written by hand
    assert json.loads(path.read_text())["metadata"]["accelerator"] == "GPU"
    assert set_repo_url.mismatches(copy) == [f"README.md: no Colab badge for {NOTEBOOK}"]
