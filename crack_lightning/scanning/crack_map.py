"""A segmenter's scan: each photo's crack probability map and its cracks measured (a
:class:`~crack_lightning.results.maps.CrackMap` per photo). NumPy, PIL, SciPy and scikit-image only; the model is
any segmenter with ``probability_map`` and ``threshold`` (:class:`crack_lightning.runtime.segmenter.Segmenter`).

A pixel is crack where its 8-bit probability reaches the threshold's (:func:`~crack_lightning.runtime.segmenter.crack_level`); a crack is an 8-connected
group of at least ``min_area`` crack pixels, measured as :mod:`crack_lightning.measure.cracks` defines it (skeleton
length, spurs pruned; width from the probability profile across the crack). Memory stays bounded on large photos: the map is built
a band of windows at a time and measured in bands of rows (:mod:`crack_lightning.measure.bands`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.georef import read_georeference
from crack_lightning.io.images import MAX_PIXELS, ImageInput, as_rgb
from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.io.threads import bounded_map
from crack_lightning.io.tiff_windows import Orthomosaic, windowed_tiff
from crack_lightning.measure.measuring import Measuring
from crack_lightning.results.maps import CrackMap
from crack_lightning.runtime.segmenter import DEFAULT_WINDOWS_PER_BATCH, Segmenter, crack_level
from crack_lightning.scanning.segment_windows import segment_tiff


def segment_photos(
    segmenter: Segmenter,
    photos: Iterable[tuple[str, ImageInput]],
    measuring: Measuring = Measuring(),
    threshold: float | None = None,
    window: int | None = None,
    overlap: int | None = None,
    batch_size: int = DEFAULT_WINDOWS_PER_BATCH,
    max_pixels: int | None = MAX_PIXELS,
    workers: int = 0,
    preview_side: int = MAX_SIDE,
) -> Iterator[CrackMap]:
    """Segment and measure each ``(name, photo)``, in input order; an unreadable photo comes with its ``error``.
    ``threshold``: the crack probability from which a pixel is crack (default: the model's). ``workers`` > 0: photos
    decode that many ahead in threads (for a GPU, which would otherwise wait for each decode). A GeoTIFF's pixel size
    is its scale unless ``measuring`` has one. A tiled or very large TIFF (an orthomosaic) is read window by window
    (:mod:`crack_lightning.scanning.segment_windows`); its pictures are then at most ``preview_side`` long."""
    level = crack_level(segmenter.threshold if threshold is None else threshold)

    def load(item: tuple[str, ImageInput]) -> tuple[str, np.ndarray | str | Orthomosaic, Measuring]:
        name, photo = item
        own = measuring
        if measuring.mm_per_px is None and isinstance(photo, (str, os.PathLike)):
            georef = read_georeference(photo)
            if georef is not None and georef.mm_per_px:
                own = replace(measuring, mm_per_px=georef.mm_per_px)
        if isinstance(photo, (str, os.PathLike)) and windowed_tiff(photo):
            return name, Orthomosaic(photo), own  # read window by window below, never decoded whole
        try:
            return name, as_rgb(photo, max_pixels), own
        except CrackLightningError as err:
            return name, str(err), own

    with ThreadPoolExecutor(max(1, workers)) as pool:
        yield from measured(
            segmenter,
            map(load, photos) if workers <= 0 else bounded_map(pool, load, photos, workers),
            measuring,
            level,
            window,
            overlap,
            batch_size,
            max_pixels,
            preview_side,
        )


def measured(
    segmenter: Segmenter,
    loaded: Iterable[tuple[str, np.ndarray | str | Orthomosaic, Measuring]],
    measuring: Measuring,
    level: int,
    window: int | None,
    overlap: int | None,
    batch_size: int,
    max_pixels: int | None = MAX_PIXELS,
    preview_side: int = MAX_SIDE,
) -> Iterator[CrackMap]:
    """A :class:`CrackMap` for each decoded ``(name, image or error or orthomosaic, its measuring)``."""
    for name, image, own in loaded:
        if isinstance(image, Orthomosaic):
            try:
                yield segment_tiff(
                    segmenter,
                    name,
                    image.path,
                    own,
                    level,
                    *segmenter.windows(window, overlap),
                    batch_size,
                    max_pixels,
                    preview_side,
                )
            except CrackLightningError as err:
                yield CrackMap(name, error=str(err))
            continue
        if isinstance(image, str):
            yield CrackMap(name, error=image)
            continue
        probability = segmenter.probability_map(image, window, overlap, batch_size)
        height, width = probability.shape
        yield CrackMap(
            name,
            width,
            height,
            image,
            probability=probability,
            level=level,
            cracks=own.measure(probability >= level, name, probability),
            mm_per_px=own.mm_per_px,
        )
