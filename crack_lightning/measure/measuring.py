"""How a scan measures cracks: the photos' scale (or how to find it), the smallest crack kept, and the width
classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crack_lightning.errors import OptionError
from crack_lightning.measure.bands import measure_photo_cracks
from crack_lightning.measure.cracks import DEFAULT_WIDTH_LIMITS_MM, WIDTH_CLASSES, Crack
from crack_lightning.measure.plane import Plane

DEFAULT_MIN_AREA = 25  # px: smaller groups of crack pixels are noise more often than cracks (scan's --min_area)
SCALES = ("auto", "none")  # find each photo's scale (marker card, GeoTIFF, drone metadata), or measure in pixels


def scale_option(scale: str | float | None, mm_per_px: float | None = None) -> tuple[str, float | None]:
    """``(scale, mm_per_px)`` from a ``scale`` option (``"auto"``, ``"none"``, or a number: the photos' scale in mm
    per pixel, as ``mm_per_px``); a given ``mm_per_px`` wins over a number."""
    if scale is None or (isinstance(scale, str) and scale.strip().lower() in SCALES):
        return (scale or "auto").strip().lower(), mm_per_px
    try:
        number = float(scale)
    except (TypeError, ValueError):
        raise OptionError("scale", f"{scale!r}; pass auto, none or the photos' mm per pixel") from None
    return "auto", number if mm_per_px is None else mm_per_px


@dataclass(frozen=True)
class Measuring:
    """How cracks are measured: the photos' scale (``None``: each photo's own, found as ``scale`` says: ``auto``
    looks for a marker card, a GeoTIFF's pixel size and drone metadata, ``none`` measures in pixels;
    ``marker_mm``: the printed marker's side, when a ruler says it is not the size printed on the card), the
    smallest crack kept, and the width classes (``width_classes[i]`` below ``width_limits_mm[i]``, the last one
    above every limit)."""

    mm_per_px: float | None = None
    min_area: int = DEFAULT_MIN_AREA
    width_limits_mm: tuple[float, ...] = DEFAULT_WIDTH_LIMITS_MM
    width_classes: tuple[str, ...] = WIDTH_CLASSES
    scale: str = "auto"
    marker_mm: float | None = None

    def __post_init__(self) -> None:
        if self.mm_per_px is not None and not self.mm_per_px > 0:
            raise OptionError("mm_per_px", f"{self.mm_per_px}; pass the photos' scale, above 0 (or none)")
        if self.scale not in SCALES:
            raise OptionError("scale", f"{self.scale!r}; pass auto, none or the photos' mm per pixel")
        if self.marker_mm is not None and not self.marker_mm > 0:
            raise OptionError("marker_mm", f"{self.marker_mm}; pass the printed marker's side in mm, above 0")
        if self.min_area < 0:
            raise OptionError("min_area", f"{self.min_area}; pass 0 or more pixels")
        limits = list(self.width_limits_mm)
        if not limits or min(limits) <= 0 or sorted(set(limits)) != limits:
            raise OptionError("width_limits_mm", f"{limits}; pass increasing widths above 0, e.g. 0.1,0.3,1.0")
        if len(self.width_classes) != len(limits) + 1 or not all(self.width_classes):
            raise OptionError(
                "width_classes",
                f"{len(limits)} width limits need {len(limits) + 1} class names, not {list(self.width_classes)}",
            )

    def measure(
        self, mask: np.ndarray, photo: str = "", probability: np.ndarray | None = None, plane: Plane | None = None
    ) -> list[Crack]:
        """The cracks of a boolean mask ``(H, W)``, in bounded memory (bands of rows); their widths from the
        ``probability`` map where given (the profile across each crack), else from the mask; in millimetres on
        ``plane`` where given, else at ``mm_per_px``."""
        return measure_photo_cracks(
            mask,
            photo,
            self.mm_per_px,
            self.min_area,
            self.width_limits_mm,
            self.width_classes,
            probability=probability,
            plane=plane,
        )

    def settings(self) -> dict:
        return {
            "min_area": self.min_area,
            "mm_per_px": self.mm_per_px,
            "width_limits_mm": list(self.width_limits_mm),
            "width_classes": list(self.width_classes),
            "scale": self.scale,
            "marker_mm": self.marker_mm,
        }
