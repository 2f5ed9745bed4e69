"""The ROI dock's detection and import panel: "Detect" (channel, plane, diameter; on the
registered frames when the Registration dock has a registration) in a worker with progress
and Cancel; accept / reject of the ROIs found; import of suite2p, CaImAn and cellpose ROIs.

Detected ROIs arrive as a Labels layer whose labels are numbered by decreasing score (label 1
is the best), coloured as drawn ROIs are, each listed with its score.  They start out as
candidates: they have no trace, no Traces legend entry and are left out of saved ROI files
and sessions.  Accepting an ROI shows its trace (the Traces dock follows); rejecting one
removes it.  The computation is
:func:`~napari_scanimage.analysis.detection.iter_detect_rois`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QMenu,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..analysis.detection import iter_detect_rois
from ..analysis.rois import RoiSet
from ._labels import CANDIDATES_KEY, HIDDEN_KEY, delete_labels, is_labels, label_values
from ._worker import WorkerDock

__all__ = ["FEATURES_KEY", "DetectPanel", "IMPORTERS"]

#: layer metadata: {label value: {feature: value}} of detected or imported ROIs
FEATURES_KEY = "roi_features"
#: import button text → (RoiSet reader, file dialog caption, filter; None: a folder)
IMPORTERS: dict[str, tuple[Callable[..., RoiSet], str, str | None]] = {
    "suite2p": (RoiSet.from_suite2p, "suite2p plane folder (…/suite2p/plane0)", None),
    "CaImAn": (RoiSet.from_caiman, "CaImAn results", "CaImAn results (*.hdf5 *.h5)"),
    "cellpose": (
        RoiSet.from_cellpose,
        "cellpose masks",
        "cellpose (*_seg.npy *.png *.tif *.tiff)",
    ),
}


class DetectPanel(WorkerDock):
    """Detection, curation and import for a :class:`~.rois.RoiDock` (its ``dock``)."""

    def __init__(self, dock):
        super().__init__()
        self.dock = dock
        self.viewer = dock.viewer
        self.channel_box = QComboBox()
        self.plane_box = QComboBox()
        self.diameter = QDoubleSpinBox()
        self.diameter.setRange(0, 200)
        self.diameter.setDecimals(1)
        self.diameter.setSuffix(" px")
        self.diameter.setSpecialValueText("⌀ auto")  # 0: estimated from the data
        self.diameter.setToolTip("cell diameter; auto: estimated from the recording")
        self.detect_button = QPushButton("Run")
        self.detect_button.setToolTip(
            "find active cells (on the registered frames when there is a registration)"
        )
        self.cancel_button = QPushButton("Cancel")
        self.accept_button = QPushButton("Accept")
        self.accept_button.setToolTip("keep the selected ROIs: their traces are shown")
        self.reject_button = QPushButton("Reject")
        self.reject_button.setToolTip("remove the selected ROIs")
        self.progress = QProgressBar()
        self.status = dock.status  # (one status line for the dock)
        # one button for the three formats keeps the dock narrow
        self.import_button = QPushButton("Import")  # (a push button draws its menu arrow
        self.import_button.setToolTip("ROIs found by suite2p, CaImAn or cellpose")  # apart)
        menu = QMenu(self.import_button)
        self.import_actions = {name: menu.addAction(f"{name}…") for name in IMPORTERS}
        self.import_button.setMenu(menu)
        # two rows (the ROI list keeps its height): the settings, then the actions
        self.channel_box.setToolTip("channel to detect cells on")
        self.plane_box.setToolTip("plane to search (all: each plane)")
        self.diameter.setPrefix("⌀ ")
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        first, second = QHBoxLayout(), QHBoxLayout()
        for widget in (self.channel_box, self.plane_box, self.diameter):
            first.addWidget(widget, 1)
        for b in (self.detect_button, self.cancel_button, self.accept_button,
                  self.reject_button, self.import_button):  # fmt: skip
            second.addWidget(b)
        rows.addLayout(first)
        rows.addLayout(second)
        rows.addWidget(self.progress)
        self._set_busy(False)
        self.detect_button.clicked.connect(self.detect)
        self.cancel_button.clicked.connect(self.cancel)
        self.accept_button.clicked.connect(lambda: self.curate(True))
        self.reject_button.clicked.connect(lambda: self.curate(False))
        for name, action in self.import_actions.items():
            if action is not None:  # (Qt's stubs allow None; addAction returns the action)
                action.triggered.connect(functools.partial(self._import_dialog, name))
        self.refresh()

    # -- form -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Channels and planes of the dock's recording."""
        ds = self.dock.dataset
        names = list(ds.info.channel_names) if ds is not None else []
        planes = ["all"] + [str(z) for z in range(ds.info.num_planes)] if ds is not None else []
        for box, items in ((self.channel_box, names), (self.plane_box, planes)):
            if [box.itemText(i) for i in range(box.count())] != items:
                box.clear()
                box.addItems(items)
        self.plane_box.setEnabled(len(planes) > 2)
        self.detect_button.setEnabled(ds is not None and not self.busy)
        layer = self.dock.layer
        candidates = is_labels(layer) and FEATURES_KEY in layer.metadata
        self.accept_button.setEnabled(bool(candidates))
        self.reject_button.setEnabled(bool(candidates))

    def registration(self):
        """The registration shown by the Registration dock, if any."""
        for layer in self.viewer.layers:
            reg = layer.metadata.get("scanimage_registration")
            if reg is not None:
                return reg
        return None

    def detect_kwargs(self) -> dict:
        """The arguments of ``detect_rois`` the form gives."""
        plane = self.plane_box.currentText()
        return dict(
            channel=max(self.channel_box.currentIndex(), 0),
            plane=None if plane in ("", "all") else int(plane),
            diameter_px=self.diameter.value() or None,
            registration=self.registration(),
        )

    # -- detection --------------------------------------------------------------------------
    def detect(self):
        """Find cells in the recording (in a worker); they arrive as a "detected" layer."""
        ds = self.dock.dataset
        if ds is None:
            self.status.setText("open a recording first")
            return None
        kwargs = self.detect_kwargs()
        registered = " on the registered frames" if kwargs["registration"] is not None else ""
        self.status.setText(f"detecting{registered}…")
        self.detect_button.setEnabled(False)
        return self.start_worker(
            functools.partial(iter_detect_rois, ds, **kwargs),
            returned=lambda rois: self.show_candidates(rois, registered),
            finished=self.refresh,
            what="ROI detection",
        )

    def cancel(self) -> None:
        """Stop a running detection; nothing is added."""
        if self._worker is not None:
            self._worker.quit()
            self.status.setText("detection cancelled")

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        if not busy:
            self.detect_button.setEnabled(self.dock.dataset is not None)

    def show_candidates(self, rois: RoiSet, registered: str = "", name: str = "detected"):
        """Add ROIs as a Labels layer of candidates (traces hidden until accepted)."""
        if not len(rois):
            self.status.setText(f"no cells found{registered}: try another diameter or channel")
            return None
        layer = self.dock.add_mask_layer(rois, name)
        layer.metadata = {
            **layer.metadata,
            FEATURES_KEY: {k + 1: dict(r.features or {}) for k, r in enumerate(rois)},
            HIDDEN_KEY: set(range(1, len(rois) + 1)),
            CANDIDATES_KEY: set(range(1, len(rois) + 1)),
        }
        layer.events.paint()  # listeners (ROI list, traces) refresh
        self.status.setText(
            f"{len(rois)} ROI(s) found{registered}, best first: select rows, then Accept or Reject"
        )
        self.refresh()
        return layer

    def curate(self, accept: bool) -> None:
        """Accept (show their traces) or reject (remove) the ROIs selected in the list."""
        layer = self.dock.layer
        if not is_labels(layer):
            return
        rows = sorted({i.row() for i in self.dock.table.selectedIndexes()})
        values = label_values(layer)
        chosen = [values[r] for r in rows if r < len(values)]
        if not chosen:
            self.status.setText("select ROIs in the list first")
            return
        if accept:
            hidden = set(layer.metadata.get(HIDDEN_KEY, set())) - set(chosen)
            candidates = set(layer.metadata.get(CANDIDATES_KEY, set())) - set(chosen)
            layer.metadata = {**layer.metadata, HIDDEN_KEY: hidden, CANDIDATES_KEY: candidates}
            layer.events.paint()
        else:
            delete_labels(layer, chosen)
        left = label_values(layer)
        waiting = layer.metadata.get(CANDIDATES_KEY, set())
        shown = len([v for v in left if v not in waiting])
        self.status.setText(f"{shown} of {len(left)} ROI(s) accepted")

    # -- import -----------------------------------------------------------------------------
    def import_rois(self, kind: str, path: str | Path):
        """Read ROIs of another tool (``kind`` one of :data:`IMPORTERS`) into a new Labels
        layer, all accepted; refused with a message when they do not fit the recording.
        """
        reader = IMPORTERS[kind][0]
        ds = self.dock.dataset
        info = ds.info if ds is not None else None
        kwargs = dict(frame_shape=info.frame_shape, num_planes=info.num_planes) if info else {}
        rois = reader(path, **kwargs)
        if not len(rois):
            self.status.setText(f"no ROIs in {Path(path).name}")
            return None
        layer = self.dock.add_mask_layer(rois, f"{kind} {Path(path).name}")
        layer.metadata = {
            **layer.metadata,
            FEATURES_KEY: {k + 1: dict(r.features or {}) for k, r in enumerate(rois)},
        }
        layer.events.paint()
        self.status.setText(f"{len(rois)} ROI(s) imported from {Path(path).name}")
        self.refresh()
        return layer

    def _import_dialog(self, kind: str, checked: bool = False) -> None:
        _, caption, pattern = IMPORTERS[kind]
        if pattern is None:
            path = QFileDialog.getExistingDirectory(self, caption)
        else:
            path, _ = QFileDialog.getOpenFileName(self, caption, "", pattern)
        if not path:
            return
        try:
            self.import_rois(kind, path)
        except (OSError, ValueError, ImportError) as exc:  # typed errors: said in the viewer
            self.report_error(f"{kind} import", exc)
