"""The printable marker card: an ArUco marker (OpenCV's 4x4 dictionary) whose number says its size, a millimetre
scale bar and a short instruction, drawn at an exact physical size as a PDF page or a PNG.

    from crack_lightning.scale.card import write_card
    write_card("card.pdf", size_mm=50)      # print at 100%; the black square is 50 mm wide

A scan reads the marker's size from its number (:func:`marker_number`), so a photo with the card in it needs no
option. The size is printed on the card: a printer that scales the page is caught with a ruler, and the measured
size is then passed to the scan (``marker_mm``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crack_lightning.errors import OptionError
from crack_lightning.io.atomic import save_picture

DICTIONARY = "DICT_4X4_50"  # 4x4 bits: the largest cells for a given marker size, so it reads from farthest away
MODULES = 6  # a 4x4 marker and its black border, cells across
SIZE_STEP_MM = 5  # marker number n is (n + 1) * 5 mm wide: sizes 10 ... 250 mm in steps of 5
SIZES_MM = range(10, 251, SIZE_STEP_MM)
DEFAULT_SIZE_MM = 50
DEFAULT_DPI = 600
MIN_WIDTH_MM = 90  # room for the instruction at a legible size
TEXT_MM = 3.0  # letter height of the instruction


def marker_number(size_mm: float) -> int:
    """The marker number that says ``size_mm``; an error for sizes the card does not come in."""
    if size_mm not in SIZES_MM:
        raise OptionError(
            "size_mm",
            f"{size_mm:g}; pass a whole number of millimetres from {SIZES_MM[0]} to {SIZES_MM[-1]} in "
            f"steps of {SIZE_STEP_MM} (the marker's number tells the scan its size)",
        )
    return int(size_mm) // SIZE_STEP_MM - 1


def size_of_number(number: int) -> float | None:
    """The marker side in mm that marker ``number`` stands for, or None for a number no card has."""
    size = (number + 1) * SIZE_STEP_MM
    return float(size) if size in SIZES_MM else None


@dataclass(frozen=True)
class CardLayout:
    """Where things lie on a card, in mm from its top left corner (``x`` right, ``y`` down)."""

    size_mm: float
    width: float
    height: float
    marker_x: float
    marker_y: float
    ruler_y: float
    ruler_mm: int
    text_y: float

    def outline_on_marker_plane(self) -> np.ndarray:
        """The card's four corners ``(4, 2)`` in mm from the marker's top left corner (the scan's plane)."""
        left, top = -self.marker_x, -self.marker_y
        return np.array(
            [[left, top], [left + self.width, top], [left + self.width, top + self.height], [left, top + self.height]]
        )


def card_layout(size_mm: float = DEFAULT_SIZE_MM) -> CardLayout:
    """The card around a marker of ``size_mm``: a white margin of at least a marker cell (the detector needs it),
    the marker centred, a scale bar below it and the instruction below that."""
    margin = max(size_mm / MODULES, 6.0)
    width = max(size_mm + 2 * margin, MIN_WIDTH_MM)
    ruler_y = margin + size_mm + margin
    text_y = ruler_y + 10.0
    height = text_y + 3 * 1.7 * TEXT_MM + margin / 2
    ruler_mm = int((width - 12) // 10 * 10)
    return CardLayout(float(size_mm), width, height, (width - size_mm) / 2, margin, ruler_y, ruler_mm, text_y)


@lru_cache(maxsize=4)
def _font(pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=pixels)


def marker_cells(number: int) -> np.ndarray:
    """The marker's cells ``(6, 6)`` bool, True = black, border included."""
    import cv2

    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, DICTIONARY))
    return cv2.aruco.generateImageMarker(dictionary, number, MODULES, borderBits=1) < 128


