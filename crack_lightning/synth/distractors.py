"""Look-alikes drawn without a mask, so that a model learns what is not a crack.

The shipped classifier's closest calls are thin dark lines and dark stains on sound concrete; inspection photos
add formwork lines and joints, shadows, hairs, twigs and paint. They differ from cracks in ways a model can learn:
straight or smoothly curved, even in width, soft-edged, or coloured.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

from crack_lightning.synth.cracks import field
from crack_lightning.synth.paths import Stroke, smooth_curve
from crack_lightning.synth.raster import coverage

Size = tuple[int, int]


def _blend(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray | float) -> np.ndarray:
    return image * (1 - alpha[..., None]) + np.asarray(colour, dtype=np.float32) * alpha[..., None]


def _line(rng: np.random.Generator, size: Size, width: float, bend: float = 0.0) -> np.ndarray:
    """A straight (or gently bent) line right across the picture."""
    h, w = size
    points = smooth_curve(rng, size, 2 * float(np.hypot(h, w)), bend)
    points = points - points.mean(axis=0) + np.array([rng.uniform(0, w), rng.uniform(0, h)])
    return coverage([Stroke(points, np.full(len(points), width))], size)


def formwork_line(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """The print of a formwork board's edge: a long straight line, faint, dark or light, sometimes doubled."""
    size = image.shape[:2]
    cover = _line(rng, size, rng.uniform(0.8, 3.0))
    if rng.random() < 0.3:
        cover = np.maximum(cover, np.roll(cover, int(rng.integers(2, 6)), axis=int(rng.integers(0, 2))))
    cover = gaussian_filter(cover, rng.uniform(0.3, 1.0))
    strength = rng.uniform(0.08, 0.35)
    target = 0.0 if rng.random() < 0.7 else 255.0
    return _blend(image, cover * strength, target)


def joint(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A saw-cut or construction joint: a straight groove of even width, shaded on one side, lit on the other."""
    size = image.shape[:2]
    width = rng.uniform(3, 12)
    groove = _line(rng, size, width)
    lit = np.clip(np.roll(groove, 2, axis=1) - groove, 0, 1)
    out = _blend(image, groove * rng.uniform(0.2, 0.6), rng.uniform(20, 90))
    return _blend(out, lit * rng.uniform(0.1, 0.4), 255.0)


def stain(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A damp, rust or oil stain: a soft-edged irregular blob, darker and tinted."""
    size = image.shape[:2]
    h, w = size
    blob = field(rng, size, rng.uniform(6, 25))
    y, x = np.mgrid[0:h, 0:w]
    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.5) * min(h, w)
    falloff = np.exp(-(((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r)))
    alpha = np.clip((blob + 0.4) * 2, 0, 1) * falloff * rng.uniform(0.15, 0.5)
    colour = np.array([rng.uniform(30, 110), rng.uniform(25, 95), rng.uniform(20, 80)])
    return _blend(image, gaussian_filter(alpha, 1.5), colour)


def shadow(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A cast shadow: one side of a soft straight or curved edge darker."""
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * np.pi)
    distance = (x - rng.uniform(0, w)) * np.cos(angle) + (y - rng.uniform(0, h)) * np.sin(angle)
    distance = distance + rng.uniform(0, 0.004) * (x - w / 2) ** 2  # some shadows' edges curve
    edge = 1 / (1 + np.exp(-distance / rng.uniform(1.0, 12.0)))
    return image * (1 - rng.uniform(0.2, 0.55) * edge)[..., None]


def hair(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A hair or fibre: thin, dark, even in width, smoothly curved."""
    size = image.shape[:2]
    points = smooth_curve(rng, size, rng.uniform(30, 0.8 * max(size)), rng.uniform(0.2, 0.6))
    cover = coverage([Stroke(points, np.full(len(points), rng.uniform(0.7, 1.6)))], size)
    return _blend(image, cover * rng.uniform(0.4, 0.85), rng.uniform(10, 60))


def twig(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A twig, grass blade or pine needle: brown or green, smooth, a few px wide, with a lighter upper edge."""
    size = image.shape[:2]
    strokes = []
    main = smooth_curve(rng, size, rng.uniform(25, 120), rng.uniform(0.02, 0.15))
    width = rng.uniform(1.5, 6)
    strokes.append(Stroke(main, np.linspace(width, width * 0.6, len(main))))
    for _ in range(rng.poisson(1)):
        i = int(rng.integers(0, len(main)))
        twig_size = (int(size[0]), int(size[1]))
        branch = smooth_curve(rng, twig_size, rng.uniform(10, 40), 0.05)
        branch = branch - branch[0] + main[i]
        strokes.append(Stroke(branch, np.full(len(branch), width * 0.5)))
    cover = coverage(strokes, size)
    colour = np.array([rng.uniform(60, 140), rng.uniform(45, 120), rng.uniform(20, 60)])
    out = _blend(image, cover, colour)
    lit = np.clip(cover - np.roll(cover, 1, axis=0), 0, 1)
    return _blend(out, lit * 0.3, 230.0)


def paint(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A paint or marker stroke: smooth, even, coloured (inspectors mark cracks; surveyors mark points)."""
    size = image.shape[:2]
    points = smooth_curve(rng, size, rng.uniform(20, 0.8 * max(size)), rng.uniform(0.05, 0.4))
    cover = gaussian_filter(coverage([Stroke(points, np.full(len(points), rng.uniform(2, 10)))], size), 0.6)
    palette = np.array([[200, 40, 40], [40, 70, 190], [230, 200, 40], [240, 240, 235], [30, 30, 30], [40, 150, 60]])
    colour = palette[int(rng.integers(0, len(palette)))] + rng.normal(0, 12, 3)
    return _blend(image, cover * rng.uniform(0.5, 0.95), colour)


DISTRACTORS: dict[str, Callable[[np.random.Generator, np.ndarray], np.ndarray]] = {
    "formwork_line": formwork_line,
    "joint": joint,
    "stain": stain,
    "shadow": shadow,
    "hair": hair,
    "twig": twig,
    "paint": paint,
}
