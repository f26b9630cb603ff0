"""Scan: cut whole photos into tiles, classify every tile, and map where the cracks are. NumPy and PIL only.

The ``scan`` command's folder (:func:`scan_to_folder`) holds ``tiles.csv``, ``photos.csv``, a crack map per photo
under ``overlays/`` (and ``masks/``), ``thumbnails/`` and ``report.html``. A scan killed at any point and run again
with ``resume`` ends with each photo once in ``photos.csv`` and each of its tiles once in ``tiles.csv``.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.images import MAX_PIXELS, count_reasons, resize, skip_reason
from crack_lightning.inference.classifier import Classifier, ImageInput, as_rgb, decide_labels
from crack_lightning.scan_folder import (
    MASKS, NO_DATA, OVERLAYS, PHOTOS_CSV, REPORT, TILES_CSV, ScanWriter, find_photos, picture_names,
)
from crack_lightning.geojson import map_counts, write_geojson
from crack_lightning.scan_report import write_report
from crack_lightning.scan_windows import scan_tiff
from crack_lightning.tiff_windows import windowed_tiff
from crack_lightning.tiling import Box, context_window, probability_map, tile_boxes

__all__ = [
    "DEFAULT_CONTEXT", "DEFAULT_TILE", "MASKS", "OVERLAYS", "PHOTOS_CSV", "REPORT", "TILES_CSV", "PhotoScan",
    "scan_photo", "scan_photos", "scan_to_folder",
]

# Chosen with bench/scan_quality.py on 300 real crack photos (docs/scan-quality.md).
DEFAULT_TILE = 128  # photo pixels
DEFAULT_CONTEXT = 0.125  # share of the tile side seen around it on each side: a crack along an edge is seen whole


@dataclass
class PhotoScan:
    """One photo's scan: its tiles with their class probabilities, or the error that stopped it."""

    name: str
    width: int = 0
    height: int = 0
    boxes: list[Box] = field(default_factory=list)
    probabilities: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))  # (tiles, classes)
    crack_index: int = 0
    image: np.ndarray | None = None  # uint8 (H, W, 3), kept for the overlay
    error: str = ""
    classified: int = 0  # tiles whose probabilities are in
    no_data: np.ndarray | None = None  # bool (tiles,): tiles of an orthomosaic's empty area, not classified

    @property
    def complete(self) -> bool:
        return self.classified == len(self.boxes)

    @property
    def crack_probability(self) -> np.ndarray:
        """Crack probability of each tile ``(tiles,)``."""
        return self.probabilities[:, self.crack_index]

    def probability_map(self) -> np.ndarray:
        """Per-pixel crack probability ``(height, width)``, overlapping tiles averaged."""
        return probability_map(self.boxes, self.crack_probability, self.width, self.height)


def scan_photos(
    classifier: Classifier,
    photos: Iterable[tuple[str, ImageInput]],
    tile: int,
    stride: int,
    batch_size: int = 32,
    keep_images: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    context: float = DEFAULT_CONTEXT,
    preview_side: int = 4096,
) -> Iterator[PhotoScan]:
    """Classify every tile of each ``(name, photo)``; yields each photo's :class:`PhotoScan` in input order.

    With ``context`` > 0 the network sees each tile with ``context * tile`` pixels of the photo around it (a crack
    along a tile's edge is then inside what it sees); the probability is the tile's. Each window is resized to the
    classifier's input size (:func:`crack_lightning.images.resize`) and handed over as ``uint8``, as ``predict`` does.

    Batches run across photo boundaries, so small photos do not waste batch slots; only the photos with tiles in
    flight are held. An unreadable photo is yielded with its ``error`` and no tiles. A tiled or very large TIFF
    (an orthomosaic) is read a band at a time (:mod:`crack_lightning.scan_windows`); its ``image`` is then a copy
    at most ``preview_side`` long.
    """
    if context < 0:
        raise CrackLightningError(f"--context: {context}; pass 0 (the tile alone) or a positive share of the tile")
    if tile < 1 or stride < 1 or batch_size < 1:
        raise CrackLightningError(f"--tile, --stride and --batch_size must be at least 1 (got {tile}, {stride}, {batch_size})")
    margin = round(context * tile)
    size, classes = classifier.image_size, len(classifier.class_names)
    in_flight: deque[PhotoScan] = deque()
    pending: list[tuple[PhotoScan, int, np.ndarray]] = []  # (photo, first tile, uint8 windows (n, 3, S, S))
    pending_tiles = 0

    def classify() -> None:
        nonlocal pending_tiles
        if not pending:
            return
        probabilities = classifier.probabilities(np.concatenate([windows for _, _, windows in pending]))
        offset = 0
        for scan, start, windows in pending:
            scan.probabilities[start : start + len(windows)] = probabilities[offset : offset + len(windows)]
            scan.classified += len(windows)
            offset += len(windows)
        pending.clear()
        pending_tiles = 0

    def finished() -> Iterator[PhotoScan]:
        while in_flight and in_flight[0].complete:
            yield in_flight.popleft()

    for name, photo in photos:
        scan = PhotoScan(name, crack_index=classifier.crack_index)
        in_flight.append(scan)
        if isinstance(photo, (str, os.PathLike)) and windowed_tiff(photo):
            classify()  # the photos before it finish first, in order
            try:
                scan_tiff(classifier, scan, photo, tile, stride, margin, batch_size, max_pixels,
                          preview_side if keep_images else None)
            except CrackLightningError as err:
                scan.error, scan.boxes, scan.classified, scan.image = str(err), [], 0, None
            yield from finished()
            continue
        try:
            image = as_rgb(photo, max_pixels)
        except CrackLightningError as err:
            scan.error = str(err)
            yield from finished()
            continue
        scan.height, scan.width = image.shape[:2]
        scan.boxes = tile_boxes(scan.width, scan.height, tile, stride)
        scan.probabilities = np.empty((len(scan.boxes), classes), np.float32)
        scan.image = image if keep_images else None
        start = 0
        while start < len(scan.boxes):
            chunk = scan.boxes[start : start + batch_size - pending_tiles]
            windows = [context_window(box, margin, scan.width, scan.height) for box in chunk]
            crops = np.stack([resize(image[y : y + h, x : x + w], size) for x, y, w, h in windows])
            pending.append((scan, start, crops.transpose(0, 3, 1, 2)))
            pending_tiles += len(chunk)
            start += len(chunk)
            if pending_tiles >= batch_size:
                classify()
                yield from finished()
        del image
    classify()
    yield from finished()


