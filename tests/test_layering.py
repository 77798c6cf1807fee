"""Layers you can see: no module imports one above it, no import circles, and no TensorFlow where none is needed.

The layers, lowest first, are listed in nstkit/__init__.py's docstring and in the README's map. Lazy imports
inside functions count too: an upward import is upward wherever it sits.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

from nst_helpers import ROOT

PACKAGE = ROOT / "nstkit"
# Lowest first. A module may import modules of its own layer or below.
LAYERS = [
    ("core", ["errors", "support", "fields", "layers", "files", "config", "images", "record", "quiet", "start", "color",
              "tiles", "masks", "flow", "clips"]),
    ("model", ["device", "folding", "backbone", "swag", "param", "losses", "style_stats"]),
    ("engine", ["objective", "optim", "checkpoint", "sources", "engine", "optimize", "video"]),
    ("interfaces", ["memory", "timing", "metrics", "analysis", "compare", "sweep", "cli", "widgets", "notebook",
                    "__main__", "__init__"]),
]
LEVEL = {module: level for level, (_, modules) in enumerate(LAYERS) for module in modules}
TF_FREE = {"errors", "support", "fields", "layers", "files", "config", "images", "record", "quiet", "start", "color", "tiles", "masks", "flow", "clips"}


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
                upward.append(f"{name} ({LAYERS[level][0]}) imports {target} ({LAYERS[LEVEL[_top(target)]][0]})")
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
    for name in TF_FREE - {"quiet"}:
        for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text())):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                       [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [m for m in modules if m.split(".")[0] in ("tensorflow", "keras")], name


PROBE = """
import json, sys
from nstkit.cli import main
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
