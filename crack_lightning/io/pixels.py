"""Bit depth: pixels of any depth as the 8 bits the networks were trained on. NumPy and PIL only.

Cameras, scanners and drone software write 16-bit grey and colour (PNG, TIFF) and 32-bit float TIFF. PIL's own
``convert("RGB")`` clips such values at 255 instead of scaling them (a 16-bit grey photo turns white), so every
reader goes through :func:`to_uint8`: integers are scaled by their type's depth (65535 -> 255, so a 16-bit copy of
an 8-bit photo made by ``v * 257`` gives the 8-bit photo back exactly) and floats by their range
(:func:`float_range`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# PIL modes whose pixels are not 8 bits; "I" is how PIL holds 16-bit grey from some files (values 0..65535).
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def float_range(values: np.ndarray) -> tuple[float, float]:
    """The range that maps a float image to 0..255: [0, 1] when every finite value lies in it (the usual
    convention for float images), else the finite values' own minimum and maximum."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    return (low, high) if high > low else (low, low + 1.0)


def to_uint8(values: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """``values`` (any integer or float type) as ``uint8``, same shape.

    Unsigned integers are scaled by their depth (``uint16``: round(v / 257)); signed ones are taken as their
    unsigned counterpart's values (negative clipped to 0). Floats are scaled from ``value_range`` (default:
    :func:`float_range` of ``values``), NaN to 0. A window of a large photo passes the whole photo's range,
    so that every window is scaled alike.
    """
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    if values.dtype == bool:
        return values.astype(np.uint8) * 255
    if np.issubdtype(values.dtype, np.integer):
        top = float(np.iinfo(values.dtype).max if values.dtype.kind == "u" else 2 ** (8 * values.dtype.itemsize) - 1)
        scaled = np.clip(values, 0, None).astype(np.float64 if values.dtype.itemsize > 2 else np.float32) * (
            255.0 / top
        )
        return np.rint(scaled).astype(np.uint8)
    if np.issubdtype(values.dtype, np.floating):
        low, high = value_range if value_range is not None else float_range(values)
        scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
        return np.rint(np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255)).astype(np.uint8)
    raise ValueError(f"pixels of type {values.dtype} are not an image")


def as_rgb8(values: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """An image array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4+)`` of any type as ``uint8`` RGB
    ``(H, W, 3)``: grey repeated, extra channels (alpha) dropped."""
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[..., None]
    if values.ndim != 3 or values.shape[2] == 0:
        raise ValueError(f"an image has (H, W) or (H, W, channels) pixels, not {values.shape}")
    channels = values[..., :1] if values.shape[2] < 3 else values[..., :3]  # grey (+alpha) or RGB (+alpha)
    eight = to_uint8(channels, value_range)
    return np.ascontiguousarray(np.repeat(eight, 3, axis=2) if eight.shape[2] == 1 else eight)


def pil_to_rgb8(image: Image.Image) -> Image.Image:
    """A PIL image of any mode as 8-bit RGB, wide modes (16-bit grey, 32-bit int and float) scaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in WIDE_MODES:
        values = np.asarray(image)
        if image.mode == "I":  # 32-bit int holding 16-bit samples (PIL's 16-bit grey of some files)
            values = np.clip(values, 0, 65535).astype(np.uint16)
        return Image.fromarray(as_rgb8(values))
    return image.convert("RGB")
