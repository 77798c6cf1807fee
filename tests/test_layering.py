"""Layers you can see: the folders are the layers, no module imports a folder above its own, no import circles, and
no TensorFlow where none is needed.

The order of the layers is written once, in the README's map (between its `map:start` / `map:end` markers),
lowest first; the modules of each layer are read from its folder, and the map must list exactly those. Lazy
imports inside functions count too: an upward import is upward wherever it sits.
"""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from nst_helpers import ROOT

PACKAGE = ROOT / "nstkit"
# Loose modules at the top: `_version` sits below every layer; the package's face (`__init__`, `__main__`, and
# `_moved`, the old module paths) above them all.
BOTTOM, TOP = ["_version"], ["_moved", "__init__", "__main__"]
# The layers whose modules never import TensorFlow (`network.quiet` is the one place that does, when called).
TF_FREE_LAYERS = ("core", "media")


def _readme_map() -> list[tuple[str, list[str]]]:
    """(folder, [modules]) per row of the README's map, lowest layer first."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("<!-- map:start -->"):text.index("<!-- map:end -->")]
    rows = []
    for line in block.splitlines():
        found = re.match(r"\|\s*`nstkit/(\w+)/`\s*\|(.*)\|\s*$", line)
        if found:
            rows.append((found.group(1), re.findall(r"`(\w+)`", found.group(2).split("|")[0])))
    return rows


LAYERS = [folder for folder, _ in _readme_map()]
LEVEL = {name: level + 1 for level, name in enumerate(LAYERS)} | {name: 0 for name in BOTTOM} | \
    {name: len(LAYERS) + 1 for name in TOP}
TF_FREE = {f"{folder}.{path.stem}" for folder in TF_FREE_LAYERS for path in (PACKAGE / folder).glob("*.py")
           if not path.stem.startswith("_")}


def test_the_readme_map_is_the_tree():
    folders = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists())
    assert sorted(LAYERS) == folders, "the README's map and nstkit's folders disagree"
    for folder, listed in _readme_map():
        modules = sorted(path.stem for path in (PACKAGE / folder).glob("*.py") if not path.stem.startswith("_"))
        assert sorted(listed) == modules, f"README map row {folder}: lists {sorted(listed)}, folder has {modules}"
    loose = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert loose == sorted(BOTTOM + TOP), f"loose modules at nstkit/'s top: {loose}"


def test_folders_are_one_level_deep_and_small():
    for folder in LAYERS:
        nested = [path for path in (PACKAGE / folder).iterdir() if (path / "__init__.py").exists()]
        assert not nested, f"{folder} holds packages: {nested}"
        modules = [path for path in (PACKAGE / folder).glob("*.py") if not path.stem.startswith("_")]
        assert len(modules) <= 8, f"{folder} has {len(modules)} modules: split it"


def test_the_tests_mirror_the_package():
    """tests/<layer>/test_<module>.py tests a module of that layer (test_<layer>.py its ``__init__``); end-to-end and
    cross-cutting tests sit at tests/'s top. Basenames are unique: pytest imports each test file by its name."""
    tests = ROOT / "tests"
    folders = sorted(path.name for path in tests.iterdir()
                     if path.is_dir() and path.name != "data" and not path.name.startswith((".", "_")))
    assert set(folders) <= set(LAYERS), f"tests/ folders that are no layer of nstkit/: {sorted(set(folders) - set(LAYERS))}"
    for folder in folders:
        modules = {path.stem for path in (PACKAGE / folder).glob("*.py") if not path.stem.startswith("_")} | {folder}
        for path in sorted((tests / folder).glob("*.py")):
            assert path.stem.removeprefix("test_") in modules, f"tests/{folder}/{path.name} names no module of nstkit/{folder}/"
    names = [path.name for path in tests.rglob("test_*.py")]
    assert len(names) == len(set(names)), f"test files of one name: {sorted({n for n in names if names.count(n) > 1})}"


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(relative.parts)


