"""The classifier's scan of an orthomosaic (a tiled or very large TIFF), read a band of tile rows at a time.

:func:`crack_lightning.scanning.tile_map.scan_photos` hands such a file here instead of decoding it whole: each row of tiles is
cut from one band of the photo (the tiles' rows plus their context), read through
:class:`~crack_lightning.io.tiff_windows.TiffWindows`, so peak memory is a band and one batch, whatever the photo's
size. The network sees exactly the pixels it would see in the decoded photo, so the tiles' probabilities are the same.

Tiles with less than half their pixels holding data (alpha 0 or the GDAL no-data value: the ragged edge of a drone
survey) are not classified: they are marked ``no_data``, written as such in ``tiles.csv`` and shown as a checkerboard
in the overlay. Classifying them would waste time and see a crack in the edge between picture and empty.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import groupby
from typing import TYPE_CHECKING

import numpy as np

from crack_lightning.io.images import MAX_PIXELS, check_pixels, resize
from crack_lightning.io.preview import Preview
from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.io.tiff_windows import TiffWindows
from crack_lightning.results.tiling import context_window, tile_boxes

if TYPE_CHECKING:
    from crack_lightning.results.maps import TileMap
    from crack_lightning.runtime.classifier import Classifier

MIN_DATA_SHARE = 0.5  # a tile with less of its pixels holding data is "no data"


def scan_tiff(
    classifier: Classifier,
    scan: TileMap,
    path: str | os.PathLike,
    tile: int,
    stride: int,
    margin: int,
    batch_size: int = 32,
    max_pixels: int | None = MAX_PIXELS,
    preview_side: int | None = MAX_SIDE,
    classify: Callable[[np.ndarray], np.ndarray] | None = None,
) -> None:
    """Fill ``scan`` (its size, tiles, probabilities, ``no_data``; ``image`` a preview at most ``preview_side``
    long, or None) from the TIFF at ``path``; ``margin``: context pixels around each tile. An unreadable or
    oversized file raises :class:`~crack_lightning.errors.CrackLightningError` before any tile runs."""
    classify = classify or classifier.probabilities
    size = classifier.image_size
    with TiffWindows(path) as source:
        check_pixels(path, source.width, source.height, max_pixels)
        width, height = source.width, source.height
        preview = Preview(width, height, preview_side) if preview_side else None
        if preview is not None:
            source.on_rows = preview.add  # every decoded row feeds the preview once, in order
        scan.width, scan.height = width, height
        scan.boxes = tile_boxes(width, height, tile, stride)
        scan.probabilities = np.zeros((len(scan.boxes), len(classifier.class_names)), np.float32)
        scan.no_data = np.zeros(len(scan.boxes), bool)
        waiting: list[int] = []  # indices of the tiles whose windows are in ``crops``
        crops: list[np.ndarray] = []

        def run() -> None:
            if waiting:
                scan.probabilities[waiting] = classify(np.stack(crops).transpose(0, 3, 1, 2))
            waiting.clear()
            crops.clear()

        index = 0
        for _, row in groupby(scan.boxes, key=lambda box: box[1]):
            row = list(row)
            windows = [context_window(box, margin, width, height) for box in row]
            top, bottom = min(w[1] for w in windows), max(w[1] + w[3] for w in windows)
            band = source.read(top, bottom, 0, width)
            valid = source.valid(top, bottom, 0, width)
            for (x, y, w, h), (wx, wy, ww, wh) in zip(row, windows):
                if valid is not None and valid[y - top : y - top + h, x : x + w].mean() < MIN_DATA_SHARE:
                    scan.no_data[index] = True
                else:
                    waiting.append(index)
                    crops.append(resize(band[wy - top : wy - top + wh, wx : wx + ww], size))
                    if len(waiting) == batch_size:
                        run()
                index += 1
            del band, valid
        run()
        if preview is not None:
            source.finish_rows()
    scan.classified = len(scan.boxes)
    scan.image = preview.picture() if preview is not None else None