def card_image(size_mm: float = DEFAULT_SIZE_MM, dpi: int = DEFAULT_DPI) -> Image.Image:
    """The card as a grey PIL image at ``dpi`` (its ``info["dpi"]`` says so): white, the marker black."""
    number = marker_number(size_mm)
    layout = card_layout(size_mm)
    px = dpi / 25.4  # pixels per mm

    def at(mm: float) -> int:
        return round(mm * px)

    card = Image.new("L", (at(layout.width), at(layout.height)), 255)
    draw = ImageDraw.Draw(card)
    cell = size_mm / MODULES
    # Each cell's edges rounded on their own: the marker is its size to a pixel, whatever the dpi.
    for (row, col), black in np.ndenumerate(marker_cells(number)):
        if black:
            x0, y0 = at(layout.marker_x + col * cell), at(layout.marker_y + row * cell)
            x1, y1 = at(layout.marker_x + (col + 1) * cell), at(layout.marker_y + (row + 1) * cell)
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=0)
    _draw_ruler(draw, layout, px)
    font, small = _font(max(8, at(TEXT_MM))), _font(max(6, at(TEXT_MM * 0.7)))
    lines = [
        (f"The black square is {size_mm:g} mm wide: check it with your ruler.", font),
        ("Lay the card flat on the surface, beside the crack, in the photo.", font),
        (f"crack-lightning marker card, ArUco 4x4 no. {number}. Print at 100%.", small),
    ]
    y = layout.text_y
    for text, face in lines:
        draw.text((card.width / 2, at(y)), text, fill=0, font=face, anchor="mt")
        y += 1.7 * TEXT_MM
    line = max(1, at(0.2))
    draw.rectangle([0, 0, card.width - 1, card.height - 1], outline=160, width=line)  # where to cut
    card.info["dpi"] = (dpi, dpi)
    return card


def _draw_ruler(draw: ImageDraw.ImageDraw, layout: CardLayout, px: float) -> None:
    left = (layout.width - layout.ruler_mm) / 2
    top = layout.ruler_y
    weight = max(1, round(0.25 * px))
    draw.line(
        [(round(left * px), round(top * px)), (round((left + layout.ruler_mm) * px), round(top * px))],
        fill=0,
        width=weight,
    )
    label = _font(max(6, round(2.2 * px)))
    for mm in range(layout.ruler_mm + 1):
        tick = 4.0 if mm % 10 == 0 else 2.8 if mm % 5 == 0 else 1.8
        x = round((left + mm) * px)
        draw.line([(x, round(top * px)), (x, round((top + tick) * px))], fill=0, width=weight)
        if mm % 10 == 0:
            draw.text((x, round((top + 4.6) * px)), f"{mm // 10}", fill=0, font=label, anchor="mt")
    draw.text(
        (round((left + layout.ruler_mm + 1.5) * px), round((top + 4.6) * px)), "cm", fill=0, font=label, anchor="lt"
    )


def write_card(
    output: str | os.PathLike, size_mm: float = DEFAULT_SIZE_MM, dpi: int = DEFAULT_DPI, overwrite: bool = False
) -> Path:
    """Write the card to ``output``: a ``.pdf`` page of the card's own size (black and white, lossless) or a
    ``.png`` at ``dpi``. Returns the path; an existing file is kept unless ``overwrite``."""
    path = Path(output).expanduser()
    kind = {".pdf": "PDF", ".png": "PNG"}.get(path.suffix.lower())
    if kind is None:
        raise OptionError("output", f"{path.name}; pass a file name ending in .pdf or .png")
    if path.exists() and not overwrite:
        raise OptionError("output", f"{path} already exists; pass another name, or overwrite it")
    if not 150 <= dpi <= 2400:
        raise OptionError("dpi", f"{dpi}; pass a printer resolution from 150 to 2400")
    card = card_image(size_mm, dpi)
    if kind == "PDF":  # bilevel: the PDF holds it losslessly (CCITT G4), the marker's edges stay sharp
        card = card.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=Image.Dither.NONE)
        save_picture(card, path, "PDF", resolution=float(dpi))
    else:
        save_picture(card, path, "PNG", dpi=(dpi, dpi))
    return path


def page_size_mm(size_mm: float = DEFAULT_SIZE_MM, dpi: int = DEFAULT_DPI) -> tuple[float, float]:
    """The card's width and height in mm as drawn at ``dpi`` (whole pixels: within half a pixel of its layout)."""
    layout = card_layout(size_mm)
    return tuple(round(v * dpi / 25.4) * 25.4 / dpi for v in (layout.width, layout.height))  # type: ignore[return-value]
