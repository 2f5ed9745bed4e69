"""A virtual X server (Xvfb) for scripts that render napari windows on a machine without a
display: the documentation screenshots and the viewer benchmark.  Not part of the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

__all__ = ["virtual_display"]


class virtual_display:
    """Start Xvfb for the duration of a ``with`` block when there is no display."""

    def __init__(self, size: str = "1600x1000x24"):
        self.size = size
        self.proc: subprocess.Popen | None = None
        self.previous = os.environ.get("DISPLAY")

    def __enter__(self) -> virtual_display:
        if self.previous:
            return self
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            raise RuntimeError(
                "no display and no Xvfb: install it (apt-get install xvfb) or run "
                "scripts/demo.sh, which does"
            )
        for number in range(99, 199):
            if (
                not Path(f"/tmp/.X11-unix/X{number}").exists()
                and not Path(f"/tmp/.X{number}-lock").exists()
            ):
                break
        self.proc = subprocess.Popen(
            [xvfb, f":{number}", "-screen", "0", self.size, "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.05)
        os.environ["DISPLAY"] = f":{number}"
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            os.environ.pop("DISPLAY", None)
