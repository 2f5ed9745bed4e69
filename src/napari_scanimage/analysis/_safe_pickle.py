""".npy files that hold Python objects (suite2p's ``stat.npy`` / ``ops.npy``, cellpose's
``_seg.npy``) read without running code from the file.

Such a file is a pickle after the .npy header.  A pickle names the callables that rebuild its
objects ("globals"); an ordinary unpickler imports and calls whatever the file names, so a
crafted file runs any code.  :class:`RestrictedUnpickler` admits only the globals in
:data:`ALLOWED` — matched by exact (module, name), never by prefix — and raises
:class:`~napari_scanimage.errors.FormatError` for any other, before anything is called.
Dicts, lists, tuples, strings, bytes, numbers, booleans and None need no global.
"""

from __future__ import annotations

import datetime
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError

__all__ = ["ALLOWED", "RestrictedUnpickler", "load_npy"]

# The callables NumPy's pickles name, taken from NumPy itself (their module moved from
# numpy.core to numpy._core in NumPy 2; files of either version name their own).
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_NUMPY = {"_reconstruct": _RECONSTRUCT, "scalar": _SCALAR}
ALLOWED: dict[tuple[str, str], Any] = {
    **{
        (m, n): f
        for m in ("numpy.core.multiarray", "numpy._core.multiarray")
        for n, f in _NUMPY.items()
    },  # fmt: skip
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "timezone"): datetime.timezone,
    ("datetime", "timedelta"): datetime.timedelta,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of :data:`ALLOWED`."""

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, name: str) -> None:
        super().__init__(file)
        self._name = name

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object for (module, name); FormatError for anything else."""
        try:
            return ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise FormatError(
                f"{self._name} asks to run {module}.{name} when read; only NumPy arrays, "
                "numbers, text, lists, dicts and dates are read from such files — it was "
                "not written by the tool it claims to come from, or it is not safe to open"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise FormatError(f"{self._name} refers to outside objects; it is not a .npy file")


def load_npy(path: str | os.PathLike[str]) -> Any:
    """The content of a .npy file: an array, or — for object arrays — its Python objects
    unpickled with :class:`RestrictedUnpickler` (a 0-d object array gives its one object).

    Raises
    ------
    FormatError
        Not a .npy file, a damaged one, or one whose pickle names a callable not allowed.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            header = (
                np.lib.format.read_array_header_1_0(fh)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(fh)
            )
        except ValueError as exc:
            raise FormatError(f"{path.name} is not a NumPy .npy file ({exc})") from None
        dtype = header[2]
        if not dtype.hasobject:
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
        try:
            value = RestrictedUnpickler(fh, path.name).load()
        except FormatError:
            raise
        except Exception as exc:  # a damaged pickle: any of many exception types
            raise FormatError(f"{path.name}: its objects cannot be read ({exc!r})") from None
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 0:
        return value.item()
    return value
