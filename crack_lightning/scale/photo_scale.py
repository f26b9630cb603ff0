"""Each photo's scale, and where it came from: the option given (``option``), else a marker card in the photo
(``marker``: its plane, so that a wall photographed at an angle is measured on the wall), else a GeoTIFF's pixel
size (``geotiff``), else a drone photo's metadata (``exif``, an estimate), else none (pixels only).

The card a marker belongs to is left out of the cracks, whether its marker is used or not: its edges, scale bar and
lettering are no cracks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from crack_lightning.io.georef import read_georeference
from crack_lightning.measure.plane import Plane
from crack_lightning.scale.card import card_layout, size_of_number
from crack_lightning.scale.drone import drone_scale
from crack_lightning.scale.marker import Marker, marker_scale

SOURCES = ("option", "marker", "geotiff", "exif", "none")


@dataclass(frozen=True, eq=False)
class PhotoScale:
    """A photo's scale: ``mm_per_px`` (a marker's: at its centre), its ``source`` (one of :data:`SOURCES`), the
    ``note`` (why a marker or metadata found was not used; what an estimate rests on), the marker's ``plane`` (photo
    px to mm on the card's plane) and every card ``markers`` found."""

    mm_per_px: float | None = None
    source: str = "none"
    note: str = ""
    plane: Plane | None = None
    markers: tuple[Marker, ...] = field(default_factory=tuple)

    def card_outlines(self) -> list[np.ndarray]:
        """Each found marker's card, as its four corners ``(4, 2)`` in photo px (the card as ``marker`` draws it)."""
        outlines = []
        for marker in self.markers:
            nominal = size_of_number(marker.number) or marker.size_mm
            corners = card_layout(nominal).outline_on_marker_plane() * (marker.size_mm / nominal)
            to_photo = np.linalg.inv(marker.plane.homography)
            points = np.c_[corners, np.ones(4)] @ to_photo.T
            outlines.append(points[:, :2] / points[:, 2:])
        return outlines

    def clear_cards(self, probability: np.ndarray) -> None:
        """Set the crack probability inside every found card to 0, in place."""
        import cv2

        height, width = probability.shape
        for outline in self.card_outlines():
            left, top = np.floor(outline.min(axis=0)).astype(int)
            right, bottom = np.ceil(outline.max(axis=0)).astype(int) + 1
            x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
            if x0 >= x1 or y0 >= y1:
                continue
            inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(inside, [np.round((outline - [x0, y0]) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
            probability[y0:y1, x0:x1][inside.astype(bool)] = 0


def photo_scale(
    photo: str | os.PathLike | Image.Image | np.ndarray | None,
    image: np.ndarray | None,
    mm_per_px: float | None = None,
    scale: str = "auto",
    marker_mm: float | None = None,
    size: tuple[int, int] | None = None,
) -> PhotoScale:
    """The scale of ``photo`` (as given: a path, PIL image or array) decoded as ``image`` (``uint8`` RGB; None
    when it is not decoded whole, an orthomosaic: no marker looked for), ``size`` ``(width, height)`` where there
    is no ``image``. ``mm_per_px``: the option, which wins; ``scale``: ``auto`` or ``none`` (pixels only);
    ``marker_mm``: the printed markers' side where it is not the size on the card."""
    if mm_per_px is not None:
        return PhotoScale(mm_per_px, "option")
    if scale == "none":
        return PhotoScale()
    notes, markers = [], ()
    if image is not None:
        found = marker_scale(image, marker_mm)
        if found.plane is not None:
            return PhotoScale(found.mm_per_px, "marker", found.note, found.plane, found.markers)
        notes, markers = [found.note] if found.note else [], found.markers
    if isinstance(photo, (str, os.PathLike)):
        georef = read_georeference(photo)
        if georef is not None and georef.mm_per_px:
            return PhotoScale(georef.mm_per_px, "geotiff", "; ".join(notes), markers=markers)
    if isinstance(photo, (str, os.PathLike, Image.Image)):
        size = (image.shape[1], image.shape[0]) if image is not None else size
        drone = drone_scale(photo, size) if size else None
        if drone is not None and drone.mm_per_px:
            return PhotoScale(drone.mm_per_px, "exif", "; ".join([*notes, drone.note]), markers=markers)
        if drone is not None and drone.note:
            notes.append(drone.note)
    return PhotoScale(note="; ".join(notes), markers=markers)
