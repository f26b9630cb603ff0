""":func:`crack_lightning.measure.cracks.measure_cracks` in bounded memory, for whole photos: the same cracks, numbers and
definitions (it is built from the same functions), computed in bands of rows.

``measure_cracks`` holds several float64 maps of the whole mask at once (distance transform, widths, their
temporaries): about 1.9 GB above the mask for a 50 MP photo. Here only the labels (int32) and the skeleton of the
whole mask are kept; the distance transform, the widths and the skeleton steps are computed a band of rows at a
time. A band's distance transform sees ``margin`` rows above and below it; a distance is exact when it is shorter
than the margin (the nearest non-crack pixel is then inside the band), and the band is computed again with a
wider margin where it is not. NumPy, SciPy and scikit-image only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from crack_lightning.measure.cracks import (
    DEFAULT_WIDTH_LIMITS_MM,
    WIDTH_CLASSES,
    Crack,
    crack_widths,
    skeleton_lengths,
    width_class,
)

EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)
BAND_ROWS = 256
MARGIN = 32


def band_widths(mask: np.ndarray, skeleton: np.ndarray, start: int, stop: int, margin: int = MARGIN) -> np.ndarray:
    """The crack width at each skeleton pixel of rows ``start:stop`` (0 elsewhere), as over the whole mask."""
    height = mask.shape[0]
    while True:
        top, bottom = max(0, start - margin), min(height, stop + margin)
        depth = ndimage.distance_transform_edt(mask[top:bottom])
        # crack_widths reads the distances of the rows around each skeleton pixel: rows start - 1 .. stop.
        near = depth[max(0, start - 1) - top : min(height, stop + 1) - top]
        if (top == 0 and bottom == height) or near.max(initial=0.0) < margin:
            return crack_widths(depth, skeleton[top:bottom])[start - top : stop - top]
        margin *= 2


def measure_photo_cracks(
    mask: np.ndarray,
    photo: str = "",
    mm_per_px: float | None = None,
    min_area: int = 0,
    width_limits_mm: Sequence[float] = DEFAULT_WIDTH_LIMITS_MM,
    width_classes: Sequence[str] = WIDTH_CLASSES,
    band_rows: int = BAND_ROWS,
    margin: int = MARGIN,
) -> list[Crack]:
    """Each crack of a boolean ``(H, W)`` mask, as :func:`~crack_lightning.measure.cracks.measure_cracks` measures them
    (8-connected components of at least ``min_area`` pixels, numbered in row-major order of their first pixel)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a crack mask has 2 dimensions (H, W), not {mask.ndim}")
    labels, count = ndimage.label(mask, structure=EIGHT_NEIGHBOURS, output=np.int32)
    if count == 0:
        return []
    # Each crack is thinned and measured on its own pixels only (no other crack touches it), so the small cracks
    # left out below change nothing of the others.
    skeleton = skeletonize(mask)
    bins = count + 1
    areas, points = np.zeros(bins, np.int64), np.zeros(bins, np.int64)
    lengths, width_sums, width_max = np.zeros(bins), np.zeros(bins), np.zeros(bins)
    for start in range(0, mask.shape[0], band_rows):
        stop = min(mask.shape[0], start + band_rows)
        areas += np.bincount(labels[start:stop].ravel(), minlength=bins)
        # A step between rows counts in the band of its upper pixel: rows start .. stop (inclusive) are measured,
        # less the steps along row stop, which are the next band's.
        lengths += skeleton_lengths(skeleton[start : stop + 1], labels[start : stop + 1], count)
        lengths -= skeleton_lengths(skeleton[stop : stop + 1], labels[stop : stop + 1], count)
        on = skeleton[start:stop]
        widths = band_widths(mask, skeleton, start, stop, margin)[on]
        owners = labels[start:stop][on]
        points += np.bincount(owners, minlength=bins)
        width_sums += np.bincount(owners, weights=widths, minlength=bins)
        np.maximum.at(width_max, owners, widths)
    mean_widths = width_sums / np.maximum(points, 1)
    scale = (lambda v: float(v) * mm_per_px) if mm_per_px is not None else (lambda v: None)
    cracks: list[Crack] = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        if areas[index] < min_area:
            continue
        cracks.append(Crack(
            photo=photo, crack=len(cracks) + 1, x=cols.start, y=rows.start, width=cols.stop - cols.start,
            height=rows.stop - rows.start, length_px=float(lengths[index]), mean_width_px=float(mean_widths[index]),
            max_width_px=float(width_max[index]), length_mm=scale(lengths[index]),
            mean_width_mm=scale(mean_widths[index]), max_width_mm=scale(width_max[index]),
            width_class=width_class(scale(width_max[index]), width_limits_mm, width_classes),
        ))
    return cracks
