"""The package's layout: the torch-free subpackages import no torch, torchvision or Lightning, the scan's layers import
one way, and no module grows past 300 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "crack_lightning"
TORCH_FREE = ("io", "runtime", "results", "scanning", "measure", "report", "synth", "scale", "evaluation", "tasks")
TORCH_FREE_CLI = (
    "__init__",
    "options",
    "predict",
    "scan",
    "tiles",
    "export",
    "stored_help",
    "synth",
    "marker",
    "evaluate",
)
HEAVY = ("torch", "torchvision", "lightning", "pytorch_lightning", "torchmetrics")
# The scan's layers, lowest first: runtime (predictors) -> results -> writers (report; scanning: tasks, the folder,
# GeoJSON). Each subpackage named here imports none of those after it (nor the API or the commands).
LAYERS = ("runtime", "results", "report", "scanning", "api", "cli")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def torch_free_modules() -> list[str]:
    names = ["crack_lightning", "crack_lightning.errors", "crack_lightning.options", "crack_lightning.api"]
    for package in TORCH_FREE:
        names += sorted(module_name(p) for p in (PACKAGE / package).rglob("*.py"))
    names += [f"crack_lightning.cli.{m}".removesuffix(".__init__") for m in TORCH_FREE_CLI]
    return names


def test_torch_free_modules_import_no_torch():
    # One process, each module imported in turn: the first one that pulls in a heavy package is named.
    script = (
        "import importlib, sys\n"
        f"heavy = {HEAVY!r}\n"
        f"for name in {torch_free_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "    found = sorted(m for m in heavy if m in sys.modules)\n"
        "    if found:\n"
        "        sys.exit(f'{name} imports {found}')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


def test_no_module_over_300_lines():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long


def imports_of(path: Path, type_checking: bool = False) -> set[str]:
    """The crack_lightning modules ``path`` imports, also inside functions; ``if TYPE_CHECKING:`` blocks left out
    (they never run) unless ``type_checking``."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if not type_checking and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crack_lightning"):
            for alias in node.names:  # `from crack_lightning.io import images` imports the module io.images
                sub = f"{node.module}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).is_file() else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("crack_lightning"))
    return found


def test_imports_have_no_cycles():
    # Imports inside functions count too: a cycle hidden in a function is still one. The package itself (its
    # lazy attributes) is left out.
    graph = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}
    graph = {
        m: {d for d in deps if d in graph and d != "crack_lightning"}
        for m, deps in graph.items()
        if m != "crack_lightning"
    }
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                raise AssertionError(
                    "import cycle: " + " -> ".join(path[path.index(dep) :] + [dep]) if dep in path else dep
                )
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_scans_layers_import_one_way():
    # Type hints count too: a runtime model that names a scan's result type still pulls the layer above into it.
    wrong = {}
    for below, package in enumerate(LAYERS[:3]):
        above = {f"crack_lightning.{name}" for name in LAYERS[below + 1 :]}
        for path in (PACKAGE / package).rglob("*.py"):
            found = {
                m for m in imports_of(path, type_checking=True) if any(m == a or m.startswith(a + ".") for a in above)
            }
            if found:
                wrong[module_name(path)] = sorted(found)
    assert not wrong, wrong
