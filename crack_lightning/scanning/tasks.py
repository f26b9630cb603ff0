"""What a scan does to each photo, by task: a classifier's tile map or a segmenter's crack mask. A task supplies the
results (:mod:`crack_lightning.results.maps`: their CSV rows and pictures), its CSV files, the settings a resumed
scan must keep, and its report page; :func:`crack_lightning.scanning.pipeline.scan_to_folder` does the rest, the
same for every task. :func:`scan_task` finds a model's task by the model's ``task`` in the registry
(:mod:`crack_lightning.tasks`), whose ``scan`` these classes are: the runtime's models know nothing of scanning."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from crack_lightning.io.images import ImageInput
from crack_lightning.io.scan_files import CRACKS_CSV, CRACKS_GEOJSON, MAX_SIDE, TILES_CSV, TILES_GEOJSON
from crack_lightning.measure.hysteresis import hysteresis_on
from crack_lightning.report.crack_page import CRACK_PAGE
from crack_lightning.report.pages import Page
from crack_lightning.report.tile_page import TILE_PAGE
from crack_lightning.results.maps import CrackMap, PhotoResult, TileMap
from crack_lightning.runtime.segmenter import crack_level
from crack_lightning.scanning.crack_map import segment_photos
from crack_lightning.scanning.geojson import Feature, crack_feature, tile_feature
from crack_lightning.scanning.options import CrackOptions, TileOptions, workers_for
from crack_lightning.scanning.tile_map import scan_photos
from crack_lightning.tasks.registry import task_named

if TYPE_CHECKING:
    from crack_lightning.runtime.classifier import Classifier
    from crack_lightning.runtime.segmenter import Segmenter


class ScanTask:
    """A task's part of a scan (subclasses fill it in)."""

    details_csv: str  # the second CSV's file name: a row per tile, or per crack
    unit: str  # what the counts and the progress bar count: tiles, cracks
    same_scan: tuple[str, ...]  # settings a resumed scan must keep
    page: Page
    result: type[PhotoResult]  # what results() yields: its CSV columns
    masks: bool = True  # write masks/<photo>.png
    geojson: str | None = None  # the map's file name (of the georeferenced photos' details_csv rows); None: no map
    map_feature: Feature | None = None  # a details_csv row's map feature: staticmethod(feature(row, georeference))
    preview_side: int = MAX_SIDE  # the longest side of an orthomosaic's pictures (the pipeline sets its overlays')
    # set by the pipeline, whose writer draws a photo's pictures while its last work (measuring) finishes in a thread
    background: bool = False

    options_type: type[TileOptions | CrackOptions]  # what its options are

    @classmethod
    def of(cls, model: Any, **options: Any) -> ScanTask:
        """The task of ``model`` with ``options`` (the fields of its :attr:`options_type`; another name is an error
        naming it)."""
        return cls(model, cls.options_type.of(f"a {model.task} model's scan", **options))

    def settings(self) -> dict[str, Any]:
        """The scan's options and model, for ``scan.json`` and the report."""
        raise NotImplementedError

    def results(self, photos: Iterable[tuple[str, ImageInput]]) -> Iterator[PhotoResult]:
        """Each ``(name, photo)``'s result in input order; an unreadable photo comes with its ``error``. With
        :attr:`background` set, a result may come before its last work is done: its ``finish()`` waits for it."""
        raise NotImplementedError

    def count(self, result: PhotoResult) -> int:
        """How many :attr:`unit` a photo's result holds."""
        raise NotImplementedError

    def cracked(self, result: PhotoResult) -> bool:
        raise NotImplementedError


def sha256(graph: bytes) -> str:
    return hashlib.sha256(graph).hexdigest()


