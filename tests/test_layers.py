"""The layer rule: the core imports no Ultralytics and nothing above it; no module imports from a layer above."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "yoloslim"
# lowest first; a module may import from its own layer and the ones before it
LAYERS = [
    {"__init__", "errors", "log", "io"},  # shared basics (errors.py imports nothing)
    {"graph", "plan", "surgery", "sparsity"},  # core: pure torch
    {
        "args",
        "blocks",
        "checkpoint",
        "measure",
        "onnx_check",
        "latency",
        "seeded",
        "slimming",
        "trainer",
        "data",
        "report",
        "paired",
        "classic",  # the yolov5 repository's models, beside Ultralytics'
        "classic_train",
        "sparse_run",
        "quiet",
    },  # the Ultralytics adapter
    {"pruning", "levels", "onnx_export", "deploy", "sweep", "flow", "study", "convert"},  # the verbs
    {"cli"},
]
CORE = LAYERS[1]


def imports(path: Path) -> set[str]:
    """Modules of the package (first name after yoloslim.) and top-level packages a file imports, anywhere."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y / from ..graph import z
                base = (node.module or "").split(".")[0]
                inside_blocks = path.parent.name == "blocks" and node.level == 1
                if inside_blocks:
                    out.add("blocks")
                elif base:
                    out.add(base)
                else:
                    out.update(alias.name for alias in node.names)
            else:
                out.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
    return out


def layer_of(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {"blocks"}
    assert modules <= set().union(*LAYERS), f"put {sorted(modules - set().union(*LAYERS))} in a layer of LAYERS"


def test_the_core_imports_no_ultralytics():
    for name in CORE:
        used = imports(PACKAGE / f"{name}.py")
        assert "ultralytics" not in used, name


def test_no_module_imports_from_a_layer_above():
    test_every_module_has_a_layer()
    files = [p for p in PACKAGE.glob("*.py")] + [PACKAGE / "blocks"]
    for path in files:
        name = path.stem if path.suffix else path.name
        sources = [path] if path.suffix else sorted(path.glob("*.py"))
        for source in sources:
            for used in imports(source) & set().union(*LAYERS):
                if used == "__init__" or (name == "__init__"):
                    continue  # the package's own __init__ re-exports the verbs: the API on top
                assert layer_of(used) <= layer_of(name), f"{source.name} ({name}) imports {used}, a layer above"


def test_the_core_runs_without_ultralytics():
    """Not only its import lines: importing the core (and so the package top) loads no Ultralytics at run time."""
    import subprocess
    import sys

    code = "import sys, yoloslim.graph, yoloslim.plan, yoloslim.surgery, yoloslim.sparsity, yoloslim.errors\n"
    code += "assert 'ultralytics' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ultralytics'))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
