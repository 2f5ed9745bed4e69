"""The ``napari-scanimage`` command.

Sub-commands
------------
info FILE [--json]
    Print what a recording holds (layout, rates, geometry).
demo [--screenshot PATH] [--sample NAME]
    Open napari with a sample recording and the plugin's docks; with ``--screenshot`` render the
    whole window to a PNG (on a virtual X server when there is no display) and exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import ScanImageError

__all__ = ["main"]


def _info(args: argparse.Namespace) -> int:
    from .dataset import open_dataset

    with open_dataset(args.file) as ds:
        info = ds.info
        record = {
            "files": [str(p) for p in ds.paths],
            "version": info.version,
            "channel_names": list(info.channel_names),
            "channel_ids": list(info.channel_ids),
            "num_volumes": info.num_volumes,
            "num_planes": info.num_planes,
            "frames_per_slice": info.frames_per_slice,
            "num_flyback": info.num_flyback,
            "frame_shape": list(info.frame_shape or ()),
            "dtype": str(info.dtype),
            "frame_rate": info.frame_rate,
            "volume_rate": info.volume_rate,
            "pixel_size_um": list(info.pixel_size_um) if info.pixel_size_um else None,
            "z_step_um": info.z_step_um,
            "bidirectional": info.bidirectional,
            "mroi": info.mroi,
            "is_flim": info.is_flim,
        }
        if ds.is_siff:
            flim = ds.flim
            record["siff"] = {"num_bins": flim.num_bins, "bin_width_ps": flim.bin_width_ps,
                              "laser_period_ps": flim.laser_period_ps,
                              "photon_encoding": sorted({"raw", "compressed"}
                                                        & set(_encodings(ds)))}
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        width = max(map(len, record))
        for key, value in record.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _encodings(ds) -> list[str]:
    names = {0: "raw", 1: "compressed"}
    return [names[int(k)] for _, _, ix in ds._file_indexes() for k in set(ix.siff_flags.tolist())
            if int(k) in names]


def _demo(args: argparse.Namespace) -> int:
    from .gui.demo import run_demo

    return run_demo(screenshot=args.screenshot, sample=args.sample)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-scanimage",
                                     description="ScanImage recordings in napari and scripts")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="print the layout and metadata of a recording")
    p.add_argument("file", help="a ScanImage .tif (any file of a series) or .siff")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    p = sub.add_parser("demo", help="open napari with sample data and every dock")
    p.add_argument("--screenshot", metavar="PATH",
                   help="render the window to PATH (PNG) and exit; works without a display")
    p.add_argument("--sample", choices=("volume_2ch", "flim_2ch"), default="volume_2ch",
                   help="which sample recording to open (default: the volumetric TIFF)")
    p.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScanImageError, OSError) as exc:
        print(f"napari-scanimage: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
