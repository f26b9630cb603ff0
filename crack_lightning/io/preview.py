"""A small copy of a photo too large to hold, built from its rows as a windowed reader decodes them.

Overlays and thumbnails of an orthomosaic are drawn on this copy: the photo is box-averaged by a whole factor
(``PIL.Image.reduce``, exact and fast), so the copy of a 1-gigapixel photo at 4096 px costs 50 MB, and each row of
the photo is seen once, with no second pass. Pixels without data (alpha 0, the no-data value) are painted as a grey
checkerboard, the usual sign of "nothing here", so that no-data areas are shown as such and not as concrete.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

CHECKER = 8  # preview pixels per checkerboard square
CHECKER_GREYS = (150, 200)


class Preview:
    """Collects rows ``top..`` of a ``width`` x ``height`` photo, in order, into a copy at most ``max_side`` long."""

    def __init__(self, width: int, height: int, max_side: int) -> None:
        self.factor = max(1, math.ceil(max(width, height) / max_side))
        self.width, self.height = width, height
        size = (math.ceil(height / self.factor), math.ceil(width / self.factor))
        self.image = np.zeros((*size, 3), np.uint8)
        self.valid = np.ones(size, bool)
        self._rows: list[tuple[np.ndarray, np.ndarray | None]] = []  # rows not reduced yet (fewer than factor)
        self._pending = 0
        self._done = 0  # photo rows reduced

    def add(self, top: int, rows: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Photo rows ``top : top + len(rows)`` (``uint8 (h, width, 3)``), with which hold data (``bool (h, width)``)."""
        if top != self._done + self._pending:
            raise ValueError(f"rows from {top}: the preview expects row {self._done + self._pending} next")
        self._rows.append((rows, valid))
        self._pending += len(rows)
        whole = self._pending // self.factor * self.factor
        if whole and (whole == self._pending or self._pending >= 4 * self.factor):
            self._reduce(whole)
        if self._pending and self._done + self._pending == self.height:
            self._reduce(self._pending)

    def _reduce(self, count: int) -> None:
        """Reduce the first ``count`` pending rows (a multiple of the factor, or the photo's last rows)."""
        rows = np.concatenate([r for r, _ in self._rows]) if len(self._rows) > 1 else self._rows[0][0]
        masks = [v if v is not None else np.ones(r.shape[:2], bool) for r, v in self._rows]
        has_mask = any(v is not None for _, v in self._rows)
        first = self._done // self.factor
        small = np.asarray(Image.fromarray(np.ascontiguousarray(rows[:count])).reduce(self.factor))
        self.image[first : first + len(small)] = small
        if has_mask:
            mask = np.concatenate(masks)[:count].astype(np.uint8) * 255
            self.valid[first : first + len(small)] = np.asarray(Image.fromarray(mask).reduce(self.factor)) >= 128
        rest = rows[count:]
        rest_valid = np.concatenate(masks)[count:] if has_mask else None
        self._rows = [(rest, rest_valid)] if len(rest) else []
        self._done += count
        self._pending -= count

    @property
    def complete(self) -> bool:
        return self._done == self.height

    def picture(self) -> np.ndarray:
        """The copy, ``uint8 (h, w, 3)``, pixels without data as a checkerboard."""
        image = self.image.copy()
        if not self.valid.all():
            ys, xs = np.indices(self.valid.shape)
            board = np.where(((ys // CHECKER + xs // CHECKER) % 2) == 0, *CHECKER_GREYS).astype(np.uint8)
            image[~self.valid] = board[~self.valid][:, None]
        return image


class PooledMap:
    """Collects rows of a ``uint8 (height, width)`` probability map, in order, into a copy the size of a
    :class:`Preview`'s, each pixel the highest value it covers: a crack one pixel wide stays visible."""

    def __init__(self, width: int, height: int, max_side: int) -> None:
        self.factor = max(1, math.ceil(max(width, height) / max_side))
        self.width, self.height = width, height
        self.map = np.zeros((math.ceil(height / self.factor), math.ceil(width / self.factor)), np.uint8)
        self._pending = np.zeros((0, width), np.uint8)
        self._done = 0

    def add(self, rows: np.ndarray) -> None:
        pending = np.concatenate([self._pending, rows]) if len(self._pending) else rows
        last = self._done + len(pending) == self.height
        count = len(pending) if last else len(pending) // self.factor * self.factor
        if count:
            f = self.factor
            block = pending[:count]
            padded = np.zeros((math.ceil(count / f) * f, len(self.map[0]) * f), np.uint8)
            padded[:count, : self.width] = block
            pooled = padded.reshape(len(padded) // f, f, -1, f).max(axis=(1, 3))
            first = self._done // f
            self.map[first : first + len(pooled)] = pooled
            self._done += count
        self._pending = pending[count:].copy()
