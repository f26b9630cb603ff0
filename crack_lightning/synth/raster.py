"""Strokes to pixels: the share of each pixel a stroke covers, drawn 4x finer and averaged down."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from crack_lightning.synth.paths import Stroke

SUPERSAMPLE = 4  # quarter-pixel widths: a 1.25-px crack differs from a 1.5-px one


def coverage(strokes: Sequence[Stroke], size: tuple[int, int]) -> np.ndarray:
    """``float32`` ``(H, W)`` in [0, 1]: how much of each pixel the strokes cover (their union)."""
    h, w = size
    s = SUPERSAMPLE
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        points = stroke.points * s + (s - 1) / 2  # pixel centres: pixel i spans [i*s, i*s + s) on the canvas
        widths = stroke.widths * s
        for (x0, y0), (x1, y1), w0, w1 in zip(points[:-1], points[1:], widths[:-1], widths[1:]):
            width = (w0 + w1) / 2
            draw.line([(x0, y0), (x1, y1)], fill=255, width=max(int(round(width)), 1))
            r = width / 2  # round joints, so that bends have no notches
            draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=255)
    small = canvas.reduce(s)
    return np.asarray(small, dtype=np.float32) / 255.0


def mask_of(cover: np.ndarray) -> np.ndarray:
    """The true mask: pixels at least half covered, so that a crack's mask is as wide as the crack."""
    return cover >= 0.5
