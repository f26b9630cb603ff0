"""The pictures of a scan, with PIL and NumPy only: a tile map's overlay and mask, a crack mask's overlay (thin
cracks max-pooled so they stay drawn), the colour bar and thumbnails."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.results.tiling import Box, probability_rows

ASSETS = Path(__file__).resolve().parents[1] / "assets"
THUMBNAIL_SIDE = 240  # px, longest side of a thumbnail in the page


@lru_cache(maxsize=1)
def colour_table() -> np.ndarray:
    """The turbo colour map as a ``uint8`` table ``(256, 3)``: row ``i`` colours probability ``i / 255``.

    Generated once with matplotlib (not needed at run time), truncating as the torch-era scan did:
    ``np.save("crack_lightning/assets/colormaps/turbo.npy",
    (matplotlib.colormaps["turbo"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8))``
    """
    return np.load(ASSETS / "colormaps" / "turbo.npy")


def overlay(
    image: np.ndarray,
    boxes: Sequence[Box],
    crack_probability: np.ndarray,
    max_side: int = MAX_SIDE,
    colour_bar: bool = True,
    photo_size: tuple[int, int] | None = None,
) -> Image.Image:
    """The photo ``uint8 (H, W, 3)`` with the crack probability blended over it, and a colour bar (unless
    ``colour_bar`` is false: :func:`draw_colour_bar` adds it later).

    Colour follows the probability and so does opacity (up to 60%), so sound concrete stays visible and cracks
    stand out. Photos longer than ``max_side`` pixels are drawn at that length. Blended a block of rows at a time,
    so a huge photo costs little more than the picture itself. ``photo_size`` ``(height, width)``: the photo's,
    when ``image`` is a smaller copy of it (an orthomosaic's preview, :mod:`crack_lightning.io.preview`).
    """
    height, width = photo_size or image.shape[:2]
    scale = min(1.0, max_side / max(image.shape[:2]), max(image.shape[:2]) / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if size != image.shape[:2]:
        image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
    lut = colour_table()
    blended = np.empty((size[0], size[1], 3), np.uint8)
    start = 0
    for crack in probability_rows(boxes, crack_probability, width, height, size):
        crack = np.clip(crack, 0.0, 1.0)
        stop = start + len(crack)
        colours = lut[np.round(crack * 255).astype(np.intp)].astype(np.float32)  # (rows, w, 3)
        alpha = (crack * 0.6)[..., None]
        photo = image[start:stop].astype(np.float32)
        blended[start:stop] = np.round(photo * (1 - alpha) + colours * alpha).astype(np.uint8)
        start = stop
    picture = Image.fromarray(blended)
    del blended
    if colour_bar:
        draw_colour_bar(picture)
    return picture


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def draw_colour_bar(picture: Image.Image) -> None:
    """A legend in the top right corner: the colour of crack probabilities 0 to 1; none on a picture too small."""
    width, height = picture.size
    unit = max(8, min(width, height) // 24)
    bar_w, bar_h = unit, max(unit * 3, height // 3)
    font = _font(max(8, unit * 3 // 4))
    labels = ("1.0", "0.5", "0.0")
    text_w = max(font.getbbox(t)[2] for t in labels + ("crack",))
    box_w, box_h = bar_w + text_w + unit * 3 // 2, bar_h + unit * 2
    if box_w + 4 > width or box_h + 4 > height:
        return  # too small a photo for a legible bar
    left, top = width - box_w - unit // 2, unit // 2
    draw = ImageDraw.Draw(picture)
    draw.rectangle([left, top, left + box_w, top + box_h], fill=(255, 255, 255))
    draw.text((left + unit // 2, top + unit // 4), "crack", fill=(0, 0, 0), font=font)
    lut = colour_table()
    bar_top, bar_left = top + unit + unit // 4, left + unit // 2
    for i in range(bar_h):
        colour = tuple(lut[round(255 * (1 - i / max(1, bar_h - 1)))].tolist())
        draw.line([bar_left, bar_top + i, bar_left + bar_w, bar_top + i], fill=colour)
    for label, fraction in zip(labels, (0.0, 0.5, 1.0)):
        y = bar_top + fraction * (bar_h - 1)
        text_h = font.getbbox(label)[3]
        draw.text((bar_left + bar_w + unit // 4, y - text_h / 2), label, fill=(0, 0, 0), font=font)


def mask_image(
    boxes: Sequence[Box], crack_probability: np.ndarray, width: int, height: int, size: tuple[int, int] | None = None
) -> Image.Image:
    """The crack probability map at the photo's size (or ``size`` ``(height, width)``) as 8-bit grey: 0 = sure no
    crack, 255 = sure crack."""
    mask = np.empty(size or (height, width), np.uint8)
    start = 0
    for crack in probability_rows(boxes, crack_probability, width, height, size):
        mask[start : start + len(crack)] = np.round(np.clip(crack, 0.0, 1.0) * 255).astype(np.uint8)
        start += len(crack)
    return Image.fromarray(mask, mode="L")


def thumbnail(picture: Image.Image, side: int = THUMBNAIL_SIDE) -> Image.Image:
    """A copy of ``picture`` at most ``side`` pixels long, for the page."""
    small = picture.copy()
    small.thumbnail((side, side), Image.BILINEAR)
    return small.convert("RGB")


def max_pooled(probability: np.ndarray, size: tuple[int, int], rows_at_once: int = 64) -> np.ndarray:
    """``probability`` ``(H, W)`` at ``size`` ``(h, w)`` <= ``(H, W)``, each pixel the highest value of the photo
    pixels it covers, so that a crack one pixel wide stays visible in a smaller picture."""
    height, width = probability.shape
    row_starts = (np.arange(size[0]) * height) // size[0]
    col_starts = (np.arange(size[1]) * width) // size[1]
    out = np.empty(size, np.uint8)
    for first in range(0, size[0], rows_at_once):
        starts = row_starts[first : first + rows_at_once]
        end = row_starts[first + rows_at_once] if first + rows_at_once < size[0] else height
        rows = np.maximum.reduceat(probability[starts[0] : end], starts - starts[0], axis=0)
        out[first : first + len(starts)] = np.maximum.reduceat(rows, col_starts, axis=1)
    return out


def crack_overlay(
    image: np.ndarray, probability: np.ndarray, level: int, max_side: int = MAX_SIDE, mask: np.ndarray | None = None
) -> Image.Image:
    """The photo ``uint8 (H, W, 3)`` with its cracks drawn over it: crack pixels (probability >= ``level``, 0-255)
    opaque in the colour of their probability, the others tinted by it (up to 50% opacity), so that a pixel that
    is almost a crack shows too; ``mask`` (bool ``(H, W)``): the crack pixels, where not those at ``level``. At most
    ``max_side`` px long: the map is max-pooled, so thin cracks stay drawn."""
    height, width = probability.shape
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if scale < 1.0:
        image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
        probability = max_pooled(probability, size)
        mask = None if mask is None else max_pooled(mask.view(np.uint8), size).view(bool)
    lut = colour_table().astype(np.float32)
    drawn = np.array(image, np.uint8)  # a pixel of probability 0 is the photo's: most of a photo, left as it is
    for start in range(0, size[0], 256):  # a block of rows at a time: float32 copies of one block only
        p = probability[start : start + 256]
        crack = p >= level if mask is None else mask[start : start + 256]
        tinted = (p > 0) | crack
        p = p[tinted]
        alpha = np.where(crack[tinted], 1.0, p.astype(np.float32) / 510)[..., None]
        photo = drawn[start : start + 256][tinted].astype(np.float32)
        drawn[start : start + 256][tinted] = np.round(photo * (1 - alpha) + lut[p] * alpha).astype(np.uint8)
    return Image.fromarray(drawn)


def draw_outlines(picture: Image.Image, outlines: Sequence[tuple[np.ndarray, str]], scale: float = 1.0) -> None:
    """Closed outlines ``(corners (N, 2) in photo px, colour)`` drawn over ``picture``, a copy of the photo
    ``scale`` times its size, in lines thick enough to see."""
    draw = ImageDraw.Draw(picture)
    width = max(3, round(min(picture.size) / 150))
    for corners, colour in outlines:
        # photo px (pixel centres at whole numbers) to the picture's
        points = [((x + 0.5) * scale, (y + 0.5) * scale) for x, y in np.asarray(corners, np.float64)]
        draw.line([*points, points[0]], fill=colour, width=width, joint="curve")
