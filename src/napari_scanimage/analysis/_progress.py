"""Long computations are generators that yield (done, total) and return their result, so a GUI
worker can report progress and stop between steps; :func:`drive` runs one to the end.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")


def drive(
    gen: Generator[tuple[int, int], None, T], progress: Callable[[int, int], None] | None = None
) -> T:
    """Run ``gen`` to completion, passing each (done, total) to ``progress``; its result."""
    while True:
        try:
            done, total = next(gen)
        except StopIteration as stop:
            result: T = stop.value  # what the generator returned
            return result
        if progress is not None:
            progress(done, total)
