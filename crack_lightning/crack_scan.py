"""Scan with a crack segmenter: each photo's crack probability map, its cracks measured, and the ``scan`` folder.

The folder holds ``masks/<photo>.png`` (the crack probability of each pixel as 8-bit grey, full size),
``overlays/<photo>.png`` (the photo with its cracks drawn over it), ``thumbnails/``, ``cracks.csv`` (a row per crack),
``photos.csv`` (a row per photo, with its total crack length and widest crack) and ``report.html``. NumPy, PIL,
SciPy and scikit-image only: no torch.

A pixel is crack where its 8-bit probability reaches the threshold's (:func:`~crack_lightning.inference.segmenter.
crack_level`); a crack is an 8-connected group of at least ``min_area`` crack pixels, measured as
:mod:`crack_lightning.measure` defines it (skeleton length, spurs pruned; width from the probability profile across
the crack).
Memory stays bounded on large photos: the map is built a band of windows at a time and measured in bands of rows
(:mod:`crack_lightning.measure_bands`). Resuming, overwriting and the lock are the classifier scan's
(:class:`~crack_lightning.scan_folder.ScanFolder`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from crack_lightning.crack_report import write_crack_report
from crack_lightning.errors import CrackLightningError
from crack_lightning.images import MAX_PIXELS
from crack_lightning.inference.classifier import ImageInput, as_rgb
from crack_lightning.inference.segmenter import DEFAULT_MIN_AREA, DEFAULT_WINDOWS_PER_BATCH, Segmenter, crack_level
from crack_lightning.measure import DEFAULT_WIDTH_LIMITS_MM, WIDTH_CLASSES, Crack, summarise
from crack_lightning.measure_bands import measure_photo_cracks
from crack_lightning.report import THUMBNAIL_SIDE, colour_table, draw_colour_bar, save_atomically
from crack_lightning.scan_folder import (
    CRACK_COLUMNS, CRACK_PHOTO_COLUMNS, CRACKS_CSV, MASKS, OVERLAYS, REPORT, THUMBNAILS, ScanFolder, find_photos,
    picture_names,
)

__all__ = ["CrackScanWriter", "Measuring", "SegmentedPhoto", "crack_overlay", "segment_photos", "segment_to_folder"]

CRACK, NO_CRACK = "crack", "no crack"  # photos.csv's label
# A resumed scan must keep these; "task" tells a segmenter's scan from a classifier's.
SAME_CRACK_SCAN = ("task", "threshold", "window", "overlap", "min_area", "mm_per_px", "width_limits_mm",
                   "width_classes", "model_sha256")


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
            raise CrackLightningError(f"--mm_per_px: {self.mm_per_px}; pass the photos' scale, above 0 (or none)")
        if self.min_area < 0:
            raise CrackLightningError(f"--min_area: {self.min_area}; pass 0 or more pixels")
        limits = list(self.width_limits_mm)
        if not limits or min(limits) <= 0 or sorted(set(limits)) != limits:
            raise CrackLightningError(f"--width_limits_mm: {limits}; pass increasing widths above 0, e.g. 0.1,0.3,1.0")
        if len(self.width_classes) != len(limits) + 1 or not all(self.width_classes):
            raise CrackLightningError(f"--width_classes: {len(limits)} width limits need {len(limits) + 1} class names, "
                                      f"not {list(self.width_classes)}")

    def measure(self, mask: np.ndarray, photo: str = "", probability: np.ndarray | None = None) -> list[Crack]:
        """The cracks of ``mask``; their widths from the ``probability`` map where given (the profile across them)."""
        return measure_photo_cracks(mask, photo, self.mm_per_px, self.min_area, self.width_limits_mm, self.width_classes,
                                    probability=probability)

    def settings(self) -> dict:
        return {"min_area": self.min_area, "mm_per_px": self.mm_per_px, "width_limits_mm": list(self.width_limits_mm),
                "width_classes": list(self.width_classes)}


@dataclass
class SegmentedPhoto:
    """One photo's scan: its probability map and cracks, or the error that stopped it."""

    name: str
    probability: np.ndarray | None = None  # uint8 (H, W)
    image: np.ndarray | None = None  # uint8 (H, W, 3), kept for the overlay
    cracks: list[Crack] = field(default_factory=list)
    error: str = ""


