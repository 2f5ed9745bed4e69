"""Write synthetic ScanImage-FLIM ``.siff`` files with known photons (docs/formats.md §2).

BigTIFF header, ScanImage block at 16 (static text with FLIM keys, ROI JSON), then per page: IFD,
NUL-terminated description, (compressed only) u16 intensity raster, photon strip; the next IFD
follows the strip.  Photons are made for blocks of pages with vectorised numpy (streaming).
"""

from __future__ import annotations

import math
import os
import pathlib
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from .photons import (
    LATE_SPAN,
    alias_table,
    bin_probabilities,
    block_photons,
    channel_models,
    rate_maps,
    rate_photons,
)
from .tiff import (
    SCANIMAGE_MAGIC,
    TIFF_FORMAT_VERSION,
    SyntheticLayout,
    roi_group_json,
    scanimage_static_text,
)

__all__ = ["SyntheticSiff", "write_siff"]

BASE_BIN_PS = 5.0  # bin width = 5 ps * 2**binResolution (MultiHarp driver >= v3)
LASER_EPOCH0_NS = 1_713_382_945_749_120_799  # laser-clock epoch of frame 1
SYSTEM_EPOCH0_NS = 1_713_382_945_213_082_599  # system epoch before frame 1
TIMESTAMP_OFFSET_US = 250_200  # frameTimestamps_sec of frame 1
TEXT_DELAY_US = 12_345  # 'Text timestamp' of an annotation after its frame's timestamp
_BLOCK_PHOTONS, _BLOCK_PIXELS = 1 << 19, 1 << 22  # per block: photons, raster pixels
_FLIM_KEYS = ("SI.hScan2D.hAcq.Tau_bins", "SI.hScan2D.hAcq.binResolution",
              "SI.hScan2D.hAcq.countrates")  # fmt: skip
_TAGS = (
    (256, 4),
    (257, 4),
    (258, 3),
    (259, 3),
    (262, 3),
    (270, 2),
    (273, 16),
    (274, 3),
    (277, 3),
    (278, 4),
    (279, 16),
    (282, 5),
    (283, 5),
    (284, 3),
    (296, 3),
    (305, 2),
    (315, 2),
    (339, 3),
    (907, 1),
)  # (tag, type) of each IFD entry, as the reference files
_ENTRY = np.dtype([("tag", "<u2"), ("type", "<u2"), ("count", "<u8"), ("value", "<u8")])
_DESC = ("frameNumbers = {n}\nframeNumberAcquisition = {n}\nframeTimestamps_sec = {ts}\n"
         "sync Stamps = {sync}\nmostRecentSystemTimestamp_epoch = {sys}\n"
         "acqTriggerTimestamps_sec = \nnextFileMarkerTimestamps_sec = \nendOfAcquisition = \n"
         "endOfAcquisitionMode = \ndcOverVoltage = 0\nepoch = {laser}\n")  # fmt: skip


def _frame_clock(
    frames: np.ndarray, frame_rate: float, period_ps: float
) -> dict[str, npt.NDArray[np.int64]]:
    """Per 0-based frame: timestamp (µs), sync stamps, laser and system epochs (ns)."""
    t_ns = np.rint(np.asarray(frames, np.float64) * (1e9 / frame_rate)).astype(np.int64)
    update = t_ns // 1_000_000_000  # the system epoch is refreshed about once a second
    return {
        "ts_us": (t_ns + 500) // 1000 + TIMESTAMP_OFFSET_US,
        "sync": (t_ns * (1000.0 / period_ps)).astype(np.int64),
        "laser": LASER_EPOCH0_NS + t_ns,
        "sys": SYSTEM_EPOCH0_NS + update * 1_000_000_000 + update * 7919 % 1000 * 1000,
    }


