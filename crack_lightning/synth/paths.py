"""Crack geometry: tortuous, branching centre lines with a width that varies along them.

Real cracks (Özgenel's ``Positive`` patches, inspection photos) zig-zag at the scale of a few pixels around a
course that wanders slowly, branch at acute angles, and narrow towards their tips; widths run from under a pixel
to 15+ px. Each ``Stroke`` is one centre line with a width per vertex; a crack is a main stroke and its branches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d


@dataclass
class Stroke:
    """A polyline ``points`` ``(N, 2)`` (x, y in pixels) with a full width ``widths`` ``(N,)`` at each vertex."""

    points: np.ndarray
    widths: np.ndarray


def smooth_noise(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Zero-mean noise of unit spread whose features span about ``scale`` samples."""
    noise = gaussian_filter1d(rng.standard_normal(n + 64), max(scale, 0.5), mode="wrap")[32 : 32 + n]
    return noise / (noise.std() + 1e-8)


def wander(
    rng: np.random.Generator, start: np.ndarray, heading: float, length: float, zigzag: float, step: float = 1.5
) -> np.ndarray:
    """A centre line from ``start``: a slow drift of direction plus piecewise-constant zig-zag offsets."""
    n = max(int(length / step), 3)
    drift = np.cumsum(rng.normal(0, 0.04, n)) + 0.25 * smooth_noise(rng, n, n / 4)
    # Zig-zag: the direction jumps by a random angle every few steps, as the crack follows grain boundaries.
    runs = rng.integers(2, 9, size=n)
    jumps = np.repeat(rng.uniform(-zigzag, zigzag, size=n), runs)[:n]
    angles = heading + drift + jumps
    steps = step * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return start + np.concatenate([[[0.0, 0.0]], np.cumsum(steps, axis=0)])


def width_profile(rng: np.random.Generator, n: int, base: float, roughness: float) -> np.ndarray:
    """Widths along a stroke: the base width varying slowly, jagged by ``roughness``, tapering to both tips."""
    slow = np.exp(0.3 * np.clip(smooth_noise(rng, n, n / 5), -2, 2))
    # Jagged edges: the width changes from vertex to vertex, over about two vertices (no single-vertex spikes).
    jag = 1 + roughness * np.clip(smooth_noise(rng, n, 1.0), -2, 2)
    t = np.linspace(0, 1, n)
    taper_in, taper_out = rng.uniform(0.02, 0.3, size=2)
    taper = np.clip(np.minimum(t / taper_in, (1 - t) / taper_out), 0.15, 1) ** 0.7
    return np.clip(base * slow * jag * taper, 1.0, max(2.5 * base, 1.0))


def crack_strokes(rng: np.random.Generator, size: tuple[int, int], base_width: float, depth: int = 2) -> list[Stroke]:
    """One crack: a main stroke entering the picture (usually across it) and up to ``depth`` levels of branches."""
    h, w = size
    diagonal = float(np.hypot(h, w))
    start = np.array([rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h])
    heading = float(np.arctan2(h / 2 - start[1], w / 2 - start[0]) + rng.normal(0, 0.6))
    length = rng.uniform(0.4, 1.4) * diagonal
    zigzag = rng.uniform(0.3, 0.9)  # below about 0.3 a crack looks like a hair, which is drawn as a look-alike
    points = wander(rng, start, heading, length, zigzag)
    stroke = Stroke(points, width_profile(rng, len(points), base_width, rng.uniform(0.05, 0.35)))
    strokes = [stroke]
    if depth > 0:
        for _ in range(rng.poisson(0.8 if base_width > 2 else 0.4)):
            i = int(rng.integers(len(points) // 8, max(len(points) * 7 // 8, len(points) // 8 + 1)))
            direction = points[min(i + 1, len(points) - 1)] - points[max(i - 1, 0)]
            side = rng.choice([-1, 1])
            branch_heading = float(np.arctan2(direction[1], direction[0]) + side * rng.uniform(0.35, 1.2))
            branch_length = rng.uniform(0.15, 0.6) * length
            branch = wander(rng, points[i], branch_heading, branch_length, zigzag)
            widths = width_profile(rng, len(branch), stroke.widths[i] * rng.uniform(0.4, 0.85), rng.uniform(0.05, 0.35))
            # A branch leaves its parent at the parent's width there, not with a tapered tip.
            widths[: len(widths) // 10 + 1] = np.maximum(widths[: len(widths) // 10 + 1], stroke.widths[i] * 0.6)
            strokes.append(Stroke(branch, widths))
            if depth > 1 and rng.random() < 0.3:
                sub = crack_strokes(rng, size, stroke.widths[i] * 0.4, depth=0)
                strokes.extend(sub[:1])
    return strokes


def smooth_curve(rng: np.random.Generator, size: tuple[int, int], length: float, bend: float) -> np.ndarray:
    """A smooth curve (a cubic Bézier) of about ``length`` px: hairs, twigs, paint strokes, not cracks."""
    h, w = size
    p0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    angle = rng.uniform(0, 2 * np.pi)
    p3 = p0 + length * np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-np.sin(angle), np.cos(angle)])
    p1 = p0 + (p3 - p0) / 3 + normal * rng.normal(0, bend * length)
    p2 = p0 + 2 * (p3 - p0) / 3 + normal * rng.normal(0, bend * length)
    t = np.linspace(0, 1, max(int(length / 1.5), 4))[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
