"""The segmenter's scan of an orthomosaic (a tiled or very large TIFF) in bounded memory.

:func:`crack_lightning.scanning.crack_map.segment_photos` hands such a file here. The windows of
:func:`crack_lightning.runtime.windows.segment_photo` are read through :class:`~crack_lightning.io.tiff_windows.TiffWindows`;
the probability map is never held whole: its rows, as they are finished, go to a temporary file on disk, to the
band-wise crack finder (:mod:`crack_lightning.measure.components`) and to a max-pooled copy for the pictures. Each crack is
then measured in its own box, read back from the file: the same cracks and numbers as measuring the whole mask
(:mod:`crack_lightning.measure.bands`). Pixels without data (alpha 0, no-data value) get probability 0, so the edge of
a survey is not taken for a crack. The mask, overlay and thumbnail are drawn at most ``preview_side`` long.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from scipy import ndimage

from crack_lightning.io.images import MAX_PIXELS, check_pixels
from crack_lightning.io.preview import PooledMap, Preview
from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.io.tiff_windows import TiffWindows
from crack_lightning.measure.bands import measure_photo_cracks
from crack_lightning.measure.components import EIGHT_NEIGHBOURS, BandComponents, Component
from crack_lightning.measure.cracks import Crack
from crack_lightning.measure.measuring import Measuring
from crack_lightning.results.maps import CrackMap
from crack_lightning.runtime.windows import segment_photo

if TYPE_CHECKING:
    from crack_lightning.runtime.segmenter import Segmenter


class WindowedPhoto:
    """A :class:`TiffWindows` as :func:`segment_photo` reads a photo: ``photo[rows, columns]``, uint8 RGB."""

    windowed = True
    ndim, dtype = 3, np.dtype(np.uint8)

    def __init__(self, source: TiffWindows) -> None:
        self.source = source
        self.shape = (source.height, source.width, 3)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, columns = key
        return self.source.read(rows.start or 0, rows.stop, columns.start or 0, columns.stop)


class MapRows:
    """:func:`segment_photo`'s ``out``: takes the probability map's rows in order and passes them on, never whole."""

    dtype = np.dtype(np.uint8)

    def __init__(self, source: TiffWindows, level: int, file, pooled: PooledMap) -> None:
        self.source, self.level, self.file, self.pooled = source, level, file, pooled
        self.shape = (source.height, source.width)
        self.components = BandComponents(source.width)
        self.done = 0

    def __setitem__(self, rows: slice, values: np.ndarray) -> None:
        if rows.start != self.done:
            raise ValueError(f"map rows from {rows.start}: expected row {self.done} next")
        valid = self.source.valid(rows.start, rows.stop, 0, self.source.width)
        if valid is not None:
            values = np.where(valid, values, 0).astype(np.uint8)
        self.file.write(np.ascontiguousarray(values).tobytes())
        self.components.add(values >= self.level)
        self.pooled.add(values)
        self.done = rows.stop


def measure_from_file(
    path: str,
    width: int,
    height: int,
    level: int,
    found: list[Component],
    measuring: Measuring,
    photo: str,
    low_level: int | None = None,
) -> list[Crack]:
    """Each component of at least ``measuring.min_area`` pixels measured in its box (plus a pixel of background
    around it) of the probability map stored at ``path``, numbered 1, 2, ... as the whole-mask measure numbers them.
    With a ``low_level`` (hysteresis) ``found`` are the groups of pixels from it, and those without a pixel at
    ``level`` are left out: the cracks of :func:`~crack_lightning.measure.hysteresis.crack_mask`."""
    found_at = level if low_level is None else low_level
    cracks: list[Crack] = []
    with open(path, "rb", buffering=0) as stored:
        for c in found:
            if c.area < measuring.min_area:
                continue
            top, left = max(0, c.top - 1), max(0, c.left - 1)
            values = read_box(stored, width, top, min(height, c.bottom + 1), left, min(width, c.right + 1))
            labels, _ = ndimage.label(values >= found_at, structure=EIGHT_NEIGHBOURS)
            own = labels == labels[c.first[0] - top, c.first[1] - left]  # other cracks in its box left out
            if found_at < level and not (values[own] >= level).any():
                continue  # hysteresis: weak pixels that touch no crack pixel
            (crack,) = measure_photo_cracks(
                own, photo, measuring.mm_per_px, 0, measuring.width_limits_mm, measuring.width_classes
            )
            crack.crack, crack.x, crack.y = len(cracks) + 1, crack.x + left, crack.y + top
            cracks.append(crack)
    return cracks


def read_box(stored: BinaryIO, width: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Rows ``top:bottom``, columns ``left:right`` of a ``uint8`` map ``width`` wide stored row by row in the file
    ``stored``.
    Read row by row, not mapped: a memory map's pages count in the process's memory once touched, and the boxes of
    a map dense with cracks touch all of it (a gigapixel map: 1 GB)."""
    box = np.empty((bottom - top, right - left), np.uint8)
    for row in range(top, bottom):
        stored.seek(row * width + left)
        stored.readinto(memoryview(box[row - top]))
    return box


def segment_tiff(
    segmenter: Segmenter,
    name: str,
    path: str | os.PathLike,
    measuring: Measuring,
    level: int,
    window: int,
    overlap: int,
    batch_size: int = 1,
    max_pixels: int | None = MAX_PIXELS,
    preview_side: int = MAX_SIDE,
    low_level: int | None = None,
) -> CrackMap:
    """One orthomosaic's :class:`~crack_lightning.results.maps.CrackMap`: its ``probability`` and ``image``
    are copies at most ``preview_side`` long, its width and height its own; an unreadable or oversized file raises
    :class:`~crack_lightning.errors.CrackLightningError`."""
    with TiffWindows(path, keep_rows=2 * window) as source:
        check_pixels(path, source.width, source.height, max_pixels)
        preview = Preview(source.width, source.height, preview_side)
        pooled = PooledMap(source.width, source.height, preview_side)
        source.on_rows = preview.add
        # the map goes to disk, not to memory: a 1-gigapixel photo's is 1 GB
        with tempfile.NamedTemporaryFile(prefix="crack-map-", suffix=".u8") as stored:
            rows = MapRows(source, level if low_level is None else low_level, stored, pooled)
            segment_photo(WindowedPhoto(source), segmenter.probabilities, window, overlap, batch_size, rows)
            segmenter.release_memory()
            source.finish_rows()
            stored.flush()
            cracks = measure_from_file(
                stored.name,
                source.width,
                source.height,
                level,
                rows.components.components(),
                measuring,
                name,
                low_level,
            )
        return CrackMap(
            name,
            source.width,
            source.height,
            preview.picture(),
            probability=pooled.map,
            level=level,
            cracks=cracks,
            mm_per_px=measuring.mm_per_px,
            low_level=low_level,
        )
