"""Smoke run of the mutation fuzzer of the readers (benchmarks/fuzz.py; larger runs by hand)."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"


def _load_fuzz():
    spec = importlib.util.spec_from_file_location("napari_scanimage_fuzz", FUZZ)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_fuzz_smoke(tmp_path):
    fuzz = _load_fuzz()
    out = io.StringIO()
    result = fuzz.fuzz(200, seed=0, folder=tmp_path, out=out)
    assert len(result["cases"]) == 200
    assert sum(result["counts"].values()) == 200
    assert result["counts"]["typed"] > 0  # the mutations do reach the error paths
    assert not result["failures"], out.getvalue()[-4000:]
