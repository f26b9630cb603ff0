"""A crack's look: a dark interior, soft or jagged edges, shadow on one side, spalled lips, dirt.

Works on ``float32`` ``(H, W, 3)`` pictures in [0, 255]; ``cover`` is the crack's pixel coverage from
:func:`crack_lightning.synth.raster.coverage`, whose half-covered pixels make the mask.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, shift


def field(rng: np.random.Generator, size: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth 2-D noise in about [-1, 1] with features of about ``scale`` px."""
    noise = gaussian_filter(rng.standard_normal(size).astype(np.float32), scale)
    return noise / (3 * noise.std() + 1e-8)


def draw_crack(rng: np.random.Generator, image: np.ndarray, cover: np.ndarray, base_width: float) -> np.ndarray:
    """``image`` with a crack of coverage ``cover`` painted in."""
    size = cover.shape
    out = image.copy()
    # Spalled lips: a lighter rim where the edge broke away (wider cracks, some of the time).
    if base_width > 2 and rng.random() < 0.35:
        rim = np.clip(gaussian_filter(cover, rng.uniform(1.0, 2.5)) * 2.2 - cover, 0, 1)
        lift = rng.uniform(0.05, 0.25) * (1 + 0.5 * field(rng, size, 2.0))
        out = out + (255 - out) * (rim * lift)[..., None]
    # Shadow: the crack's wall darkens the surface beside it on the side away from the light.
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        offset = rng.uniform(0.5, 1.5 + base_width / 4)
        cast = shift(cover, (offset * np.sin(angle), offset * np.cos(angle)), order=1, mode="constant")
        cast = np.clip(gaussian_filter(cast, 0.8) - cover, 0, 1)
        out = out * (1 - rng.uniform(0.1, 0.4) * cast)[..., None]
    # Edges: soft (defocus, worn) or left sharp and jagged.
    soft = gaussian_filter(cover, rng.uniform(0.2, 1.0)) if rng.random() < 0.5 else cover
    # Interior: dark, darker towards the middle of wide cracks, mottled; sometimes tinted (damp, rust, soil).
    darkness = rng.uniform(0.45, 0.92)
    core = gaussian_filter(cover, max(base_width / 4, 0.5))
    core = core / (core.max() + 1e-6)
    depth = darkness * (0.7 + 0.3 * core) * (1 + 0.25 * field(rng, size, 1.5))
    tint = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.08, 3)
    floor = rng.uniform(5, 40) * tint  # what the bottom of the crack looks like
    alpha = np.clip(soft * depth, 0, 1)[..., None]
    out = out * (1 - alpha) + floor * alpha
    # Dirt and debris in wide cracks: light specks left inside.
    if base_width > 3 and rng.random() < 0.3:
        specks = (rng.random(size) < 0.02) & (cover > 0.5)
        specks = gaussian_filter(specks.astype(np.float32), 0.7) * 2.5
        out = out + (np.clip(specks, 0, 1) * rng.uniform(60, 160))[..., None]
    return np.clip(out, 0, 255)
