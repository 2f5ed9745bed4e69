"""Package rules: the layers import downwards only, the core never imports GUI toolkits, no
import cycles, no private name used across modules, no eval of file content.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_scanimage"
ROOT = PACKAGE.name
GUI_TOOLKITS = ("napari", "qtpy", "magicgui", "pyqtgraph", "PyQt5", "PyQt6", "PySide2", "PySide6")
GUI_IMPORT = re.compile(
    r"^\s*(import|from)\s+(napari|qtpy|magicgui|pyqtgraph|PyQt[56]|PySide[26])\b", re.M
)
# what each layer may import from the package (itself included); everything else builds on them
ALLOWED = {
    f"{ROOT}.io": (f"{ROOT}.io", f"{ROOT}.errors"),
    f"{ROOT}._core": (f"{ROOT}._core", f"{ROOT}.io", f"{ROOT}.errors"),
}


@dataclass(frozen=True)
class Import:
    module: str  # importing module
    target: str  # imported module (absolute)
    names: tuple[str, ...]  # names taken from it (``from target import names``)
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``: no run-time edge


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, tree: ast.AST | None = None) -> Iterator[Import]:
    """Every import statement of one module (also those inside functions), made absolute."""
    tree = tree or ast.parse(path.read_text())
    type_only = _type_checking_lines(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), node.lineno, node.lineno in type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = tuple(alias.name for alias in node.names)
            yield Import(name, target, names, node.lineno, node.lineno in type_only)


def package_edges(imp: Import) -> set[str]:
    """Modules of the package that an import loads (``from pkg import submodule`` loads it)."""
    edges = {f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in MODULES}
    if imp.target in MODULES and (not imp.names or len(edges) < len(imp.names)):
        edges.add(imp.target)
    return edges


IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_modules():
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in IMPORTS:
        if not imp.type_only:
            graph[imp.module] |= package_edges(imp) - {imp.module}
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_layers_import_downwards_only():
    """io/ knows formats only; the core (the array layer) builds on io/ alone: never on
    analysis, flim, sessions, the command line or the GUI (not even for type hints).
    """
    offenders = []
    for imp in IMPORTS:
        for layer, allowed in ALLOWED.items():
            inside = imp.module == layer or imp.module.startswith(layer + ".")
            ours = imp.target == ROOT or imp.target.startswith(ROOT + ".")
            if (
                inside
                and ours
                and not any(
                    e == a or e.startswith(a + ".")
                    for e in package_edges(imp) or {imp.target}
                    for a in allowed
                )
            ):
                offenders.append(f"{imp.module}:{imp.line} imports {imp.target}")
    assert not offenders, "\n".join(offenders)


def test_no_private_name_imported_across_modules():
    """``from module import _name`` (or ``module._name``) reaches into another module's
    internals; private modules of a package may still be imported by their package.
    """
    offenders = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        module_aliases: dict[str, str] = {}
        for imp in imports_of(name, path, tree):
            for n in imp.names:
                if f"{imp.target}.{n}" in MODULES:
                    module_aliases[n] = f"{imp.target}.{n}"
                elif n.startswith("_") and not n.startswith("__") and imp.target.startswith(ROOT):
                    offenders.append(f"{name}:{imp.line} imports {imp.target}.{n}")
        for node in ast.walk(tree):  # `from . import x as y` then y._name
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.asname and alias.name in module_aliases:
                        module_aliases[alias.asname] = module_aliases[alias.name]
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offenders.append(
                    f"{name}:{node.lineno} uses {module_aliases[node.value.id]}.{node.attr}"
                )
    assert not offenders, "\n".join(offenders)


def test_core_does_not_import_gui_toolkits_in_source():
    offenders = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if not (imp.module + ".").startswith(f"{ROOT}.gui.")
        and imp.target.split(".")[0] in GUI_TOOLKITS
    ]
    assert not offenders, "\n".join(offenders)
    # the same rule read from the text, so an import ast could miss (exec'd strings) shows too
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "gui" not in p.relative_to(PACKAGE).parts and GUI_IMPORT.search(p.read_text())
    ]
    assert not offenders, "\n".join(offenders)


def test_core_import_loads_no_gui_toolkit():
    code = (
        "import sys, napari_scanimage as n; from napari_scanimage import open_dataset; "
        "import napari_scanimage.cli, napari_scanimage.sample, napari_scanimage.flim, "
        "napari_scanimage.testing, napari_scanimage.session; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'qtpy', 'magicgui', 'pyqtgraph', 'PyQt6', 'PyQt5', 'PySide6')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_eval_and_no_pickle_loading():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\beval\(", text), path
        assert "allow_pickle=True" not in text, path


#: The alarm that asks whether a module holds two concepts, in logical lines (statements; a
#: docstring or a call wrapped over several lines counts once), so that how the formatter
#: wraps code cannot move a module across it: ~450 logical lines are ~600 written ones.
MAX_LOGICAL_LINES = 450


def logical_lines(text: str) -> int:
    """The number of logical lines (tokenize's NEWLINE tokens) of Python source."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return sum(1 for token in tokens if token.type == tokenize.NEWLINE)


def test_logical_lines_ignore_wrapping():
    assert logical_lines("f(a, b)\n") == logical_lines("f(\n    a,\n    b,\n)\n") == 1
    assert logical_lines('"""doc\nmore"""\nx = 1\n\n# note\n') == 2


def test_modules_stay_small():
    sizes = {
        str(p.relative_to(PACKAGE)): logical_lines(p.read_text(encoding="utf-8"))
        for p in PACKAGE.rglob("*.py")
    }
    assert {k: v for k, v in sizes.items() if v > MAX_LOGICAL_LINES} == {}
