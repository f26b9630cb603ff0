"""Measure cracks in a crack mask: each crack's box, skeleton length and width; a summary per photo; pixel scores.

Torch-free (numpy, scipy, scikit-image), so that measuring needs no model.

A crack is an 8-connected group of mask pixels. Its skeleton (``skimage.morphology.skeletonize``) loses its spurs,
end branches shorter than the crack's width where they join (:mod:`crack_lightning.measure.skeleton_graph`).

Length is the length of the skeleton along a smoothed path: each skeleton pixel between two neighbours moves to the
mean of itself and its neighbours a few times, and the straight steps between neighbours add up. A straight crack
of any angle measures its Euclidean length; 1 and sqrt(2) px steps read 8% long at 22.5 degrees and count every
zigzag of a ragged skeleton.

Width at a skeleton pixel is the area under the crack's probability profile along the normal to the crack
(:mod:`crack_lightning.measure.profile`): with a probability map, from the map itself, not from a mask at some
threshold (a soft or blurred edge keeps its area whatever the threshold); without one, the mask is the probability
(0 or 1), so a straight crack of ``w`` whole pixels measures ``w``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage
from skimage.measure import label
from skimage.morphology import skeletonize

from crack_lightning.measure.profile import as_probability, profile_widths, reach, skeleton_normals
from crack_lightning.measure.skeleton_graph import SkeletonGraph, pruned, smoothed_steps

DEFAULT_WIDTH_LIMITS_MM = (0.1, 0.3, 1.0)
HOLE_AREA = 64  # px: holes up to 8 x 8 px inside a crack are filled before measuring
WIDTH_CLASSES = ("hairline", "fine", "medium", "wide")
ODS_THRESHOLDS = np.round(np.arange(1, 100) / 100, 2)  # the fixed thresholds of ODS F1: 0.01 ... 0.99


def edge_depth(mask: np.ndarray) -> np.ndarray:
    """Each pixel's exact Euclidean distance to the nearest pixel outside ``mask`` (0 outside), float64: the half
    widths the skeleton is pruned by. OpenCV's exact transform, 7x faster than SciPy's on a photo's mask, the same
    distances to float32's precision."""
    import cv2  # imported here, as everywhere: the measuring module stays quick to import

    return cv2.distanceTransform(np.ascontiguousarray(mask, dtype=np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(
        np.float64
    )


@dataclass
class Crack:
    """One crack (a connected component of the mask). Box, length and widths in pixels; in mm with a scale."""

    photo: str
    crack: int  # 1, 2, ... in the order of the labelling (row-major by first pixel)
    x: int
    y: int
    width: int
    height: int
    length_px: float
    mean_width_px: float
    max_width_px: float
    length_mm: float | None
    mean_width_mm: float | None
    max_width_mm: float | None
    width_class: str  # from max_width_mm; "" without a scale


CRACK_FIELDS = tuple(f.name for f in fields(Crack))


@dataclass
class PhotoSummary:
    """A photo's cracks in short: their number, total length, mean width over every skeleton pixel, the widest."""

    photo: str
    cracks: int
    total_length_px: float
    mean_width_px: float  # 0 without cracks
    max_width_px: float
    widest_crack: int | None  # the Crack.crack number of the widest crack
    total_length_mm: float | None
    mean_width_mm: float | None
    max_width_mm: float | None


def skeleton_measures(
    skeleton: np.ndarray, depth: np.ndarray, probability: np.ndarray
) -> tuple[SkeletonGraph, np.ndarray, np.ndarray]:
    """The pruned skeleton's graph, its smoothed steps and each node's width, from the whole mask's ``skeleton``,
    ``depth`` (each pixel's distance to the mask's edge) and crack ``probability`` (float in [0, 1])."""
    graph = SkeletonGraph.of(skeleton)
    graph = graph.kept(pruned(graph, depth[graph.rows, graph.cols]))
    thin = np.zeros(skeleton.shape, dtype=bool)
    thin[graph.rows, graph.cols] = True
    normal_y, normal_x = skeleton_normals(thin, graph.rows, graph.cols)
    widths = profile_widths(
        probability,
        graph.rows.astype(np.float64),
        graph.cols.astype(np.float64),
        normal_y,
        normal_x,
        reach(depth[graph.rows, graph.cols]),
    )
    return graph, smoothed_steps(graph), widths


def fill_small_holes(mask: np.ndarray, max_area: int = HOLE_AREA, band_rows: int | None = None) -> np.ndarray:
    """``mask`` with its holes of at most ``max_area`` pixels filled, a band of ``band_rows`` rows at a time.

    A hole is a 4-connected group of non-crack pixels enclosed by crack pixels. A small one is the crack's interior
    that the mask missed, and the skeleton would loop around it (twice the length, half the width); concrete
    enclosed by cracks is far larger. A hole of ``max_area`` pixels spans at most that many rows, so a band sees
    each of its holes whole within ``max_area + 1`` rows above and below it."""
    import cv2

    mask = np.asarray(mask, dtype=bool)
    if max_area < 1:
        return mask
    height = mask.shape[0]
    band_rows = band_rows or height
    filled = mask.copy()
    for start in range(0, height, band_rows):
        stop = min(height, start + band_rows)
        top, bottom = max(0, start - max_area - 1), min(height, stop + max_area + 1)
        # OpenCV: 5x SciPy's labelling here, where the background is one huge group
        count, holes, stats, _ = cv2.connectedComponentsWithStats((~mask[top:bottom]).view(np.uint8), connectivity=4)
        if count == 1:
            continue
        small = stats[:, cv2.CC_STAT_AREA] <= max_area
        # a group touching the window's border may run on outside it (or is the photo's own border): no hole
        for edge in (holes[0], holes[-1], holes[:, 0], holes[:, -1]):
            small[edge] = False
        small[0] = False
        filled[start:stop] |= small[holes[start - top : stop - top]]
    return filled


def _scale(mm_per_px: float | None):
    # px -> mm, or None for every value when the photo has no scale
    return (lambda v: float(v) * mm_per_px) if mm_per_px is not None else (lambda v: None)


def width_class(
    width_mm: float | None, limits_mm: Sequence[float] = DEFAULT_WIDTH_LIMITS_MM, names: Sequence[str] = WIDTH_CLASSES
) -> str:
    """The class of a width: ``names[i]`` for the first limit it is below, the last name above all; "" for None."""
    if width_mm is None:
        return ""
    if len(names) != len(limits_mm) + 1:
        raise ValueError(f"{len(limits_mm)} width limits need {len(limits_mm) + 1} class names, not {len(names)}")
    return names[int(np.searchsorted(np.asarray(limits_mm), width_mm, side="right"))]


def measure_cracks(
    mask: np.ndarray,
    photo: str = "",
    mm_per_px: float | None = None,
    min_area: int = 0,
    width_limits_mm: Sequence[float] = DEFAULT_WIDTH_LIMITS_MM,
    width_classes: Sequence[str] = WIDTH_CLASSES,
    probability: np.ndarray | None = None,
    hole_area: int = HOLE_AREA,
) -> list[Crack]:
    """Each crack of a boolean ``(H, W)`` mask (8-connected components of at least ``min_area`` pixels, holes of
    up to ``hole_area`` pixels filled); widths from ``probability`` (``(H, W)``, ``uint8`` 0-255 or floats in
    [0, 1]) where given, else from the mask."""
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"a crack mask has 2 dimensions (H, W), not {mask.ndim}")
    mask = fill_small_holes(mask, hole_area)
    labels, count = label(mask, connectivity=2, return_num=True)
    if count == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    if min_area > 1:
        small = areas < min_area
        small[0] = False
        labels[small[labels]] = 0
        labels, count = label(labels > 0, connectivity=2, return_num=True)  # renumber 1..count
        if count == 0:
            return []
    crack = labels > 0
    probability = as_probability(crack if probability is None else probability)
    if probability.shape != mask.shape:
        raise ValueError(f"a probability map {probability.shape} for a mask {mask.shape}: pass the same size")
    # Skeletonise each crack within its own mask only: cracks never touch, so one call over the photo is the same.
    graph, steps, widths = skeleton_measures(skeletonize(crack), edge_depth(crack), probability)
    on = labels[graph.rows, graph.cols]
    lengths = np.bincount(on[graph.first], weights=steps, minlength=count + 1)
    points = np.bincount(on, minlength=count + 1)
    mean_widths = np.bincount(on, weights=widths, minlength=count + 1) / np.maximum(points, 1)
    max_widths = np.zeros(count + 1)
    np.maximum.at(max_widths, on, widths)
    scale = _scale(mm_per_px)
    cracks = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        cracks.append(
            Crack(
                photo=photo,
                crack=index,
                x=cols.start,
                y=rows.start,
                width=cols.stop - cols.start,
                height=rows.stop - rows.start,
                length_px=float(lengths[index]),
                mean_width_px=float(mean_widths[index]),
                max_width_px=float(max_widths[index]),
                length_mm=scale(lengths[index]),
                mean_width_mm=scale(mean_widths[index]),
                max_width_mm=scale(max_widths[index]),
                width_class=width_class(scale(max_widths[index]), width_limits_mm, width_classes),
            )
        )
    return cracks


def summarise(
    cracks: Sequence[Crack], photo: str = "", mm_per_px: float | None = None, own_mm: bool = False
) -> PhotoSummary:
    """A photo's summary from its cracks; the mean width weighs each crack by its length. Millimetres at
    ``mm_per_px``, or with ``own_mm`` from the cracks' own (measured through a plane, each at its own scale)."""
    total = sum(c.length_px for c in cracks)
    weights = [max(c.length_px, 1.0) for c in cracks]  # a crack of one skeleton pixel has length 0 but a width
    mean = float(np.average([c.mean_width_px for c in cracks], weights=weights)) if cracks else 0.0
    widest = max(cracks, key=lambda c: c.max_width_px, default=None)
    maximum = widest.max_width_px if widest else 0.0
    scale = _scale(mm_per_px)
    total_mm, mean_mm, max_mm = scale(total), scale(mean), scale(maximum)
    if own_mm:
        total_mm = float(sum(c.length_mm for c in cracks))
        mean_mm = float(np.average([c.mean_width_mm for c in cracks], weights=weights)) if cracks else 0.0
        max_mm = max((c.max_width_mm for c in cracks), default=0.0)
    return PhotoSummary(
        photo=photo,
        cracks=len(cracks),
        total_length_px=float(total),
        mean_width_px=mean,
        max_width_px=maximum,
        widest_crack=widest.crack if widest else None,
        total_length_mm=total_mm,
        mean_width_mm=mean_mm,
        max_width_mm=max_mm,
    )


# -- pixel scores of a probability map against a true mask -------------------------------------------------------


def disk(radius: int) -> np.ndarray:
    """The pixels within Euclidean ``radius`` of the centre, as a boolean footprint."""
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius**2


def pixel_counts(
    probability: np.ndarray, truth: np.ndarray, thresholds: np.ndarray = ODS_THRESHOLDS, tolerance: int = 0
) -> np.ndarray:
    """Counts ``(4, T)`` for each threshold ``t`` (a pixel is predicted crack when its probability >= t):
    predicted pixels with a true crack pixel within ``tolerance`` px, predicted pixels, true pixels with a predicted
    pixel within ``tolerance`` px, true pixels. Summed over photos, :func:`f1_scores` turns them into scores.

    ``probability``: ``(H, W)`` floats in [0, 1], or ``uint8`` 0-255 (read as value / 255).
    """
    p = np.asarray(probability)
    p = p.astype(np.float32) / 255 if p.dtype == np.uint8 else p.astype(np.float32, copy=False)
    truth = np.asarray(truth).astype(bool)
    thresholds = np.asarray(thresholds, dtype=np.float32)

    def predicted_at(values: np.ndarray) -> np.ndarray:
        # How many of ``values`` are >= each threshold: one sort-free pass however many thresholds there are.
        levels = np.searchsorted(thresholds, values.ravel(), side="right")  # thresholds passed by each value
        return np.bincount(levels, minlength=len(thresholds) + 1)[::-1].cumsum()[::-1][1:]

    if tolerance > 0:
        near_truth = ndimage.distance_transform_edt(~truth) <= tolerance if truth.any() else np.zeros_like(truth)
        near_prediction = ndimage.maximum_filter(p, footprint=disk(tolerance), mode="constant", cval=0.0)
    else:
        near_truth, near_prediction = truth, p
    return np.stack(
        [
            predicted_at(p[near_truth]),
            predicted_at(p),
            predicted_at(near_prediction[truth]),
            np.full(len(thresholds), truth.sum()),
        ]
    ).astype(np.int64)


def f1_scores(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(f1, precision, recall)`` at each threshold from :func:`pixel_counts` (0 where undefined)."""
    counts = np.asarray(counts, dtype=np.float64)
    precision = np.divide(counts[0], counts[1], out=np.zeros(counts.shape[1]), where=counts[1] > 0)
    recall = np.divide(counts[2], counts[3], out=np.zeros(counts.shape[1]), where=counts[3] > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return f1, precision, recall
