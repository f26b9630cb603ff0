"""The cracks of a mask too large to hold, found from its rows as they come: 8-connected components, band by band.

Each band of rows is labelled on its own (``scipy.ndimage.label``); components that touch across two bands'
common edge are joined afterwards (a graph of labels, ``scipy.sparse.csgraph``). What is kept of each component is
its bounding box, its area and its first pixel (row-major), never a label map of the photo: memory follows the band
and the number of components. :func:`crack_lightning.scanning.segment_windows.measure_from_file` then measures each crack
in its own box, which gives the numbers of :func:`crack_lightning.measure.bands.measure_photo_cracks` on the whole
mask (a crack's skeleton and distances depend only on its own pixels and the background around them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


@dataclass
class Component:
    """One crack: its box (rows ``top:bottom``, columns ``left:right``), area in pixels and first pixel."""

    top: int
    bottom: int
    left: int
    right: int
    area: int
    first: tuple[int, int]  # (row, column) of its first pixel in row-major order


class BandComponents:
    """Components of a ``width``-pixel-wide mask fed band by band, top to bottom, with :meth:`add`."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._rows = 0
        self._count = 0
        self._last_row: np.ndarray | None = None  # global labels of the previous band's last row
        self._edges: list[np.ndarray] = []  # (2, n) pairs of labels joined across band edges
        self._stats: list[np.ndarray] = []  # (n, 6): top, bottom, left, right, area, first pixel (linear)

    def add(self, band: np.ndarray) -> None:
        """The next rows of the mask, ``bool (h, width)``."""
        labels, count = ndimage.label(band, structure=EIGHT_NEIGHBOURS, output=np.int32)
        top = self._rows
        if count:
            labels[labels > 0] += self._count
            boxes = ndimage.find_objects(labels)[self._count :]
            flat = labels.ravel()
            on = np.flatnonzero(flat)
            owners, firsts = np.unique(flat[on], return_index=True)  # nonzero indices are row-major: first pixels
            stats = np.empty((count, 6), np.int64)
            stats[:, 0] = [top + b[0].start for b in boxes]
            stats[:, 1] = [top + b[0].stop for b in boxes]
            stats[:, 2] = [b[1].start for b in boxes]
            stats[:, 3] = [b[1].stop for b in boxes]
            stats[:, 4] = np.bincount(flat[on] - self._count - 1, minlength=count)
            stats[owners - self._count - 1, 5] = on[firsts] + top * self.width
            self._stats.append(stats)
            if self._last_row is not None:
                self._join(self._last_row, labels[0])
        self._last_row = labels[-1].copy() if len(labels) else self._last_row
        self._count += count
        self._rows += len(band)

    def _join(self, above: np.ndarray, below: np.ndarray) -> None:
        for shift in (-1, 0, 1):  # 8-connectivity: straight down and both diagonals
            a = above[max(0, -shift) : len(above) - max(0, shift)]
            b = below[max(0, shift) : len(below) - max(0, -shift)]
            both = (a > 0) & (b > 0)
            if both.any():
                self._edges.append(np.stack([a[both], b[both]]))

    def components(self) -> list[Component]:
        """Every component, in row-major order of its first pixel (the order ``ndimage.label`` numbers them)."""
        if not self._count:
            return []
        stats = np.concatenate(self._stats)
        edges = np.concatenate(self._edges, axis=1) - 1 if self._edges else np.zeros((2, 0), np.int64)
        graph = coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=(self._count, self._count))
        count, root = connected_components(graph, directed=False)
        merged = np.empty((count, 6), np.int64)
        merged[:, [0, 2, 5]] = np.iinfo(np.int64).max
        merged[:, [1, 3, 4]] = 0
        for column, ufunc in ((0, np.minimum), (1, np.maximum), (2, np.minimum), (3, np.maximum), (5, np.minimum)):
            ufunc.at(merged[:, column], root, stats[:, column])
        np.add.at(merged[:, 4], root, stats[:, 4])
        merged = merged[np.argsort(merged[:, 5], kind="stable")]
        return [
            Component(int(t), int(b), int(left), int(r), int(a), divmod(int(f), self.width))
            for t, b, left, r, a, f in merged.tolist()
        ]