def _imports(path: Path) -> set[str]:
    """Every nstkit module ``path`` imports, as dotted names under nstkit (``sweep.grid``, ``config``)."""
    package = _module_name(path).split(".")[:-1]  # "sweep.grid" and "sweep.__init__" live in "sweep"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = [*base, *(node.module.split(".") if node.module else [])]
            if node.module:
                found.add(".".join(target))
            else:
                found.update(".".join([*target, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.removeprefix("nstkit.") for alias in node.names if alias.name.startswith("nstkit."))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nstkit"):
            found.add(node.module.removeprefix("nstkit").lstrip(".") or "__init__")
    return {name for name in found if name}


def _top(name: str) -> str:
    return name.split(".")[0]


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_every_module_has_a_layer():
    tops = {_top(name) for name in _modules()}
    assert tops <= set(LEVEL), f"modules with no layer in LAYERS: {sorted(tops - set(LEVEL))}"


def test_no_module_imports_a_module_above_it():
    upward = []
    for name, path in _modules().items():
        level = LEVEL[_top(name)]
        for target in _imports(path):
            if _top(target) in LEVEL and LEVEL[_top(target)] > level:
                upward.append(f"{name} imports {target}, a layer above it")
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = {name: {target for target in _imports(path) if target in _modules() and target != name}
             for name, path in _modules().items()}
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(" -> ".join(stack[stack.index(node):] + [node]))
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for target in graph.get(node, ()):
            visit(target)
        stack.pop()

    for node in graph:
        visit(node)
    # A package's __init__ importing its own submodules is how packages work, not a circle.
    cycles = [c for c in cycles if not any(part.endswith("__init__") for part in c.split(" -> "))]
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_the_core_never_imports_tensorflow():
    """Not even lazily, inside a function (quiet's whole job is to import it, and it is only called from above)."""
    assert len(TF_FREE) > 10
    for name in TF_FREE:
        for node in ast.walk(ast.parse((PACKAGE / (name.replace(".", "/") + ".py")).read_text())):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [m for m in modules if m.split(".")[0] in ("tensorflow", "keras")], name


PROBE = """
import json, sys
from nstkit.ui.cli import main
results = []
for args in json.loads(sys.argv[1]):
    try:
        code = main(args)
    except SystemExit as exit:
        code = exit.code
    results.append([args, code, "tensorflow" in sys.modules, "keras" in sys.modules])
print(json.dumps(results))
"""


def test_listings_help_and_every_bad_input_path_never_import_tensorflow(tiny_pair, tmp_path):
    content, style = map(str, tiny_pair)
    out = str(tmp_path / "out.png")
    cases = [["layers"], ["layers", "--kind", "relu"], ["presets"], ["stylize", "--help"], ["sweep", "--help"],
             ["estimate", "--help"]]
    for preset in ("robust", "swag", "vgg19", "vanilla", "conv_relu:0.3"):
        base = ["stylize", content, style, "-o", out, "--preset", preset]
        cases += [base + ["--style-layers", "conv4_block2_2_rellu"], base + ["--steps", "2.5"],
                  base + ["--swag", "sofmax"], [*base[:1], str(tmp_path / "missing.png"), *base[2:]],
                  base + ["--weights", str(tmp_path / "none.h5")], base + ["--max-dim", "8"],
                  base + ["--tile-size", "64", "--param", "fourier"]]
    cases += [["sweep", content, style, "-o", str(tmp_path / "sweep"), "--grid", "stepz=1"],
              ["estimate", str(tmp_path / "missing.png"), "--preset", "swag"]]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = [" ".join(Path(a).name for a in args) for args, code, tf, keras in results if tf or keras]
    assert not loaded, f"TensorFlow imported by: {loaded}"
    for args, code, _, _ in results:
        expected = 0 if args in (["layers"], ["layers", "--kind", "relu"], ["presets"]) or "--help" in args else 2
        assert code == expected, (args, code)


def test_importing_nstkit_and_its_core_loads_no_tensorflow():
    modules = ", ".join(f"nstkit.{name}" for name in sorted(TF_FREE))
    done = subprocess.run([sys.executable, "-c", f"import sys, nstkit, {modules}; "
                           "print('tensorflow' in sys.modules or 'keras' in sys.modules)"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-1000:]
    assert done.stdout.strip() == "False"
