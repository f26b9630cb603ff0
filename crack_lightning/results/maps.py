"""What a scan gives for one photo, to hold in Python or write out: a tile map (classifier) or a crack mask
(segmenter), with its summary, its CSV rows, its pictures (:meth:`PhotoResult.plot`) and :meth:`PhotoResult.save`.

    result = model.scan("photo.jpg")
    result.summary            # dict: the photo's photos.csv row, numbers as numbers
    result.to_dict()          # the summary and a dict per tile or crack, ready for json.dumps
    result.cracks             # a segmenter's measured cracks (box, length, widths in px, and mm with a scale)
    result.plot()             # PIL image: the photo with its cracks drawn over it
    result.save("out/")       # out/photo.jpg.png (the plot), out/photo.jpg.mask.png, out/photo.jpg.csv
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from PIL import Image

from crack_lightning.io.scan_files import MASKS, MAX_SIDE, OVERLAYS, THUMBNAILS
from crack_lightning.measure.cracks import Crack, summarise
from crack_lightning.measure.hysteresis import crack_mask
from crack_lightning.results.columns import CRACK_COLUMNS, CRACK_PHOTO_COLUMNS, PHOTO_COLUMNS, TILE_COLUMNS
from crack_lightning.results.photo_result import JPEG, PNG, PhotoResult, Picture
from crack_lightning.results.pictures import (
    THUMBNAIL_SIDE,
    crack_overlay,
    draw_colour_bar,
    draw_outlines,
    mask_image,
    overlay,
    thumbnail,
)
from crack_lightning.results.tiling import Box, probability_map
from crack_lightning.runtime.labels import NO_DATA
from crack_lightning.scale.photo_scale import PhotoScale

__all__ = ["CrackMap", "PhotoResult", "Picture", "TileMap"]
CRACK, NO_CRACK = "crack", "no crack"  # a segmenter's photos.csv label
# lengths and widths: pixels with 2 decimals, millimetres with 3
SIZE_FORMATS = {
    **dict.fromkeys(["length_px", "total_length_px", "mean_width_px", "max_width_px"], ".2f"),
    **dict.fromkeys(["length_mm", "total_length_mm", "mean_width_mm", "max_width_mm"], ".3f"),
}


@dataclass
class TileMap(PhotoResult):
    """A classifier's scan of a photo: tiles ``(x, y, width, height)`` and their class probabilities."""

    boxes: list[Box] = field(default_factory=list)
    probabilities: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32), repr=False)
    class_names: list[str] = field(default_factory=list)
    crack_index: int = 0
    labels: list[str] = field(default_factory=list)  # each tile's, decided at the scan's threshold
    classified: int = field(default=0, repr=False)  # tiles whose probabilities are in
    no_data: np.ndarray | None = field(default=None, repr=False)  # bool (tiles,): an orthomosaic's empty area

    detail_columns: ClassVar[list[str]] = TILE_COLUMNS
    photo_columns: ClassVar[list[str]] = PHOTO_COLUMNS
    formats: ClassVar[dict[str, str]] = {"crack_probability": ".6f", "max_crack_probability": ".6f"}
    details_name: ClassVar[str] = "tiles"

    @property
    def complete(self) -> bool:
        return self.classified == len(self.boxes)

    @property
    def crack_class(self) -> str:
        return self.class_names[self.crack_index] if self.class_names else ""

    @property
    def crack_probability(self) -> np.ndarray:
        """Crack probability of each tile ``(tiles,)``."""
        return self.probabilities[:, self.crack_index]

    @property
    def crack_tiles(self) -> list[Box]:
        """The tiles labelled crack."""
        return [box for box, label in zip(self.boxes, self.labels) if label == self.crack_class]

    def probability_map(self) -> np.ndarray:
        """Per-pixel crack probability ``(height, width)`` float32, overlapping tiles averaged."""
        return probability_map(self.boxes, self.crack_probability, self.width, self.height)

    def photo_values(self) -> list:
        if self.error:
            return [self.name, None, None, 0, 0, None, "", self.error]
        crack_tiles = sum(label == self.crack_class for label in self.labels)
        others = [label for label in self.labels if label not in (self.crack_class, NO_DATA)]
        label = self.crack_class if crack_tiles else max(set(others), key=others.count) if others else NO_DATA
        probability = float(self.crack_probability.max())
        return [self.name, self.width, self.height, len(self.boxes), crack_tiles, probability, label, ""]

    def detail_values(self) -> list[list]:
        return [
            [self.name, x, y, w, h, None if label == NO_DATA else p, label]
            for (x, y, w, h), p, label in zip(self.boxes, self.crack_probability.tolist(), self.labels)
        ]

    def plot(self, max_side: int = MAX_SIDE) -> Image.Image:
        return overlay(self.image, self.boxes, self.crack_probability, max_side, photo_size=(self.height, self.width))

    def pictures(self, max_side: int = MAX_SIDE, masks: bool = True) -> Iterator[Picture]:
        # self.image may be a smaller copy of the photo (an orthomosaic's): the map is drawn at its size
        size = (self.height, self.width)
        drawn = overlay(self.image, self.boxes, self.crack_probability, max_side, False, size)
        small = thumbnail(drawn)  # without the colour bar, illegible that small: the page shows the scale
        draw_colour_bar(drawn)
        yield OVERLAYS, ".png", "PNG", PNG, drawn
        del drawn
        yield THUMBNAILS, ".jpg", "JPEG", JPEG, small
        if masks:
            reduced = self.image.shape[:2] if self.image.shape[:2] != size else None  # an orthomosaic's copy
            yield (
                MASKS,
                ".png",
                "PNG",
                PNG,
                mask_image(self.boxes, self.crack_probability, self.width, self.height, reduced),
            )


