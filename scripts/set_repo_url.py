"""Point every notebook badge, notebook set-up cell and README link at the repository pyproject.toml names.

    python scripts/set_repo_url.py https://github.com/ORG/nstkit   # set it, rewrite them all
    python scripts/set_repo_url.py --check                         # list what disagrees; exit 1 if anything does

`[project.urls] Repository` in pyproject.toml is the one place that names the repository. From it come:

- each notebook's first line: the "Open in Colab" badge (Colab opens notebooks from GitHub) and a GPU tip;
- each notebook's set-up cell (its first code cell): ``scripts/setup_cell.py`` with its ``REPOSITORY`` filled in;
- every Markdown link to GitHub or Colab in README.md (the README links no other GitHub repository), and its
  notebook table's Colab badges, one per notebook;
- each notebook's Colab metadata, asking for a GPU runtime (`COLAB_METADATA`).

Until the real URL is set, pyproject holds a placeholder owner (``OWNER``); the set-up cell refuses to clone
from it, since anyone could register that name.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "https://github.com/OWNER/nstkit"
TEMPLATE = Path(__file__).with_name("setup_cell.py")
TEMPLATE_LINE = 'REPOSITORY = "{REPOSITORY}"'
BADGE = "[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
GPU_TIP = ("On Colab, choose a GPU runtime first (Runtime > Change runtime type > GPU): "
           "on a CPU each run takes minutes.")
# What Colab reads from a notebook's metadata: open it on a GPU runtime (a T4, the free tier's).
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
_URL_LINE = re.compile(r'^(Repository\s*=\s*)"([^"]*)"', re.MULTILINE)
# Markdown links to GitHub or Colab in the README, "](https://...", not URLs in code; group "repo" is OWNER/NAME
_README_LINKS = re.compile(r"(?<=\]\()https://(?:github\.com|colab\.research\.google\.com/github)/"
                           r"(?P<repo>[\w.-]+/[\w.-]+)")


def repository_url(root: Path = ROOT) -> str:
    match = _URL_LINE.search((root / "pyproject.toml").read_text())
    if not match:
        raise SystemExit("pyproject.toml has no [project.urls] Repository = \"...\" line")
    return match.group(2)


def github_repo(url: str) -> str:
    """OWNER/NAME of a GitHub URL: what Colab's badge links need."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url)
    if not match:
        raise SystemExit(f"{url}: not a https://github.com/OWNER/NAME URL (Colab opens notebooks from GitHub)")
    return match.group(1)


def setup_cell(url: str) -> str:
    """The set-up cell every notebook starts with, cloning from `url` (any git URL, e.g. a local path in tests)."""
    template = TEMPLATE.read_text()
    if TEMPLATE_LINE not in template:
        raise SystemExit(f"{TEMPLATE}: the line {TEMPLATE_LINE} is missing")
    return template.replace(TEMPLATE_LINE, f"REPOSITORY = {json.dumps(url)}", 1).rstrip("\n")


def colab_link(url: str, notebook: str) -> str:
    return f"https://colab.research.google.com/github/{github_repo(url)}/blob/main/notebooks/{notebook}"


def badge_line(url: str, notebook: str) -> str:
    return f"{BADGE}({colab_link(url, notebook)}) {GPU_TIP}"


def _notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9]*.ipynb"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _lines(text: str) -> list[str]:
    """Text as a notebook stores it: lines that keep their newline, the last one without."""
    return text.splitlines(keepends=True)


def mismatches(root: Path = ROOT) -> list[str]:
    """Every badge, set-up cell and README link that disagrees with pyproject's URL, one line each."""
    url = repository_url(root)
    problems = []
    for path in _notebooks(root):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells, metadata = notebook["cells"], notebook["metadata"]
        first = next(cell for cell in cells if cell["cell_type"] == "markdown")
        if _source(first).split("\n", 1)[0] != badge_line(url, path.name):
            problems.append(f"{path.name}: the first line is not the Colab badge for {url}")
        code = next(cell for cell in cells if cell["cell_type"] == "code")
        if _source(code) != setup_cell(url):
            problems.append(f"{path.name}: the set-up cell is not scripts/setup_cell.py for {url}")
        if (metadata.get("accelerator") != COLAB_METADATA["accelerator"]  # a notebook saved from Colab keeps its
                or metadata.get("colab", {}).get("gpuType") != COLAB_METADATA["colab"]["gpuType"]):  # provenance
            problems.append(f"{path.name}: its metadata does not ask Colab for a GPU runtime")
    repo = github_repo(url)
    readme = (root / "README.md").read_text(encoding="utf-8")
    for match in _README_LINKS.finditer(readme):
        if match.group("repo") != repo:
            problems.append(f"README.md: {match.group(0)} is not {repo}")
    for path in _notebooks(root):
        if f"{BADGE}({colab_link(url, path.name)})" not in readme:
            problems.append(f"README.md: no Colab badge for {path.name}")
    return problems


def set_repository(url: str, root: Path = ROOT) -> list[Path]:
    """Write `url` into pyproject.toml and rewrite every badge, set-up cell and README link; the changed files."""
    repo = github_repo(url)
    changed = []

    def write(path: Path, text: str) -> None:
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)

    pyproject = root / "pyproject.toml"
    write(pyproject, _URL_LINE.sub(lambda m: f'{m.group(1)}"{url}"', pyproject.read_text(), count=1))
    for path in _notebooks(root):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = notebook["cells"]
        first = next(cell for cell in cells if cell["cell_type"] == "markdown")
        head, _, rest = _source(first).partition("\n")
        body = rest if head.startswith(BADGE) else _source(first)  # replace an old badge line, or add one
        first["source"] = _lines(badge_line(url, path.name) + "\n" + body)
        next(cell for cell in cells if cell["cell_type"] == "code")["source"] = _lines(setup_cell(url))
        notebook["metadata"]["accelerator"] = COLAB_METADATA["accelerator"]
        notebook["metadata"]["colab"] = {**notebook["metadata"].get("colab", {}), **COLAB_METADATA["colab"]}
        write(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")  # Jupyter's own layout
    readme = root / "README.md"
    write(readme, _README_LINKS.sub(lambda m: m.group(0).replace(m.group("repo"), repo), readme.read_text()))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="the repository, e.g. https://github.com/ORG/nstkit")
    parser.add_argument("--check", action="store_true", help="only list what disagrees with pyproject.toml")
    args = parser.parse_args(argv)
    if args.check == bool(args.url):
        parser.error("give a URL or --check")
    if args.url:
        for path in set_repository(args.url):
            print(f"rewrote {path.relative_to(ROOT)}")
    problems = mismatches()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