def scan_photo(
    classifier: Classifier,
    photo: ImageInput,
    tile: int,
    stride: int,
    batch_size: int = 32,
    context: float = DEFAULT_CONTEXT,
    max_pixels: int | None = MAX_PIXELS,
) -> tuple[list[Box], np.ndarray, np.ndarray]:
    """Scan one photo (path, PIL image or ``uint8`` RGB array ``(H, W, 3)``).

    Returns the tile boxes ``(x, y, width, height)``, their crack probabilities ``(tiles,)`` and the per-pixel crack
    probability map ``(height, width)``.
    """
    (scan,) = scan_photos(
        classifier, [("photo", photo)], tile, stride, batch_size, keep_images=False, max_pixels=max_pixels, context=context
    )
    if scan.error:
        raise CrackLightningError(scan.error)
    return scan.boxes, scan.crack_probability, scan.probability_map()


def scan_to_folder(
    classifier: Classifier,
    source: str | os.PathLike,
    output: str | os.PathLike,
    tile: int,
    stride: int,
    batch_size: int = 32,
    threshold: float = 0.5,
    masks: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    overlay_max_side: int = 4096,
    progress: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    context: float = DEFAULT_CONTEXT,
    report: bool = True,
) -> dict[str, int]:
    """The ``scan`` command: every photo of ``source`` into ``output``; returns counts of photos, tiles and errors.

    ``output`` is locked while the scan runs: a second scan of the same folder stops with an error. ``report``
    writes ``report.html`` from ``photos.csv`` at the end, so it lists every photo scanned so far, resumed or not
    (a page already there is brought up to date also without ``report``).
    """
    from tqdm.auto import tqdm

    if not 0.0 <= threshold <= 1.0:
        raise CrackLightningError(f"--threshold: {threshold} is not a probability in [0, 1]")
    photos = list(dict(find_photos(source)).items())  # a name listed twice is scanned once
    if not photos:
        raise CrackLightningError(f"--input: no images found in {source}")
    settings = {
        "input": str(Path(source).expanduser().absolute()), "model": classifier.source,
        "model_sha256": hashlib.sha256(classifier.graph).hexdigest(), "tile": tile, "stride": stride,
        "context": context, "threshold": threshold,
    }
    with ScanWriter(output, classifier.crack_class, settings, overwrite, resume, masks, overlay_max_side) as writer:
        names = picture_names([name for name, _ in photos] + list(writer.done))
        todo = [(name, path) for name, path in photos if name not in writer.done]
        counts = {"photos": 0, "skipped": len(photos) - len(todo), "tiles": 0, "crack_photos": 0, "errors": 0,
                  **count_reasons([])}
        bar = tqdm(total=len(todo), unit="photo", disable=not progress, dynamic_ncols=True)
        try:
            for scan in scan_photos(classifier, todo, tile, stride, batch_size, max_pixels=max_pixels, context=context,
                                    preview_side=overlay_max_side):
                labels = [] if scan.error else decide_labels(
                    scan.probabilities, classifier.class_names, classifier.crack_index, threshold
                )
                if scan.no_data is not None:
                    labels = [NO_DATA if empty else label for label, empty in zip(labels, scan.no_data.tolist())]
                writer.write(scan, labels, names[scan.name])
                scan.image = None
                counts["photos"] += 1
                counts["tiles"] += len(scan.boxes)
                counts["errors"] += bool(scan.error)
                if scan.error:  # by reason, for the summary line
                    counts[skip_reason(scan.error)] += 1
                counts["crack_photos"] += classifier.crack_class in labels
                bar.update(1)
                bar.set_postfix(tiles=counts["tiles"])
        finally:
            bar.close()
        writer.finish()
        if report or (writer.dir / REPORT).exists():  # a page of an earlier run is kept in step with photos.csv
            write_report(writer.dir, dict(photos))
        counts.update(map_counts(*write_geojson(writer.dir, dict(photos), TILES_CSV)))
    return counts