@dataclass
class CrackMap(PhotoResult):
    """A segmenter's scan of a photo: the crack probability of each pixel and the cracks measured in its mask."""

    probability: np.ndarray | None = field(default=None, repr=False)  # uint8 (H, W), 255 = probability 1
    level: int = 128  # the 8-bit probability from which a pixel is crack
    cracks: list[Crack] = field(default_factory=list)
    mm_per_px: float | None = None  # a marker's: at its centre (the cracks are measured on its plane)
    scale: PhotoScale | None = None  # where the scale came from, and the markers found
    low_level: int | None = None  # hysteresis: weak pixels from this level join the crack pixels they touch

    detail_columns: ClassVar[list[str]] = CRACK_COLUMNS
    photo_columns: ClassVar[list[str]] = CRACK_PHOTO_COLUMNS
    formats: ClassVar[dict[str, str]] = {**SIZE_FORMATS, "mm_per_px": ".6g", "max_crack_probability": ".6f"}
    details_name: ClassVar[str] = "cracks"

    @property
    def mask(self) -> np.ndarray:
        """The crack mask ``(H, W)`` bool at the scan's threshold (and hysteresis, with a ``low_level``)."""
        return crack_mask(self.probability, self.level, self.low_level)

    def drawn_mask(self) -> np.ndarray | None:
        """The crack pixels the overlay draws opaque where they are not simply those at the threshold."""
        return None if self.low_level is None else self.mask

    def photo_values(self) -> list:
        if self.error or self.probability is None:
            return [self.name, None, None, 0, *[None] * 11, self.error]
        scale = self.scale or PhotoScale(self.mm_per_px, "none" if self.mm_per_px is None else "option")
        on_plane = scale.plane is not None
        s = summarise(self.cracks, self.name, None if on_plane else self.mm_per_px, own_mm=on_plane)
        return [
            self.name,
            self.width,
            self.height,
            s.cracks,
            s.total_length_px,
            s.mean_width_px,
            s.max_width_px,
            s.total_length_mm,
            s.mean_width_mm,
            s.max_width_mm,
            self.mm_per_px,
            scale.source,
            float(self.probability.max()) / 255,
            CRACK if s.cracks else NO_CRACK,
            scale.note,
            "",
        ]

    def detail_values(self) -> list[list]:
        """A row per crack."""
        return [
            [
                c.photo,
                c.crack,
                c.x,
                c.y,
                c.width,
                c.height,
                c.length_px,
                c.mean_width_px,
                c.max_width_px,
                c.length_mm,
                c.mean_width_mm,
                c.max_width_mm,
                c.width_class,
            ]
            for c in self.cracks
        ]

    def plot(self, max_side: int = MAX_SIDE, mask: np.ndarray | None = None) -> Image.Image:
        mask = self.drawn_mask() if mask is None else mask
        drawn = crack_overlay(self.image, self.probability, self.level, max_side, mask)
        self._outline_markers(drawn)
        draw_colour_bar(drawn)
        return drawn

    def _outline_markers(self, drawn: Image.Image) -> None:
        """The markers found, outlined: green where one gave the scale, orange where not (see ``scale_note``)."""
        if self.scale is not None and self.scale.markers:
            used = self.scale.source == "marker"
            outlines = [(m.corners, "#00c040" if used and not m.problem else "#ff8000") for m in self.scale.markers]
            draw_outlines(drawn, outlines, drawn.width / self.width)

    def pictures(self, max_side: int = MAX_SIDE, masks: bool = True) -> Iterator[Picture]:
        # The thumbnail is drawn from the photo, not shrunk from the overlay: pooled from the full map, cracks stay.
        mask = self.drawn_mask()
        thumb = crack_overlay(self.image, self.probability, self.level, THUMBNAIL_SIDE, mask)
        yield THUMBNAILS, ".jpg", "JPEG", JPEG, thumb
        yield OVERLAYS, ".png", "PNG", PNG, self.plot(max_side, mask)
        del mask
        # 8-bit grey, full size (always written); an orthomosaic's is its max-pooled, smaller copy
        yield MASKS, ".png", "PNG", PNG, Image.fromarray(self.probability)
