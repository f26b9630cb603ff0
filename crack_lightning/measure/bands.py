""":func:`crack_lightning.measure.cracks.measure_cracks` in bounded memory, for whole photos: the same cracks, numbers and
definitions (it is built from the same functions), computed in bands of rows.

``measure_cracks`` holds several float64 maps of the whole mask at once (distance transform, probability, their
temporaries): about 1.9 GB above the mask for a 50 MP photo. Here only the labels (int32), the skeleton of the
whole mask and the skeleton's graph (its pixels only) are kept; the distance transform, the normals and the
probability profiles are computed a band of rows at a time. A band's distance transform sees ``margin`` rows above
and below it; a distance is exact when it is shorter than the margin (the nearest non-crack pixel is then inside
the band), and the band is computed again with a wider margin where it is not. Spurs and lengths need the whole
skeleton's graph, which holds only its pixels. NumPy, SciPy and scikit-image only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from crack_lightning.measure.cracks import (
    DEFAULT_WIDTH_LIMITS_MM,
    HOLE_AREA,
    WIDTH_CLASSES,
    Crack,
    edge_depth,
    fill_small_holes,
    width_class,
)
from crack_lightning.measure.plane import Plane, crack_millimetres
from crack_lightning.measure.profile import NORMAL_RADIUS, as_probability, profile_widths, reach, skeleton_normals
from crack_lightning.measure.skeleton_graph import SkeletonGraph, pruned, smoothed_positions, smoothed_steps

EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)
BAND_ROWS = 256
MARGIN = 32


def band_depths(
    mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, start: int, stop: int, margin: int = MARGIN
) -> np.ndarray:
    """The distance to the mask's edge at pixels ``(rows, cols)`` of rows ``start:stop``, as over the whole mask."""
    height = mask.shape[0]
    while True:
        top, bottom = max(0, start - margin), min(height, stop + margin)
        depth = edge_depth(mask[top:bottom])
        near = depth[start - top : stop - top]
        if (top == 0 and bottom == height) or near.max(initial=0.0) < margin:
            return depth[rows - top, cols]
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
    probability: np.ndarray | None = None,
    hole_area: int = HOLE_AREA,
    plane: Plane | None = None,
) -> list[Crack]:
    """Each crack of a boolean ``(H, W)`` mask, as :func:`~crack_lightning.measure.cracks.measure_cracks` measures them
    (8-connected components of at least ``min_area`` pixels, numbered in row-major order of their first pixel);
    widths from ``probability`` (``uint8`` or float ``(H, W)``, e.g. a ``np.memmap``) where given, else the mask.
    Millimetres from ``mm_per_px``, or measured on ``plane`` (:mod:`crack_lightning.measure.plane`) where given."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a crack mask has 2 dimensions (H, W), not {mask.ndim}")
    mask = fill_small_holes(mask, hole_area, band_rows)
    labels, count = ndimage.label(mask, structure=EIGHT_NEIGHBOURS, output=np.int32)
    if count == 0:
        return []
    if probability is not None and np.shape(probability) != mask.shape:
        raise ValueError(f"a probability map {np.shape(probability)} for a mask {mask.shape}: pass the same size")
    bins = count + 1
    areas = np.zeros(bins, np.int64)
    for start in range(0, mask.shape[0], band_rows):
        areas += np.bincount(labels[start : start + band_rows].ravel(), minlength=bins)
    kept = areas >= min_area
    kept[0] = False
    # Each crack is thinned and measured on its own pixels only (no other crack touches it), so the small cracks
    # left out change nothing of the others.
    graph = SkeletonGraph.of(skeletonize(mask))
    height = mask.shape[0]
    depth = np.zeros(len(graph))
    bounds = np.searchsorted(graph.rows, np.arange(0, height + band_rows, band_rows))  # the nodes of each band
    for band, start in enumerate(range(0, height, band_rows)):
        nodes = slice(bounds[band], bounds[band + 1])
        depth[nodes] = band_depths(
            mask, graph.rows[nodes], graph.cols[nodes], start, min(height, start + band_rows), margin
        )
    keep = pruned(graph, depth) & kept[labels[graph.rows, graph.cols]]  # small cracks must not turn the normals
    graph, depth = graph.kept(keep), depth[keep]
    owners = labels[graph.rows, graph.cols]
    lengths = np.bincount(owners[graph.first], weights=smoothed_steps(graph), minlength=bins)
    widths, normal_y, normal_x = np.zeros(len(graph)), np.zeros(len(graph)), np.zeros(len(graph))
    bounds = np.searchsorted(graph.rows, np.arange(0, height + band_rows, band_rows))
    for band, start in enumerate(range(0, height, band_rows)):
        nodes = slice(bounds[band], bounds[band + 1])
        if bounds[band] == bounds[band + 1]:
            continue
        rows, cols = graph.rows[nodes], graph.cols[nodes]
        # The rows the normals and the profiles read: NORMAL_RADIUS and the farthest reach above and below.
        reaches = reach(depth[nodes])
        extra = max(NORMAL_RADIUS, int(np.ceil(reaches.max())) + 2)
        top, bottom = max(0, start - extra), min(height, start + band_rows + extra)
        thin = np.zeros((bottom - top, mask.shape[1]), dtype=bool)
        inside = slice(*np.searchsorted(graph.rows, [top, bottom]))
        thin[graph.rows[inside] - top, graph.cols[inside]] = True
        normal_y[nodes], normal_x[nodes] = skeleton_normals(thin, rows - top, cols)
        values = kept[labels[top:bottom]] if probability is None else probability[top:bottom]
        widths[nodes] = profile_widths(
            as_probability(values),
            (rows - top).astype(np.float64),
            cols.astype(np.float64),
            normal_y[nodes],
            normal_x[nodes],
            reaches,
        )
    points = np.bincount(owners, minlength=bins)
    mean_widths = np.bincount(owners, weights=widths, minlength=bins) / np.maximum(points, 1)
    width_max = np.zeros(bins)
    np.maximum.at(width_max, owners, widths)
    mm = [v * mm_per_px for v in (lengths, mean_widths, width_max)] if mm_per_px is not None else [[None] * bins] * 3
    if plane is not None:
        mm = crack_millimetres(
            plane,
            graph.rows,
            graph.cols,
            smoothed_positions(graph),
            graph.first,
            graph.second,
            owners,
            widths,
            normal_y,
            normal_x,
            bins,
        )
    cracks: list[Crack] = []
    for index, (rows, cols) in enumerate(ndimage.find_objects(labels), start=1):
        if not kept[index]:
            continue
        length_mm, mean_mm, max_mm = (None if v[index] is None else float(v[index]) for v in mm)
        cracks.append(
            Crack(
                photo=photo,
                crack=len(cracks) + 1,
                x=cols.start,
                y=rows.start,
                width=cols.stop - cols.start,
                height=rows.stop - rows.start,
                length_px=float(lengths[index]),
                mean_width_px=float(mean_widths[index]),
                max_width_px=float(width_max[index]),
                length_mm=length_mm,
                mean_width_mm=mean_mm,
                max_width_mm=max_mm,
                width_class=width_class(max_mm, width_limits_mm, width_classes),
            )
        )
    return cracks
