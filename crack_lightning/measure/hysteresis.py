"""Which pixels of a probability map are crack: at or above the threshold, or by hysteresis from strong pixels into
weak ones.

Hysteresis (as ``skimage.filters.apply_hysteresis_threshold``): a pixel at or above ``level`` is crack (strong); a
pixel at or above ``low_level`` (weak) is crack when its group of weak pixels holds a strong one. The edges, faint
stretches and continuations of a crack the model is sure of come back; faint marks on their own stay out. Groups are
8-connected, as cracks are everywhere else in the package (scikit-image's function joins 4-connected ones only).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def hysteresis_on(level: int, low_level: int | None) -> bool:
    """Whether ``low_level`` adds any pixel to those at ``level`` (8-bit probabilities)."""
    return low_level is not None and low_level < level


def crack_mask(probability: np.ndarray, level: int, low_level: int | None = None) -> np.ndarray:
    """The crack pixels ``(H, W)`` bool of an 8-bit probability map ``(H, W)`` (255 = probability 1): those at or
    above ``level``, and with a ``low_level`` below it, the pixels at or above ``low_level`` connected to them."""
    strong = probability >= level
    if not hysteresis_on(level, low_level):
        return strong
    weak = probability >= low_level
    labels, count = ndimage.label(weak, structure=EIGHT_NEIGHBOURS, output=np.int32)
    keep = np.zeros(count + 1, dtype=bool)
    keep[labels[strong]] = True
    keep[0] = False
    return keep[labels]
