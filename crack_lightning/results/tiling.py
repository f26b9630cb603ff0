"""Tiling geometry shared by ``scan`` and ``tiles``: where the tiles of a photo lie, the window the network sees
around each, and the per-pixel map of tile probabilities. NumPy only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

GROUP_PATTERN = r"^(.*)_x\d+_y\d+\.jpg$"  # --data.group_pattern that keeps the tiles of a photo together
Box = tuple[int, int, int, int]  # x, y, width, height in the photo's pixels


def tile_positions(length: int, tile: int, stride: int) -> list[int]:
    """Start of each tile along one side: every ``stride`` pixels, the last one shifted in to end at the edge."""
    if length <= tile:
        return [0]
    positions = list(range(0, length - tile + 1, stride))
    if positions[-1] + tile < length:
        positions.append(length - tile)
    return positions


def tile_boxes(width: int, height: int, tile: int, stride: int) -> list[Box]:
    """Tiles covering the whole photo, row by row; a side shorter than ``tile`` is covered by one tile as long as it."""
    w, h = min(tile, width), min(tile, height)
    return [(x, y, w, h) for y in tile_positions(height, tile, stride) for x in tile_positions(width, tile, stride)]


def context_window(box: Box, margin: int, width: int, height: int) -> Box:
    """The tile grown by ``margin`` pixels on every side, shifted (not cut) to stay inside the photo."""
    x, y, w, h = box
    w2, h2 = min(w + 2 * margin, width), min(h + 2 * margin, height)
    x2 = min(max(0, x - margin), width - w2)
    y2 = min(max(0, y - margin), height - h2)
    return x2, y2, w2, h2


def _coverage(starts: Sequence[int], tile: int, length: int, samples: int) -> np.ndarray:
    """``(samples, tiles)`` weights: which tiles cover each output pixel's centre (pixel centres scaled to the photo),
    each row summing to 1."""
    pixels = np.minimum(np.floor((np.arange(samples) + 0.5) * (length / samples)), length - 1)[:, None]
    starts_a = np.asarray(starts)[None, :]
    covered = ((pixels >= starts_a) & (pixels < starts_a + tile)).astype(np.float32)
    return covered / covered.sum(axis=1, keepdims=True)


def probability_rows(
    boxes: Sequence[Box],
    crack_probability: np.ndarray,
    width: int,
    height: int,
    size: tuple[int, int] | None = None,
    block: int = 256,
) -> Iterator[np.ndarray]:
    """The per-pixel crack probability map (float32) in blocks of rows: the mean over the tiles covering each pixel.

    The tiles form a grid, so the mean separates into a row and a column average: two small matrices and one
    product per block, with no per-pixel count buffer. ``size`` ``(height, width)`` samples the map at another
    resolution (pixel centres scaled), for an overlay of a huge photo.
    """
    xs = sorted({b[0] for b in boxes})
    ys = sorted({b[1] for b in boxes})
    w, h = boxes[0][2], boxes[0][3]
    grid = np.zeros((len(ys), len(xs)), np.float32)
    column, row = {x: i for i, x in enumerate(xs)}, {y: j for j, y in enumerate(ys)}
    for (x, y, _, _), p in zip(boxes, np.asarray(crack_probability, np.float32).tolist()):
        grid[row[y], column[x]] = p
    out_height, out_width = size or (height, width)
    right = grid @ _coverage(xs, w, width, out_width).T  # (rows of tiles, out_width)
    rows = _coverage(ys, h, height, out_height)
    for start in range(0, out_height, block):
        yield rows[start : start + block] @ right


def probability_map(
    boxes: Sequence[Box], crack_probability: np.ndarray, width: int, height: int, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Per-pixel crack probability ``(height, width)`` (or ``size``), float32: the mean over the tiles covering each
    pixel."""
    return np.concatenate(list(probability_rows(boxes, crack_probability, width, height, size)))