def segment_photos(
    segmenter: Segmenter,
    photos: Iterable[tuple[str, ImageInput]],
    measuring: Measuring = Measuring(),
    threshold: float | None = None,
    window: int | None = None,
    overlap: int | None = None,
    batch_size: int = DEFAULT_WINDOWS_PER_BATCH,
    max_pixels: int | None = MAX_PIXELS,
) -> Iterator[SegmentedPhoto]:
    """Segment and measure each ``(name, photo)``, in input order; an unreadable photo comes with its ``error``.
    ``threshold``: the crack probability from which a pixel is crack (default: the model's)."""
    level = crack_level(segmenter.threshold if threshold is None else threshold)
    for name, photo in photos:
        try:
            image = as_rgb(photo, max_pixels)
        except CrackLightningError as err:
            yield SegmentedPhoto(name, error=str(err))
            continue
        probability = segmenter.probability_map(image, window, overlap, batch_size)
        yield SegmentedPhoto(name, probability, image, measuring.measure(probability >= level, name, probability))


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


def crack_overlay(image: np.ndarray, probability: np.ndarray, level: int, max_side: int = 4096) -> Image.Image:
    """The photo ``uint8 (H, W, 3)`` with its cracks drawn over it: crack pixels (probability >= ``level``, 0-255)
    opaque in the colour of their probability, the others tinted by it (up to 50% opacity), so that a pixel that
    is almost a crack shows too. At most ``max_side`` px long: the map is max-pooled, so thin cracks stay drawn."""
    height, width = probability.shape
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if scale < 1.0:
        image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
        probability = max_pooled(probability, size)
    lut = colour_table()
    drawn = np.empty((*size, 3), np.uint8)
    for start in range(0, size[0], 256):  # a block of rows at a time: float32 copies of one block only
        p = probability[start : start + 256]
        alpha = np.where(p >= level, 1.0, p.astype(np.float32) / 510)[..., None]
        photo = image[start : start + 256].astype(np.float32)
        drawn[start : start + 256] = np.round(photo * (1 - alpha) + lut[p].astype(np.float32) * alpha).astype(np.uint8)
    return Image.fromarray(drawn)


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def crack_row(crack: Crack) -> list:
    """A ``cracks.csv`` row: pixels with 2 decimals, millimetres with 3, empty without a scale."""
    return [crack.photo, crack.crack, crack.x, crack.y, crack.width, crack.height, _number(crack.length_px, 2),
            _number(crack.mean_width_px, 2), _number(crack.max_width_px, 2), _number(crack.length_mm, 3),
            _number(crack.mean_width_mm, 3), _number(crack.max_width_mm, 3), crack.width_class]


