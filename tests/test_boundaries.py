"""Package rules: the core never imports GUI toolkits; no eval of file content."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_scanimage"
GUI_IMPORT = re.compile(
    r"^\s*(import|from)\s+(napari|qtpy|magicgui|pyqtgraph|PyQt[56]|PySide[26])\b", re.M)


def test_core_does_not_import_gui_toolkits_in_source():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "gui" not in p.relative_to(PACKAGE).parts and GUI_IMPORT.search(p.read_text())]
    assert offenders == []


def test_core_import_loads_no_gui_toolkit():
    code = ("import sys, napari_scanimage as n; from napari_scanimage import open_dataset; "
            "import napari_scanimage.cli, napari_scanimage.sample; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('napari', 'qtpy', 'magicgui', 'pyqtgraph', 'PyQt6', 'PyQt5', 'PySide6')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_eval_and_no_pickle_loading():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\beval\(", text), path
        assert "allow_pickle=True" not in text, path


def test_modules_stay_small():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 600} == {}
