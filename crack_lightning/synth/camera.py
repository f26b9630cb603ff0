"""What a camera does to a picture: defocus blur, sensor noise, JPEG compression."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


def photograph(rng: np.random.Generator, image: np.ndarray) -> bytes:
    """``float32`` ``(H, W, 3)`` in [0, 255] to JPEG bytes, blurred, noisy and compressed at random strengths."""
    out = image
    if rng.random() < 0.6:
        sigma = rng.uniform(0.3, 1.2)
        out = gaussian_filter(out, sigma=(sigma, sigma, 0))
    noise = rng.uniform(0, 5)
    if noise > 0.5:
        # Sensor noise is partly shared by the channels (luminance) and partly not.
        shared = rng.normal(0, noise, out.shape[:2])[..., None]
        out = out + shared + rng.normal(0, noise / 2, out.shape)
    pixels = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    pixels.save(buffer, format="JPEG", quality=int(rng.integers(45, 96)))
    return buffer.getvalue()
