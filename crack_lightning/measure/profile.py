"""A crack's width from its probability profile across it. Torch-free (numpy, scipy).

At each skeleton pixel the crack probability is sampled along the normal to the crack, every ``STEP`` px (bilinear),
and integrated: the width is the area under the profile, ``sum(p) * STEP``. A mask is the probability 0 or 1, so
a straight crack of ``w`` whole pixels measures ``w``; a crack blurred by any point spread function keeps its area,
so it still measures its true width, where a thresholded mask reads it narrower or wider with the threshold.

- **Normal**: perpendicular to the skeleton's direction there, the main axis of the skeleton pixels within
  ``NORMAL_RADIUS`` px (their second moments).
- **Reach**: outward from the centre on each side, up to ``reach = 1.5 d + 3`` px (``d``: the pixel's distance to
  the mask's edge; 3 px for the soft edge of a blurred crack), and no further than the crack: it stops where the
  probability drops to ``FLOOR``, or rises ``RISE`` above its lowest value so far once that is below half its peak
  (a second crack beside it; inside a wide crack the probability may dip and recover).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

STEP = 0.5  # px between samples along the normal
NORMAL_RADIUS = 4  # px: the skeleton's direction from the pixels within it
FLOOR = 0.02  # a background probability: the profile has ended
RISE = 0.1  # a rise this far above the profile's lowest point so far is another crack
HALF = 0.5  # ... once the profile has fallen below this fraction of its peak
REACH = (1.5, 3.0)  # reach = 1.5 d + 3 px
MAX_REACH = 64  # px on each side of the skeleton
POINTS_AT_ONCE = 4096  # skeleton pixels sampled together (memory: points x samples x 8 bytes)


def reach(depth: np.ndarray) -> np.ndarray:
    """How far along the normal, on each side, the profile may run, from the distance ``depth`` to the mask's edge."""
    return np.minimum(REACH[0] * depth + REACH[1], MAX_REACH)


def skeleton_normals(skeleton: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals ``(ny, nx)`` at pixels ``(rows, cols)`` of a boolean ``skeleton`` (a band of rows is enough when
    it holds ``NORMAL_RADIUS`` rows above and below them)."""
    # The second moments of the skeleton pixels in a disc around each point, gathered at the points only: a skeleton
    # is sparse, so this is far less work than correlating the whole image with the three moment kernels.
    r = NORMAL_RADIUS
    padded = np.pad(np.asarray(skeleton, dtype=bool), r)
    yy, xx, xy = (np.zeros(len(rows), dtype=np.float32) for _ in range(3))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r and (dy or dx):
                on = padded[rows + r + dy, cols + r + dx]
                yy += on * float(dy * dy)
                xx += on * float(dx * dx)
                xy += on * float(dx * dy)
    direction = 0.5 * np.arctan2(2 * xy, xx - yy)  # the skeleton's main axis
    return np.cos(direction), -np.sin(direction)


def profile_widths(
    probability: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    normal_y: np.ndarray,
    normal_x: np.ndarray,
    reaches: np.ndarray,
) -> np.ndarray:
    """The area under the probability profile along the normal through each point (see the module docstring).

    ``probability``: float ``(H, W)`` in [0, 1]; points ``(rows, cols)`` in its coordinates."""
    widths = np.zeros(len(rows))
    if not len(rows):
        return widths
    half = int(np.ceil(reaches.max() / STEP))
    offsets = np.arange(-half, half + 1) * STEP
    for start in range(0, len(rows), POINTS_AT_ONCE):
        part = slice(start, start + POINTS_AT_ONCE)
        ys = rows[part, None] + offsets[None] * normal_y[part, None]
        xs = cols[part, None] + offsets[None] * normal_x[part, None]
        values = ndimage.map_coordinates(
            probability, [ys.ravel(), xs.ravel()], order=1, mode="constant", cval=0.0, output=np.float64
        )
        values = values.reshape(ys.shape)
        values[np.abs(offsets)[None] > reaches[part, None]] = 0.0
        area = np.zeros(len(ys))
        for side in (values[:, half:], values[:, half::-1]):  # each starts at the centre
            lowest = np.minimum.accumulate(side, axis=1)
            peak = np.maximum.accumulate(side, axis=1)
            # A rise counts once the profile has left the crack (fallen below half its peak so far): inside a wide
            # crack the probability dips and recovers.
            ended = (side <= FLOOR) | ((side > lowest + RISE) & (lowest < HALF * peak))
            on = np.cumprod(~ended, axis=1, dtype=np.int8).astype(bool)
            taken = np.where(on, side, 0.0)
            area += (taken.sum(axis=1) - 0.5 * taken[:, 0]) * STEP  # the centre sample is half each side's
        widths[part] = area
    return widths


def as_probability(values: np.ndarray) -> np.ndarray:
    """``uint8`` 0-255 or floats in [0, 1], or a boolean mask, as float32 in [0, 1]."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255
    return values.astype(np.float32)
