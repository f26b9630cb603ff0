"""Windowed inference: a probability map of a photo of any size from a network that sees windows of it.

Torch-free (numpy only): the network is any callable ``run(batch) -> probabilities``, where ``batch`` is ``uint8``
``(N, 3, h, w)`` and the answer ``(N, 1, h, w)`` floats in [0, 1] (a PyTorch network, ONNX Runtime, OpenVINO...).

Windows overlap; each window's answer is weighted by a cosine ramp over the overlap on every side it shares with a
neighbour (not on the photo's own edges), so the seams blend and each pixel's value is the weighted mean of the
windows that cover it. The map is built one row of windows at a time: only a band of one window's height is held
in float32, and the finished rows are written as ``uint8`` (0-255), so a 50 MP photo needs about 50 MB for the
answer and a few tens of MB besides, never a float32 map of the whole photo.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from crack_lightning.runtime.exported import mirrored_mean

Runner = Callable[[np.ndarray], np.ndarray]
DEFAULT_WINDOW = 512
DEFAULT_OVERLAP = 64


def window_tiling(length: int, window: int, overlap: int, multiple: int = 32) -> tuple[list[int], int]:
    """``(starts, size)``: the fewest windows of at most ``window`` px that cover ``[0, length)`` with neighbours
    overlapping by at least ``overlap`` px, all of one ``size`` (rounded up to a ``multiple`` of px, the network's
    stride, where the window allows) and spread evenly. Windows of a fixed size at fixed steps would leave the last
    one overlapping its neighbour by up to a whole window: computed twice for nothing. One window (the whole length)
    when ``length <= window``."""
    if window <= overlap or overlap < 0:
        raise ValueError(f"window ({window}) must be larger than overlap ({overlap}) and overlap at least 0")
    if length <= window:
        return [0], length
    count = math.ceil((length - overlap) / (window - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    size = min(window, length, math.ceil(size / multiple) * multiple)
    # Each step is at most size - overlap (count * size >= length + (count - 1) * overlap), rounded starts too.
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    return starts, size


def ramp_weights(size: int, ramp_start: int, ramp_end: int) -> np.ndarray:
    """Weights ``(size,)``: a cosine rise over the first ``ramp_start`` px, 1 in between, a fall over the last
    ``ramp_end`` px. Every weight is above 0, so a pixel covered once keeps its window's value."""
    weights = np.ones(size, dtype=np.float64)
    for ramp, side in ((ramp_start, slice(None)), (ramp_end, slice(None, None, -1))):
        if ramp > 0:
            ramp = min(ramp, size)
            rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
            weights[side][:ramp] = np.minimum(weights[side][:ramp], rise)
    return weights


def axis_weights(starts: list[int], size: int) -> list[np.ndarray]:
    """Each window's weights along one axis (windows of ``size`` px): ramps only over the parts it shares with its
    neighbours."""
    weights = []
    for i, start in enumerate(starts):
        before = starts[i - 1] + size - start if i > 0 else 0  # overlap with the previous window
        after = start + size - starts[i + 1] if i + 1 < len(starts) else 0
        weights.append(ramp_weights(size, before, after))
    return weights


def flip_averaged(run: Runner) -> Runner:
    """``run`` made to answer the mean over the window as it is and mirrored left-right, top-bottom and both
    (test-time augmentation ``flips``: 4x the compute)."""
    return lambda batch: mirrored_mean(run, batch, "flips", spatial=True)


def segment_photo(
    photo: np.ndarray,
    run: Runner,
    window: int = DEFAULT_WINDOW,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 4,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The crack probability map of ``photo`` (``uint8`` ``(H, W, 3)``) as ``uint8`` ``(H, W)``, 255 = probability 1.

    ``run`` sees batches of at most ``batch_size`` windows of at most ``window`` px, overlapping by at least
    ``overlap`` px (:func:`window_tiling`). ``out``: where to write the map (e.g. a ``np.memmap``, or an
    object that takes its rows in order); a new array by default. ``photo`` may be any object with ``shape``,
    ``dtype``, ``ndim``, ``windowed = True`` and ``photo[rows, columns]`` giving arrays.
    """
    if not getattr(photo, "windowed", False):  # a photo read window by window (an orthomosaic) is not an array
        photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"a photo is uint8 (H, W, 3), not {photo.dtype} {photo.shape}")
    height, width = photo.shape[:2]
    if out is None:
        out = np.empty((height, width), dtype=np.uint8)
    elif out.shape != (height, width) or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 {(height, width)}, not {out.dtype} {out.shape}")
    (ys, h), (xs, w) = window_tiling(height, window, overlap), window_tiling(width, window, overlap)
    wy, wx = axis_weights(ys, h), axis_weights(xs, w)
    # The weights are a grid (every y-start with every x-start), so each pixel's total weight is a product of two
    # one-dimensional sums: no weight map of the photo is needed.
    total_y, total_x = np.zeros(height), np.zeros(width)
    for start, weight in zip(ys, wy):
        total_y[start : start + h] += weight
    for start, weight in zip(xs, wx):
        total_x[start : start + w] += weight
    # float32 from here: the band's arithmetic makes no float64 temporaries of a band's size (70 MB at 50 MP)
    wy, wx = [v.astype(np.float32) for v in wy], [v.astype(np.float32) for v in wx]
    total_y, total_x = total_y.astype(np.float32), total_x.astype(np.float32)
    band = np.zeros((h, width), dtype=np.float32)  # rows top .. top + h of the weighted sum
    top = 0
    for row, y in enumerate(ys):
        for first in range(0, len(xs), batch_size):
            chosen = xs[first : first + batch_size]
            batch = np.stack([photo[y : y + h, x : x + w].transpose(2, 0, 1) for x in chosen])
            probabilities = np.asarray(run(np.ascontiguousarray(batch)), dtype=np.float32)
            if probabilities.shape != (len(chosen), 1, h, w):
                raise ValueError(f"run answered {probabilities.shape} for windows {batch.shape}; expected (N, 1, h, w)")
            for k, x in enumerate(chosen):
                weighted = probabilities[k, 0] * wy[row][:, None]  # a new array: the runtime's may be read-only
                weighted *= wx[first + k]
                band[y - top : y - top + h, x : x + w] += weighted
        # Rows above the next window row are final: write them out and slide the band down.
        done = ys[row + 1] if row + 1 < len(ys) else height
        rows = slice(top, done)
        values = band[: done - top]  # in place: these rows are finished
        values /= total_y[rows, None]
        values /= total_x
        values *= 255
        np.rint(values, out=values)
        np.clip(values, 0, 255, out=values)
        out[rows] = values.astype(np.uint8)
        kept = top + h - done
        band[:kept] = band[done - top :]
        band[kept:] = 0
        top = done
    return out
