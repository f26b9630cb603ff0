"""Photos of a surface with the marker card on it, seen by a pinhole camera turned away from face-on: the exact
homography from the surface's millimetres to the photo is known, so the scale found from the card and the
millimetres of cracks drawn on the surface can be checked (the tests, and the docs' pictures).

Everything is drawn ``SUPERSAMPLE`` times finer and averaged down (OpenCV's area resampling), so edges fall where
the geometry puts them to a fraction of a pixel. Coordinates follow OpenCV: pixel centres at whole numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crack_lightning.scale.card import card_image, card_layout

SUPERSAMPLE = 4


@dataclass(frozen=True)
class Camera:
    """A camera ``size`` ``(width, height)`` px looking at the surface point under its centre, turned ``tilt``
    degrees about the vertical axis; face-on it would see ``mm_per_px`` there (focal length ``focal`` px)."""

    size: tuple[int, int]
    mm_per_px: float
    tilt: float = 0.0
    focal: float | None = None

    def homography(self) -> np.ndarray:
        """Surface mm (from the point under the photo's centre, ``x`` right, ``y`` down) to photo px."""
        width, height = self.size
        f = self.focal or 1.2 * max(width, height)
        distance = f * self.mm_per_px
        cx, cy = (width - 1) / 2, (height - 1) / 2
        c, s = np.cos(np.radians(self.tilt)), np.sin(np.radians(self.tilt))
        # surface point (X, Y) at camera depth D + X sin(tilt): x = cx + f X cos(tilt) / depth, y = cy + f Y / depth
        return np.array([[f * c + cx * s, 0, cx * distance], [cy * s, f, cy * distance], [s, 0, distance]])


def raster_to_mm(mm_per_px: float, origin: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> np.ndarray:
    """A raster's pixel ``(u, v)`` (centres at whole numbers) to surface mm: pixel edges at ``k * mm_per_px``,
    turned ``angle`` degrees about its top left corner, which lies at ``origin``."""
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    rotate = np.array([[c, -s, origin[0]], [s, c, origin[1]], [0, 0, 1]])
    scale = np.array([[mm_per_px, 0, 0.5 * mm_per_px], [0, mm_per_px, 0.5 * mm_per_px], [0, 0, 1]])
    return rotate @ scale


def render(raster: np.ndarray, to_mm: np.ndarray, camera: Camera, border: int | None = 0) -> np.ndarray:
    """``raster`` (``(h, w)`` or ``(h, w, C)``, float) as the camera sees it, at the photo's size, float32;
    outside the raster: ``border``, or the raster mirrored (``None``)."""
    import cv2

    k = SUPERSAMPLE
    width, height = camera.size
    up = np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2], [0, 0, 1]])  # photo px to the finer canvas
    warp = up @ camera.homography() @ to_mm
    fine = cv2.warpPerspective(
        np.asarray(raster, np.float32),
        warp,
        (width * k, height * k),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101 if border is None else cv2.BORDER_CONSTANT,
        borderValue=border or 0,
    )
    return cv2.resize(fine, (width, height), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Card:
    """A card of ``size_mm`` laid on the surface, its marker's top left corner at ``origin`` mm, turned ``angle``
    degrees; ``printed_mm``: the marker's real side when the card was printed scaled."""

    size_mm: float = 50
    origin: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    printed_mm: float | None = None

    def marker_to_surface(self) -> np.ndarray:
        """The marker's plane (mm from its top left corner, as the scan measures it) to surface mm."""
        factor = (self.printed_mm or self.size_mm) / self.size_mm
        return raster_to_mm(factor, self.origin, self.angle) @ np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])


@dataclass(frozen=True)
class CardPhoto:
    """A rendered photo ``uint8`` ``(H, W, 3)`` and the truth: ``homography`` surface mm to photo px, and the
    ``cards`` on the surface."""

    photo: np.ndarray
    homography: np.ndarray
    cards: tuple[Card, ...]

    def marker_to_photo(self, card: int = 0) -> np.ndarray:
        """A card's marker plane (mm from its top left corner, as the scan measures it) to photo px."""
        return self.homography @ self.cards[card].marker_to_surface()

    def photo_to_marker(self, card: int = 0) -> np.ndarray:
        return np.linalg.inv(self.marker_to_photo(card))


def card_photo(
    surface: np.ndarray, surface_mm_per_px: float, camera: Camera, cards: Sequence[Card] = (Card(),), dpi: int = 1200
) -> CardPhoto:
    """The surface photo ``surface`` (``uint8`` RGB, face-on, ``surface_mm_per_px``, centred under the camera)
    with ``cards`` laid on it, as ``camera`` sees it."""
    h, w = surface.shape[:2]
    surface_to_mm = raster_to_mm(surface_mm_per_px, (-w * surface_mm_per_px / 2, -h * surface_mm_per_px / 2))
    photo = render(surface.astype(np.float32), surface_to_mm, camera, border=None)
    for card in cards:
        layout = card_layout(card.size_mm)
        factor = (card.printed_mm or card.size_mm) / card.size_mm
        drawn = np.asarray(card_image(card.size_mm, dpi), np.float32)
        # the card's corner on the surface: its marker's corner, less the margin (both as printed)
        corner = np.array(card.origin) + _turn(-np.array([layout.marker_x, layout.marker_y]) * factor, card.angle)
        to_mm = raster_to_mm(25.4 / dpi * factor, tuple(corner), card.angle)
        ink = render(drawn, to_mm, camera, border=255)
        cover = render(np.ones(drawn.shape, np.float32), to_mm, camera)[..., None]
        photo = photo * (1 - cover) + ink[..., None] * cover
    return CardPhoto(np.clip(photo + 0.5, 0, 255).astype(np.uint8), camera.homography(), tuple(cards))


def _turn(vector: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])


def stroke_mask(
    points_mm: np.ndarray, width_mm: float, camera: Camera, to_marker: CardPhoto | None = None, step: float = 0.02
) -> np.ndarray:
    """The photo's mask (pixels at least half covered) of a stroke ``width_mm`` wide along ``points_mm`` ``(N, 2)``
    on the surface (or, with ``to_marker``, on the marker's plane of that photo)."""
    from PIL import Image, ImageDraw

    points = np.asarray(points_mm, np.float64)
    low = points.min(axis=0) - width_mm
    size = np.ceil((points.max(axis=0) + width_mm - low) / step).astype(int)
    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    pixels = [tuple(p) for p in (points - low) / step]
    ImageDraw.Draw(canvas).line(pixels, fill=255, width=max(1, round(width_mm / step)), joint="curve")
    to_mm = raster_to_mm(step, tuple(low))
    if to_marker is not None:
        to_mm = np.linalg.inv(camera.homography()) @ to_marker.marker_to_photo() @ to_mm
    return render(np.asarray(canvas, np.float32) / 255, to_mm, camera) >= 0.5
