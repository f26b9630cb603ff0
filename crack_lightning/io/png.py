"""PNG files written fast: OpenCV's libpng with one fixed row filter, lossless like any PNG.

A scan writes an overlay and a mask as large as the photo. PIL tries every PNG row filter on every row: 0.34 s for a
5.6 MP overlay at zlib's fastest level, where libpng with the "up" filter takes 0.17 s for a slightly smaller file
(measured on a photo of concrete patches). The pixels read back are the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

FAST_MODES = ("RGB", "L")  # what scans write; other modes (palette, alpha, 1-bit) go through PIL


def png_bytes(picture: Image.Image, compress_level: int = 1) -> bytes:
    """``picture`` (RGB or 8-bit grey) as PNG file bytes, zlib level ``compress_level`` (0-9)."""
    import cv2  # imported here, as everywhere: the module stays quick to import

    if picture.mode not in FAST_MODES:
        raise ValueError(f"png_bytes writes {' or '.join(FAST_MODES)} pictures, not {picture.mode}")
    pixels = np.asarray(picture)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)  # OpenCV's channel order
    options = [cv2.IMWRITE_PNG_COMPRESSION, compress_level, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    ok, encoded = cv2.imencode(".png", pixels, options)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {picture.mode} picture of {picture.size} as PNG")
    return encoded.tobytes()