@dataclass
class SyntheticSiff:
    """A ``.siff`` file written by :func:`write_siff` and its ground truth.

    Attributes
    ----------
    path, layout, compressed, total_pages : pathlib.Path, SyntheticLayout, bool, int
        File, layout, storage format (True: raster + u16 arrival times) and pages written.
    num_bins, bin_width_ps, laser_period_ps : int, float, float
        ``Tau_bins``, arrival-bin width and laser period.
    taus_ns, fractions, irf_offset_ns, irf_width_ns : tuple, tuple, float, float
        Per channel: lifetimes and normalised photon fractions; Gaussian IRF centre and sigma.
    photon_counts, late_counts : numpy.ndarray
        Per page: all photons, and late photons (tau >= num_bins) among them.
    annotations : dict
        Page -> appended text (see :meth:`annotation_timestamps`).
    rate_maps, motion, static_text : numpy.ndarray, numpy.ndarray or None, str
        (C, Y, X) unshifted pixel probabilities (None with ``rate_map``); (T, 2) (dy, dx) per
        volume; static header.
    lifetime_map, component_counts : numpy.ndarray or None
        (Y, X) lifetime index per unshifted pixel, and (C, K) non-late photons drawn with each
        lifetime of each channel (both None without ``lifetime_map``).
    """

    path: pathlib.Path
    layout: SyntheticLayout
    compressed: bool
    num_bins: int
    bin_width_ps: float
    laser_period_ps: float
    taus_ns: tuple[tuple[float, ...], ...]
    fractions: tuple[tuple[float, ...], ...]
    irf_offset_ns: float
    irf_width_ns: float
    total_pages: int
    photon_counts: np.ndarray = field(repr=False)
    late_counts: np.ndarray = field(repr=False)
    annotations: dict[int, str] = field(default_factory=dict)
    rate_maps: np.ndarray | None = field(default=None, repr=False)
    motion: np.ndarray | None = field(default=None, repr=False)
    static_text: str = field(default="", repr=False)
    lifetime_map: np.ndarray | None = field(default=None, repr=False)
    component_counts: np.ndarray | None = field(default=None, repr=False)
    _pix: np.ndarray | None = field(default=None, repr=False)
    _tau: np.ndarray | None = field(default=None, repr=False)

    def _truth(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pixel index, tau, page) of every photon in storage order."""
        if self._pix is None or self._tau is None:  # (kept together)
            raise RuntimeError("photon truth not kept (write_siff(..., keep_truth=True))")
        return self._pix, self._tau, np.repeat(np.arange(self.total_pages), self.photon_counts)

    def photons(self, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y, x, tau) int64 arrays of page g's photons in storage order (raw: arrival order;
        compressed: grouped by pixel in raster order).
        """
        if not 0 <= g < self.total_pages:
            raise IndexError(f"page {g} out of range [0, {self.total_pages})")
        pix, tau, _ = self._truth()
        b = int(self.photon_counts[: g + 1].sum())
        a = b - int(self.photon_counts[g])
        y, x = np.divmod(pix[a:b].astype(np.int64), self.layout.width)
        return y, x, tau[a:b].astype(np.int64)

    def intensity(self, channel: int) -> np.ndarray:
        """uint16 photon counts of the complete volumes' non-flyback pages of ``channel``:
        (T, Z, Y, X), or (T, Z, F, Y, X) when frames_per_slice F > 1.
        """
        pix, _, page = self._truth()
        lay = self.layout
        T, Z, F = lay.num_volumes, lay.num_planes, lay.frames_per_slice
        npix = lay.height * lay.width
        t, z, f = (a.ravel() for a in np.meshgrid(range(T), range(Z), range(F), indexing="ij"))
        pages = np.asarray(lay.page_index(t, z, f, channel), np.int64)
        rank = np.full(self.total_pages, -1, np.int64)
        rank[pages] = np.arange(pages.size)
        keep = rank[page] >= 0
        out = np.bincount(rank[page[keep]] * npix + pix[keep], minlength=pages.size * npix)
        shape = (T, Z, F) if F > 1 else (T, Z)
        return out.astype(np.uint16).reshape(*shape, lay.height, lay.width)

    def histogram(self, channel: int, length: int | None = None) -> np.ndarray:
        """uint64 counts of arrival bins 0..length-1 (default num_bins + 64) over all pages of
        ``channel``, not wrapped; ValueError when a photon has tau >= length.
        """
        _, tau, page = self._truth()
        length = self.num_bins + 64 if length is None else int(length)
        tau = tau[page % self.layout.num_channels == channel]
        if tau.size and int(tau.max()) >= length:
            raise ValueError(f"arrival bin {int(tau.max())} does not fit length {length}")
        return np.bincount(tau, minlength=length).astype(np.uint64)

    def expected_histogram(self, channel: int, length: int | None = None) -> np.ndarray:
        """float64 expected counts of arrival bins 0..length-1 for the channel's photon number
        (late photons excluded): periodic exponential mixture convolved with the Gaussian IRF,
        integrated over each bin.  With a ``lifetime_map`` the mixture weights are the photon
        numbers drawn with each lifetime (:attr:`component_counts`), not ``fractions``.
        """
        length = self.num_bins + 64 if length is None else int(length)
        taus = [1000.0 * t for t in self.taus_ns[channel]]
        if self.component_counts is None:
            sel = slice(channel, None, self.layout.num_channels)
            weights = [float((self.photon_counts[sel] - self.late_counts[sel]).sum())]
            parts: list[tuple[Sequence[float], Sequence[float]]] = [(taus, self.fractions[channel])]
        else:
            weights = self.component_counts[channel, : len(taus)].astype(float).tolist()
            parts = [([t], [1.0]) for t in taus]
        return sum(
            (
                w
                * bin_probabilities(
                    t,
                    f,
                    1000.0 * self.irf_offset_ns,
                    1000.0 * self.irf_width_ns,
                    self.laser_period_ps,
                    self.bin_width_ps,
                    length,
                )
                for w, (t, f) in zip(weights, parts, strict=True)
            ),
            np.zeros(length),
        )

    @overload
    def _clock(self, key: None = None) -> dict[str, npt.NDArray[np.int64]]: ...

    @overload
    def _clock(self, key: str) -> npt.NDArray[np.int64]: ...

    def _clock(
        self, key: str | None = None
    ) -> npt.NDArray[np.int64] | dict[str, npt.NDArray[np.int64]]:
        frames = np.arange(self.total_pages) // self.layout.num_channels
        clock = _frame_clock(frames, self.layout.frame_rate, self.laser_period_ps)
        return clock if key is None else clock[key]

    def timestamps(self) -> np.ndarray:
        """``frameTimestamps_sec`` of every page (float64, exactly as written)."""
        return self._clock("ts_us") / 1e6

    def epoch_laser(self) -> np.ndarray:
        """``epoch`` (laser clock, int64 ns) of every page."""
        return self._clock("laser")

    def epoch_system(self) -> np.ndarray:
        """``mostRecentSystemTimestamp_epoch`` (int64 ns) of every page (updated ~1/s)."""
        return self._clock("sys")

    def annotation_timestamps(self) -> dict[int, float]:
        """Page -> ``Text timestamp`` (s) of each annotation, as written."""
        ts = self._clock("ts_us")
        return {g: (int(ts[g]) + TEXT_DELAY_US) / 1e6 for g in self.annotations}

    def description(self, g: int) -> str:
        """Description text of page g as written (without its NULs)."""
        clock = {k: int(v[g]) for k, v in self._clock().items()}
        return _description(g // self.layout.num_channels, clock, self.annotations.get(g))


def _description(frame: int, clock: dict[str, int], note: str | None) -> str:
    """Description of a page of 0-based ``frame``, with the annotation ``note`` if any."""
    sec = "{}.{:06d}".format  # exact seconds from integer microseconds
    text = _DESC.format(n=frame + 1, ts=sec(*divmod(clock["ts_us"], 10**6)), sync=clock["sync"],
                        sys=clock["sys"], laser=clock["laser"])  # fmt: skip
    if note is not None:
        note_us = clock["ts_us"] + TEXT_DELAY_US
        text += f"Appended text = {note}\nText timestamp = {sec(*divmod(note_us, 10**6))}\n"
    return text


def write_siff(path: str | os.PathLike[str], layout: SyntheticLayout, *, compressed: bool = False,
               photons_per_frame: float = 2000.0,
               taus_ns: Sequence[Sequence[float]] = ((0.5, 2.5),),
               fractions: Sequence[Sequence[float]] = ((0.4, 0.6),),
               irf_offset_ns: float = 1.0, irf_width_ns: float = 0.12,
               laser_period_ps: float = 12500.0, bin_resolution: int = 2,
               num_bins: int | None = None, empty_pages: Iterable[int] = (),
               late_pages: Mapping[int, int] | None = None, motion: np.ndarray | None = None,
               annotations: Mapping[int, str] | None = None,
               extra_tags: Mapping[int, int] | None = None, keep_truth: bool = True,
               seed: int = 0, header: str | os.PathLike[str] | None = None,
               rate_map: Callable[[int], np.ndarray] | None = None,
               lifetime_map: np.ndarray | None = None) -> SyntheticSiff:  # fmt: skip
    """Write a synthetic ScanImage-FLIM ``.siff`` file with known photons.

    Parameters
    ----------
    path, layout : str or os.PathLike, SyntheticLayout
        Target (one file: ``frames_per_file`` raises ValueError) and page layout (``dtype`` is
        ignored).  Flyback pages carry no photons.
    compressed : bool
        False: u64 photon records (y, x, tau) in arrival order.  True: u16 intensity raster
        before the strip, u16 arrival times grouped by pixel in raster order.
    photons_per_frame : float
        Mean photons of a non-flyback page (Poisson per pixel, smooth blob pattern).
    taus_ns, fractions : sequence of sequence of float
        Lifetimes (ns) and photon fractions per channel (recycled over channels); a single
        lifetime ignores its fractions.
    rate_map : callable, optional
        ``rate_map(g)`` -> (Y, X) finite non-negative expected photon counts of non-flyback,
        non-empty page g (channel, volume and plane follow from g via the layout, see
        :meth:`SyntheticLayout.page_index`); counts are Poisson per pixel and replace the blob
        pattern (``photons_per_frame`` is ignored, ``rate_maps`` is None).  A page's photons
        are then in raster order; its late photons are in random pixels.
    lifetime_map : numpy.ndarray, optional
        (Y, X) integers (or bool) k in [0, K): a pixel's photons have the single lifetime
        ``taus_ns[c][k]`` (a channel with fewer lifetimes uses its last one) instead of the
        mixture; ``fractions`` are then unused.  Like the pattern it is rolled by ``motion``.
    irf_offset_ns, irf_width_ns : float
        Gaussian IRF centre and standard deviation (ns).
    laser_period_ps, bin_resolution, num_bins : float, int, int or None
        Laser period, bin width 5 ps * 2**bin_resolution, ``Tau_bins`` (default
        ceil(period / bin width) + 4).  Arrival times are taken modulo the period.
    empty_pages, late_pages : iterable of int, mapping of int to int
        Non-flyback pages written without photons; page -> number of extra photons with tau
        uniform in [num_bins, num_bins + 40).
    motion : numpy.ndarray, optional
        (T, 2) integer (dy, dx) ``np.roll`` shift of the pattern for each volume written.
    annotations, extra_tags : mapping of int to str, mapping of int to int
        Page -> one-line text (``Appended text`` / ``Text timestamp``); unknown tag id ->
        SHORT value added to every IFD (sorted in).
    keep_truth, seed : bool, int
        Keep every photon for :class:`SyntheticSiff` (~8 bytes per photon); random seed.
    header : str or os.PathLike, optional
        Real static header (see :func:`scanimage_static_text`).

    Returns
    -------
    SyntheticSiff
        The file's parameters and ground truth.
    """
    lay = layout
    C, H, W, G, ppv = lay.num_channels, lay.height, lay.width, lay.total_pages, lay.pages_per_volume
    if lay.frames_per_file is not None or H >= 65536 or W >= 65536:
        raise ValueError("write_siff writes single files (frames_per_file None), H, W < 65536")
    bw, period = BASE_BIN_PS * 2.0 ** int(bin_resolution), float(laser_period_ps)
    n_period = math.ceil(period / bw - 1e-9)
    num_bins = n_period + 4 if num_bins is None else int(num_bins)
    if num_bins < 1 or photons_per_frame < 0 or period <= 0:
        raise ValueError("need num_bins >= 1, photons_per_frame >= 0, laser_period_ps > 0")
    if compressed and max(num_bins + LATE_SPAN, n_period) > 65536:
        raise ValueError("compressed arrival times are u16: num_bins + 40 must be <= 65536")
    taus, fracs = channel_models(C, taus_ns, fractions)
    K = max(len(t) for t in taus)
    lmap = None if lifetime_map is None else np.asarray(lifetime_map)
    if lmap is not None:
        if lmap.shape != (H, W) or lmap.dtype.kind not in "biu" or not (
                lmap.size and 0 <= lmap.min() and lmap.max() < K):  # fmt: skip
            raise ValueError(f"lifetime_map must be ({H}, {W}) integers in [0, {K})")
        lmap = lmap.astype(np.int64).ravel()
    flyback = (np.arange(G) % ppv) // C >= lay.num_planes * lay.frames_per_slice
    empty_pages, late_pages = [int(g) for g in empty_pages], dict(late_pages or {})
    annotations = {int(g): str(v) for g, v in (annotations or {}).items()}
    if any(not 0 <= g < G for g in [*empty_pages, *late_pages, *annotations]) or any(
        "\n" in v or "\0" in v for v in annotations.values()
    ):
        raise ValueError(f"empty, late and annotated pages must be in [0, {G}); one-line notes")
    empty, late = np.zeros(G, bool), np.zeros(G, np.int64)
    empty[empty_pages], late[list(late_pages)] = True, list(late_pages.values())
    if (empty & flyback).any() or (flyback & (late > 0)).any() or (late < 0).any():
        raise ValueError("empty and late pages must not be flyback pages; late counts >= 0")
    extra = {int(k): int(v) for k, v in (extra_tags or {}).items()}
    if any(k in dict(_TAGS) or not 0 < k < 65536 or not 0 <= v < 65536 for k, v in extra.items()):
        raise ValueError("extra_tags: new tag ids < 65536 with SHORT values")
    if motion is not None:
        motion, n_vol = np.asarray(motion, np.int64), -(-G // ppv)
        if motion.ndim != 2 or motion.shape[1] != 2 or motion.shape[0] < n_vol:
            raise ValueError(f"motion must be ({n_vol}, 2) integer (dy, dx) shifts")
    maps = prob = alias = None
    if rate_map is None:
        maps = rate_maps(C, H, W, seed)
        prob, alias = map(
            np.concatenate, zip(*(alias_table(mp.ravel()) for mp in maps), strict=True)
        )
    m = {"C": C, "H": H, "W": W, "K": K, "ppv": ppv, "motion": motion, "bw": bw,
         "period": period, "n_period": n_period, "num_bins": num_bins, "prob": prob,
         "lmap": lmap, "last": np.array([len(t) - 1 for t in taus]),
         "tau_ps": 1e3 * np.array([t + (1.0,) * (K - len(t)) for t in taus], np.float32).ravel(),
         "cum": np.array([np.cumsum(f + (0.0,) * (K - len(f))) for f in fracs], np.float32),
         "alias": alias, "irf": (1000.0 * irf_offset_ns, 1000.0 * irf_width_ns)}  # fmt: skip
    rng = np.random.default_rng([seed, 0xF11])
    skip = flyback | empty
    n_norm = np.zeros(G, np.int64)  # with rate_map: drawn per block
    if rate_map is None:
        n_norm = np.where(skip, 0, rng.poisson(photons_per_frame, G)).astype(np.int64)
    counts, ncomp = n_norm + late, np.zeros(C * K, np.int64)

    lines = [
        ln
        for ln in scanimage_static_text(lay, header).split("\n")
        if ln and ln.split(" = ", 1)[0] not in _FLIM_KEYS
    ]  # FLIM keys replaced
    lines += [f"{_FLIM_KEYS[0]} = {num_bins}", f"{_FLIM_KEYS[1]} = {int(bin_resolution)}",
              f"{_FLIM_KEYS[2]} = [{1e12 / period:.10g} 1000]"]  # fmt: skip
    text = "\n".join(lines) + "\n"
    objres = re.search(r"^SI\.objectiveResolution = ([0-9.eE+-]+)\s*$", text, re.M)
    static = text.encode("ascii", errors="replace") + b"\x00"
    roi = roi_group_json(lay, float(objres[1]) if objres else 15.0).encode() + b"\x00"
    tags = sorted([*_TAGS, *((k, 3) for k in extra)])
    values = {256: W, 257: H, 258: 16 if compressed else 64, 259: 1, 262: 1, 274: 1, 277: 1,
              278: H, 284: 1, 296: 3, 305: 32, 315: 32 + len(static), 339: 1,
              907: int(compressed), **extra}  # fmt: skip
    n_counts = {305: len(static), 315: len(roi)}
    entries = np.array([(t, ty, n_counts.get(t, 1), values.get(t, 0)) for t, ty in tags], _ENTRY)
    i270, i273, i279 = (next(i for i, (t, _) in enumerate(tags) if t == k) for k in (270, 273, 279))
    ifd_dtype = np.dtype([("n", "<u8"), ("e", _ENTRY, (len(tags),)), ("next", "<u8")])
    ifd_b, raster_b, rec_b = ifd_dtype.itemsize, 2 * H * W if compressed else 0, (8, 2)[compressed]
    per_block = max(1, min(_BLOCK_PHOTONS // max(1, int(photons_per_frame)), 1 << 14,
                           _BLOCK_PIXELS // (H * W) if compressed else G))  # fmt: skip
    if rate_map is not None:  # the block's rate maps are held as float64
        per_block = max(1, min(_BLOCK_PIXELS // (H * W), 1 << 14))
    truth = [(np.zeros(0, np.int32), np.zeros(0, np.uint32))]
    pad = (len(static) + len(roi)) & 1  # IFDs on word boundaries
    pos = 32 + len(static) + len(roi) + pad
    with open(path, "wb", buffering=1 << 22) as fh:
        fh.write(struct.pack("<2sHHHQIIII", b"II", 43, 8, 0, pos, SCANIMAGE_MAGIC,
                             TIFF_FORMAT_VERSION, len(static), len(roi)))  # fmt: skip
        fh.write(static + roi + b"\x00" * pad)
        for g0 in range(0, G, per_block):
            g1, pix_in = min(G, g0 + per_block), None
            if rate_map is not None:
                n_norm[g0:g1], pix_in = rate_photons(rng, rate_map, np.arange(g0, g1),
                                                      ~skip[g0:g1], H, W)  # fmt: skip
                counts[g0:g1] = n_norm[g0:g1] + late[g0:g1]
            n, N = g1 - g0, counts[g0:g1]
            pix, tau, nc = block_photons(rng, m, g0, N, n_norm[g0:g1], late[g0:g1], pix_in)
            if nc is not None:
                ncomp += nc
            if compressed:  # arrival times are iid of pixels: group pixels, keep tau order
                raster = np.bincount(np.repeat(np.arange(n) * (H * W), N) + pix,
                                     minlength=n * H * W).reshape(n, H * W)  # fmt: skip
                if raster.max(initial=0) > 65535:
                    raise ValueError("more than 65535 photons in one pixel of a page")
                raster, data = raster.astype("<u2"), tau.astype("<u2")
                if keep_truth:  # as stored: grouped by pixel
                    pix = np.repeat(np.tile(np.arange(H * W), n), raster.ravel())
            else:
                y, x = (a.astype("<u8") for a in np.divmod(pix, W))
                data = y << 48 | x << 32 | tau
            if keep_truth:
                truth.append((pix.astype(np.int32), tau))
            cl = _frame_clock(np.arange(g0, g1) // C, lay.frame_rate, period)
            descs = [_description(g // C, {k: v[g - g0] for k, v in cl.items()}, annotations.get(g))
                     .encode("ascii", errors="replace") for g in range(g0, g1)]  # fmt: skip
            descs = [d + b"\x00" * (2 - (len(d) & 1)) for d in descs]  # NUL, even length
            d_len = np.array([len(d) for d in descs], np.uint64)
            sizes = ifd_b + d_len + raster_b + rec_b * N.astype(np.uint64)
            at = pos + np.cumsum(sizes) - sizes
            ifd = np.zeros(n, ifd_dtype)
            ifd["n"], ifd["e"], ifd["next"] = len(tags), entries, at + sizes
            ifd["e"]["count"][:, i270], ifd["e"]["value"][:, i270] = d_len, at + ifd_b
            ifd["e"]["value"][:, i273] = at + ifd_b + d_len + raster_b
            ifd["e"]["value"][:, i279] = rec_b * N
            ifd["next"][-1] *= g1 < G  # 0 ends the chain
            ifd_u8, ends = ifd.view(np.uint8).reshape(n, ifd_b), np.cumsum(N)
            parts: list[bytes | npt.NDArray[Any]] = []
            for i in range(n):
                parts += [ifd_u8[i], descs[i], *([raster[i]] if compressed else []),
                          data[ends[i] - N[i]: ends[i]]]  # fmt: skip
            # (arrays are buffers: numpy's stubs say so only from Python 3.12 on)
            fh.write(b"".join(parts))  # type: ignore[arg-type]
            pos += int(sizes.sum())
    pix_all, tau_all = map(np.concatenate, zip(*truth, strict=True)) if keep_truth else (None,) * 2
    return SyntheticSiff(
        pathlib.Path(path),
        lay,
        bool(compressed),
        num_bins,
        bw,
        period,
        taus,
        fracs,
        float(irf_offset_ns),
        float(irf_width_ns),
        G,
        counts,
        late,
        annotations,
        maps,
        motion,
        text,
        None if lmap is None else lmap.reshape(H, W),
        None if lmap is None else ncomp.reshape(C, K),
        pix_all,
        tau_all,
    )
