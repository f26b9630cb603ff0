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
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import MAX_PIXELS, ImageInput, as_rgb
from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.io.threads import bounded_map
from crack_lightning.io.tiff_windows import Orthomosaic, windowed_tiff
from crack_lightning.measure.hysteresis import crack_mask, hysteresis_on
from crack_lightning.measure.measuring import Measuring
from crack_lightning.results.maps import CrackMap
from crack_lightning.runtime.segmenter import DEFAULT_WINDOWS_PER_BATCH, Segmenter, crack_level
from crack_lightning.scale.photo_scale import PhotoScale, photo_scale
from crack_lightning.scanning.segment_windows import segment_tiff

# Photos up to this size are measured while their pictures are drawn (a 5.6 MP photo's scan 0.2 s sooner on 2 cores);
# larger ones one after the other, as both need memory in proportion to the photo (a 50 MP photo: +200 MB at once).
BACKGROUND_MAX_PIXELS = 30_000_000


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
    low_threshold: float | None = None,
    background: bool = False,
) -> Iterator[CrackMap]:
    """Segment and measure each ``(name, photo)``, in input order; an unreadable photo comes with its ``error``.
    ``threshold``: the crack probability from which a pixel is crack (default: the model's). ``workers`` > 0: photos
    decode that many ahead in threads (for a GPU, which would otherwise wait for each decode). Unless ``measuring``
    has a scale, each photo's is found (:func:`~crack_lightning.scale.photo_scale.photo_scale`: a marker card, a
    GeoTIFF's pixel size, drone metadata) and a card's area is no crack. A tiled or very large TIFF (an orthomosaic)
    is read window by window (:mod:`crack_lightning.scanning.segment_windows`); its pictures are then at most
    ``preview_side`` long. ``low_threshold`` below ``threshold``: also the pixels down to it that touch crack pixels
    (hysteresis, :mod:`crack_lightning.measure.hysteresis`); default none. ``background``: a photo's cracks are
    measured in a thread, its result comes as soon as its map is made (pictures can be drawn meanwhile), and its
    ``finish()`` waits for them."""
    level = crack_level(segmenter.threshold if threshold is None else threshold)
    low_level = None if low_threshold is None else crack_level(low_threshold)
    low_level = low_level if hysteresis_on(level, low_level) else None
    how = (measuring.mm_per_px, measuring.scale, measuring.marker_mm)

    def load(item: tuple[str, ImageInput]) -> tuple[str, np.ndarray | str | Orthomosaic, PhotoScale]:
        name, photo = item
        if isinstance(photo, (str, os.PathLike)) and windowed_tiff(photo):
            # read window by window below, never decoded whole: no marker looked for
            return name, Orthomosaic(photo), photo_scale(photo, None, *how)
        try:
            image = as_rgb(photo, max_pixels)
        except CrackLightningError as err:
            return name, str(err), PhotoScale()
        return name, image, photo_scale(photo, image, *how)

    with (
        ThreadPoolExecutor(max(1, workers)) as pool,
        ThreadPoolExecutor(1, "crack_lightning-measuring") if background else nullcontext() as measuring_pool,
    ):
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
            low_level,
            measuring_pool,
        )


def measured(
    segmenter: Segmenter,
    loaded: Iterable[tuple[str, np.ndarray | str | Orthomosaic, PhotoScale]],
    measuring: Measuring,
    level: int,
    window: int | None,
    overlap: int | None,
    batch_size: int,
    max_pixels: int | None = MAX_PIXELS,
    preview_side: int = MAX_SIDE,
    low_level: int | None = None,
    measuring_pool: Executor | None = None,
) -> Iterator[CrackMap]:
    """A :class:`CrackMap` for each decoded ``(name, image or error or orthomosaic, its scale)``; its cracks measured
    in ``measuring_pool`` where given (see :meth:`~crack_lightning.results.photo_result.PhotoResult.finish`)."""
    for name, image, scale in loaded:
        own = replace(measuring, mm_per_px=scale.mm_per_px if scale.plane is None else None)
        if isinstance(image, Orthomosaic):
            try:
                result = segment_tiff(
                    segmenter,
                    name,
                    image.path,
                    own,
                    level,
                    *segmenter.windows(window, overlap),
                    batch_size,
                    max_pixels,
                    preview_side,
                    low_level,
                )
                yield replace(result, scale=scale)
            except CrackLightningError as err:
                yield CrackMap(name, error=str(err))
            continue
        if isinstance(image, str):
            yield CrackMap(name, error=image)
            continue
        probability = segmenter.probability_map(image, window, overlap, batch_size)
        scale.clear_cards(probability)  # a card's edges and lettering are no cracks
        height, width = probability.shape
        result = CrackMap(
            name,
            width,
            height,
            image,
            probability=probability,
            level=level,
            mm_per_px=scale.mm_per_px,
            scale=scale,
            low_level=low_level,
        )
        mask = crack_mask(probability, level, low_level)
        if measuring_pool is None or probability.size > BACKGROUND_MAX_PIXELS:
            result.cracks = own.measure(mask, name, probability, scale.plane)
        else:
            result.pending = measuring_pool.submit(cracks_field, own, mask, name, probability, scale.plane)
        del mask
        yield result


def cracks_field(measuring: Measuring, *args: Any) -> dict[str, list]:
    """``measuring.measure(*args)`` as the field values a :class:`CrackMap` gets from its pending work."""
    return {"cracks": measuring.measure(*args)}