class TileTask(ScanTask):
    """A classifier's scan: tiles as ``options`` say (:class:`~crack_lightning.scanning.options.TileOptions`)."""

    details_csv, unit, page, result, options_type = TILES_CSV, "tiles", TILE_PAGE, TileMap, TileOptions
    geojson, map_feature = TILES_GEOJSON, staticmethod(tile_feature)
    same_scan = ("tile", "stride", "context", "threshold", "model_sha256")

    def __init__(self, classifier: Classifier, options: TileOptions = TileOptions()) -> None:
        self.model, self.options, self.masks, self.max_pixels = classifier, options, options.masks, options.max_pixels
        self.tile, self.stride, self.context = options.tile, options.stride, options.context
        self.threshold, self.batch_size = options.threshold, options.batch_for(classifier.device)
        self.workers = workers_for(classifier, options.workers)  # threads decoding and cutting photos ahead

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.model.source,
            "model_sha256": sha256(self.model.graph),
            "tile": self.tile,
            "stride": self.stride,
            "context": self.context,
            "threshold": self.threshold,
        }

    def results(self, photos: Iterable[tuple[str, ImageInput]]) -> Iterator[TileMap]:
        return scan_photos(
            self.model,
            photos,
            self.tile,
            self.stride,
            self.batch_size,
            max_pixels=self.max_pixels,
            context=self.context,
            threshold=self.threshold,
            workers=self.workers,
            preview_side=self.preview_side,
        )

    def count(self, result: TileMap) -> int:
        return len(result.boxes)

    def cracked(self, result: TileMap) -> bool:
        return result.crack_class in result.labels


class CrackTask(ScanTask):
    """A segmenter's scan as ``options`` say (:class:`~crack_lightning.scanning.options.CrackOptions`), the model's
    threshold, low threshold, smallest crack and windows where they give none."""

    details_csv, unit, page, result, options_type = CRACKS_CSV, "cracks", CRACK_PAGE, CrackMap, CrackOptions
    geojson, map_feature = CRACKS_GEOJSON, staticmethod(crack_feature)
    # "task" tells a segmenter's scan from a classifier's
    same_scan = (
        "task",
        "threshold",
        "low_threshold",
        "window",
        "overlap",
        "min_area",
        "mm_per_px",
        "width_limits_mm",
        "width_classes",
        "scale",
        "marker_mm",
        "model_sha256",
    )

    def __init__(self, segmenter: Segmenter, options: CrackOptions = CrackOptions()) -> None:
        threshold = segmenter.threshold if options.threshold is None else options.threshold
        low_threshold = segmenter.low_threshold if options.low_threshold is None else options.low_threshold
        self.batch_size = options.batch_for(segmenter.device)
        self.window, self.overlap = segmenter.windows(options.window, options.overlap, self.batch_size)
        self.model, self.options, self.threshold = segmenter, options, threshold
        self.measuring = options.measuring_for(getattr(segmenter, "min_area", None))
        self.max_pixels, self.workers = options.max_pixels, workers_for(segmenter, options.workers)
        self.level = crack_level(threshold)
        # off (None) where it would add no pixel: the scan is then the plain threshold's, file for file
        on = low_threshold is not None and hysteresis_on(self.level, crack_level(low_threshold))
        self.low_threshold = low_threshold if on else None

    def settings(self) -> dict[str, Any]:
        return {
            "task": self.model.task,
            "model": self.model.source,
            "model_sha256": sha256(self.model.graph),
            "threshold": self.threshold,
            "low_threshold": self.low_threshold,
            "window": self.window,
            "overlap": self.overlap,
            **self.measuring.settings(),
        }

    def results(self, photos: Iterable[tuple[str, ImageInput]]) -> Iterator[CrackMap]:
        return segment_photos(
            self.model,
            photos,
            self.measuring,
            self.threshold,
            self.window,
            self.overlap,
            self.batch_size,
            self.max_pixels,
            self.workers,
            self.preview_side,
            self.low_threshold,
            self.background,
        )

    def count(self, result: CrackMap) -> int:
        return len(result.cracks)

    def cracked(self, result: CrackMap) -> bool:
        return bool(result.cracks)


def scan_task(model: Any, **options: Any) -> ScanTask:
    """How :func:`crack_lightning.scan` and a model's ``scan`` scan photos with ``model``: the ``scan`` of its task
    (:mod:`crack_lightning.tasks`) with ``options``, the fields of the task's options object (a classifier's
    :class:`~crack_lightning.scanning.options.TileOptions`, a segmenter's
    :class:`~crack_lightning.scanning.options.CrackOptions`)."""
    return task_named(model.task, model.source).part("scan").of(model, **options)
