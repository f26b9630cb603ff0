"""Confidence intervals of shares (crack patches found, photos within a tolerance)."""

from __future__ import annotations

import math

Z95 = 1.96  # the normal quantile of a two-sided 95% interval


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of the share ``successes / n``; ``(0, 1)`` when ``n`` is 0. Unlike
    the normal approximation it stays inside [0, 1] and is sound for shares near 0 or 1 (false cracks on sound
    patches)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0 or n successes the bound is exactly 0 or 1 (rounding left 1 - 2e-16 at 2,500 of 2,500)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    return low, 1.0 if successes >= n else min(1.0, centre + half)
