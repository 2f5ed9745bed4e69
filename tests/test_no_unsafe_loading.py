"""No code path loads data in a way that can run code: no pickles (``allow_pickle=True``,
``pickle.load``), no ``eval`` / ``exec``, no ``yaml.load`` without a safe loader.

Checked on the syntax tree of every module, so comments and docstrings that mention these
names do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _name(node: ast.AST) -> str:
    """Dotted name of a call target: ``pickle.load``, ``np.load``, ``eval``…"""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def problems(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and node.arg == "allow_pickle"
            and not (isinstance(node.value, ast.Constant) and node.value.value is False)
        ):
            found.append(f"line {node.value.lineno}: allow_pickle other than False")
        if isinstance(node, ast.ImportFrom) and node.module in (
            "pickle",
            "cPickle",
            "dill",
            "marshal",
            "shelve",
        ):
            found.append(f"line {node.lineno}: imports from {node.module}")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        last = name.rsplit(".", 1)[-1]
        if name in ("eval", "exec", "builtins.eval", "builtins.exec", "compile"):
            found.append(f"line {node.lineno}: {name}()")
        if name.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve") and last in (
            "load",
            "loads",
            "Unpickler",
            "open",
        ):
            found.append(f"line {node.lineno}: {name}()")
        if name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
            loader = next(
                (k.value for k in node.keywords if k.arg == "Loader"),
                node.args[1] if len(node.args) > 1 else None,
            )
            if loader is None or _name(loader).rsplit(".", 1)[-1] not in SAFE_YAML_LOADERS:
                found.append(f"line {node.lineno}: {name}() without a safe Loader")
        if last in ("read_pickle", "load") and name.startswith(("pd.", "pandas.", "torch.")):
            found.append(f"line {node.lineno}: {name}() can unpickle")
    return found


def test_the_checker_sees_what_it_must():
    bad = ast.parse(
        "import pickle\nimport numpy as np\nimport yaml\n"
        "np.load(f, allow_pickle=True)\npickle.loads(b)\neval('1')\nexec(s)\n"
        "yaml.load(t)\nyaml.load(t, Loader=yaml.FullLoader)\n"
        "from pickle import load\n"
    )
    assert sorted(int(p.split(":")[0][5:]) for p in problems(bad)) == [4, 5, 6, 7, 8, 9, 10]
    good = ast.parse(
        '"""eval( exec( pickle.load allow_pickle=True yaml.load("""\n'
        "# eval(x) pickle.load(f)\n"
        "np.load(f, allow_pickle=False)\nnp.load(f)\n"
        "yaml.load(t, Loader=yaml.SafeLoader)\nyaml.safe_load(t)\n"
        "ast.literal_eval('1')\nre.compile('a')\n"
    )
    assert problems(good) == []


def test_no_unsafe_loading_in_the_package():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30, f"only {len(files)} modules under {SRC}: wrong folder?"
    report = {}
    for path in files:
        found = problems(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if found:
            report[str(path.relative_to(SRC))] = found
    if report:
        pytest.fail(
            "unsafe loading:\n" + "\n".join(f"{f}: {p}" for f, ps in report.items() for p in ps)
        )


def test_the_only_unpickler_is_the_restricted_one():
    """Pickled .npy files (suite2p, cellpose) are read by one unpickler, which resolves
    globals from an exact allow-list only (its ``find_class``).
    """
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                _name(b).endswith("Unpickler") for b in node.bases
            ):
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                found[f"{path.relative_to(SRC)}:{node.name}"] = methods
    assert list(found) == ["napari_scanimage/analysis/_safe_pickle.py:RestrictedUnpickler"]
    assert {"find_class", "persistent_load"} <= next(iter(found.values()))