class CrackScanWriter(ScanFolder):
    """A segmenter's scan: ``cracks.csv``, ``photos.csv``, masks, overlays and thumbnails, a photo at a time (its
    cracks, then its pictures, then its ``photos.csv`` row)."""

    details_csv, detail_columns, photo_columns, same_scan = CRACKS_CSV, CRACK_COLUMNS, CRACK_PHOTO_COLUMNS, SAME_CRACK_SCAN

    def __init__(
        self, output: str | os.PathLike, settings: dict, level: int, mm_per_px: float | None = None,
        overwrite: bool = False, resume: bool = False, overlay_max_side: int = 4096,
    ) -> None:
        self.level, self.mm_per_px = level, mm_per_px
        super().__init__(output, settings, overwrite, resume, overlay_max_side)

    def write(self, photo: SegmentedPhoto, picture: str) -> None:
        """Write one photo's cracks, its pictures (``overlays/<picture>.png``...) and its ``photos.csv`` row."""
        if photo.error or photo.probability is None or photo.image is None:
            self.photos_csv.writerow([photo.name, "", "", 0, *[""] * 8, photo.error])
            self._photos.flush()
            return
        self.details.writerows(crack_row(c) for c in photo.cracks)
        self._details.flush()
        # The thumbnail is drawn from the photo, not shrunk from the overlay: pooled from the full map, cracks stay.
        small = crack_overlay(photo.image, photo.probability, self.level, THUMBNAIL_SIDE)
        save_atomically(small, self.dir / THUMBNAILS / f"{picture}.jpg", "JPEG", quality=85)
        drawn = crack_overlay(photo.image, photo.probability, self.level, self.overlay_max_side)
        draw_colour_bar(drawn)
        save_atomically(drawn, self.dir / OVERLAYS / f"{picture}.png", "PNG", compress_level=1)
        del drawn
        mask = Image.fromarray(photo.probability)  # uint8 (H, W): 8-bit grey
        save_atomically(mask, self.dir / MASKS / f"{picture}.png", "PNG", compress_level=1)
        del mask
        s = summarise(photo.cracks, photo.name, self.mm_per_px)
        height, width = photo.probability.shape
        self.photos_csv.writerow([
            photo.name, width, height, s.cracks, _number(s.total_length_px, 2), _number(s.mean_width_px, 2),
            _number(s.max_width_px, 2), _number(s.total_length_mm, 3), _number(s.mean_width_mm, 3),
            _number(s.max_width_mm, 3), f"{photo.probability.max() / 255:.6f}", CRACK if s.cracks else NO_CRACK, "",
        ])
        self._photos.flush()


def segment_to_folder(
    segmenter: Segmenter,
    source: str | os.PathLike,
    output: str | os.PathLike,
    threshold: float | None = None,
    measuring: Measuring = Measuring(),
    window: int | None = None,
    overlap: int | None = None,
    batch_size: int = DEFAULT_WINDOWS_PER_BATCH,
    overwrite: bool = False,
    resume: bool = False,
    overlay_max_side: int = 4096,
    progress: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    report: bool = True,
) -> dict[str, int]:
    """The ``scan`` command with a segmenter: every photo of ``source`` into ``output``; returns counts of photos,
    cracks and errors. Locking, ``resume`` and ``overwrite`` work as for the classifier's scan."""
    from tqdm.auto import tqdm

    threshold = segmenter.threshold if threshold is None else threshold
    if not 0.0 < threshold <= 1.0:
        raise CrackLightningError(f"--threshold: {threshold}; pass a probability in (0, 1]")
    window, overlap = segmenter.windows(window, overlap, batch_size)
    photos = list(dict(find_photos(source)).items())  # a name listed twice is scanned once
    if not photos:
        raise CrackLightningError(f"--input: no images found in {source}")
    settings = {
        "task": "segmentation", "input": str(Path(source).expanduser().absolute()), "model": segmenter.source,
        "model_sha256": hashlib.sha256(segmenter.graph).hexdigest(), "threshold": threshold, "window": window,
        "overlap": overlap, **measuring.settings(),
    }
    level = crack_level(threshold)
    with CrackScanWriter(output, settings, level, measuring.mm_per_px, overwrite, resume, overlay_max_side) as writer:
        names = picture_names([name for name, _ in photos] + list(writer.done))
        todo = [(name, path) for name, path in photos if name not in writer.done]
        counts = {"photos": 0, "skipped": len(photos) - len(todo), "cracks": 0, "crack_photos": 0, "errors": 0}
        bar = tqdm(total=len(todo), unit="photo", disable=not progress, dynamic_ncols=True)
        try:
            for photo in segment_photos(segmenter, todo, measuring, threshold, window, overlap, batch_size, max_pixels):
                writer.write(photo, names[photo.name])
                counts["photos"] += 1
                counts["cracks"] += len(photo.cracks)
                counts["crack_photos"] += bool(photo.cracks)
                counts["errors"] += bool(photo.error)
                bar.update(1)
                bar.set_postfix(cracks=counts["cracks"])
        finally:
            bar.close()
        writer.finish()
        if report or (writer.dir / REPORT).exists():  # a page of an earlier run is kept in step with photos.csv
            write_crack_report(writer.dir, dict(photos))
    return counts
