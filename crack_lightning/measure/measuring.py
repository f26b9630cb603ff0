"""How a scan measures cracks: the photos' scale, the smallest crack kept, and the width classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crack_lightning.errors import OptionError
from crack_lightning.measure.bands import measure_photo_cracks
from crack_lightning.measure.cracks import DEFAULT_WIDTH_LIMITS_MM, WIDTH_CLASSES, Crack

DEFAULT_MIN_AREA = 25  # px: smaller groups of crack pixels are noise more often than cracks (scan's --min_area)


@dataclass(frozen=True)
class Measuring:
    """How cracks are measured: the photos' scale (``None``: pixels only), the smallest crack kept, and the width
    classes (``width_classes[i]`` below ``width_limits_mm[i]``, the last one above every limit)."""

    mm_per_px: float | None = None
    min_area: int = DEFAULT_MIN_AREA
    width_limits_mm: tuple[float, ...] = DEFAULT_WIDTH_LIMITS_MM
    width_classes: tuple[str, ...] = WIDTH_CLASSES

    def __post_init__(self) -> None:
        if self.mm_per_px is not None and not self.mm_per_px > 0:
            raise OptionError("mm_per_px", f"{self.mm_per_px}; pass the photos' scale, above 0 (or none)")
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

    def measure(self, mask: np.ndarray, photo: str = "", probability: np.ndarray | None = None) -> list[Crack]:
        """The cracks of a boolean mask ``(H, W)``, in bounded memory (bands of rows); their widths from the
        ``probability`` map where given (the profile across each crack), else from the mask."""
        return measure_photo_cracks(
            mask,
            photo,
            self.mm_per_px,
            self.min_area,
            self.width_limits_mm,
            self.width_classes,
            probability=probability,
        )

    def settings(self) -> dict:
        return {
            "min_area": self.min_area,
            "mm_per_px": self.mm_per_px,
            "width_limits_mm": list(self.width_limits_mm),
            "width_classes": list(self.width_classes),
        }
