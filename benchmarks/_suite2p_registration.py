"""suite2p's non-rigid registration of a movie, timed, run by ``bench_registration.py`` in
another Python environment (suite2p is never a dependency of napari-scanimage)::

    /path/to/suite2p-env/bin/python benchmarks/_suite2p_registration.py MOVIE.npy OUT.npz

MOVIE.npy: (n, Y, X) int16 frames.  Times ``compute_reference`` on the first ``nimg_init``
frames (suite2p's default 400, all when fewer) plus ``register_frames(nonrigid=True)`` on the
CPU with suite2p's default settings; writes the total displacement field of every frame
(rigid + the block shifts upsampled as suite2p applies them), subsampled every 4th pixel, in
our convention ``registered[y, x] = frame[y + dy, x + dx]``, and prints one JSON line
``{"seconds": ..., "frames": ...}``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def main() -> int:
    import torch
    import torch.nn.functional as F
    from suite2p.registration import register

    movie, out = sys.argv[1], sys.argv[2]
    frames = np.load(movie).astype(np.int16)
    n, Ly, Lx = frames.shape
    device = torch.device("cpu")
    settings = register.default_settings()
    settings["torch_device"] = "cpu"
    reg = settings["registration"]
    work = frames.copy()
    t0 = time.perf_counter()
    # (a copy: compute_reference registers the frames it is given in place)
    init = work[: reg["nimg_init"]].copy()
    ref = register.compute_reference(init, settings=reg, device=device)
    _, _, _, offsets, blocks, *_ = register.register_frames(
        work, ref, nonrigid=True, device=device, batch_size=reg["batch_size"]
    )
    seconds = time.perf_counter() - t0
    ymax, xmax, _, ymax1, xmax1 = offsets[:5]
    yblock, xblock, nblocks = blocks[:3]
    # the per-pixel block shifts exactly as suite2p's nonrigid.transform_data makes them
    yb = np.array(yblock[:: nblocks[1]]).mean(axis=1).astype("int")
    xb = np.array(xblock[: nblocks[1]]).mean(axis=1).astype("int")
    Lyc, Lxc = int(yb.max() - yb.min()), int(xb.max() - xb.min())
    field = np.empty((n, 2, (Ly + 3) // 4, (Lx + 3) // 4), np.float32)
    for s in range(0, n, 20):
        y1 = torch.from_numpy(np.asarray(ymax1[s : s + 20], np.float32)).reshape(-1, *nblocks)
        x1 = torch.from_numpy(np.asarray(xmax1[s : s + 20], np.float32)).reshape(-1, *nblocks)
        up = F.interpolate(
            torch.stack((y1, x1), dim=1), size=(Lyc, Lxc), mode="bilinear", align_corners=True
        )
        up = F.pad(
            up,
            (int(xb.min()), Lx - int(xb.max()), int(yb.min()), Ly - int(yb.max())),
            mode="replicate",
        ).numpy()
        up[:, 0] += np.asarray(ymax[s : s + 20], np.float32)[:, None, None]
        up[:, 1] += np.asarray(xmax[s : s + 20], np.float32)[:, None, None]
        field[s : s + 20] = up[:, :, ::4, ::4]
    np.savez(out, field=field, rigid=np.stack([ymax, xmax], axis=1).astype(np.float64))
    print(json.dumps({"seconds": seconds, "frames": n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
