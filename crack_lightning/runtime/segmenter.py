"""A crack segmenter as an exported graph, run by ONNX Runtime or OpenVINO: no torch, torchvision or Lightning.

    from crack_lightning import load_model
    segmenter = load_model("runs/segment/version_0/checkpoints/last.ckpt")   # or an .onnx written by export
    result = segmenter.scan("photo.jpg")   # a CrackMap: mask, cracks, summary, plot(), save(); mm from a marker card
    result = segmenter.scan("photo.jpg", scale=0.2)   # or at 0.2 mm per pixel
    probability = segmenter.probability_map("photo.jpg")   # uint8 (H, W): 0 = sure no crack, 255 = sure crack

Photos of any size run in overlapping windows blended back (:func:`crack_lightning.runtime.windows.segment_photo`): memory
stays bounded by a band of windows, whatever the photo's size.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import MAX_PIXELS, ImageInput, as_rgb
from crack_lightning.measure.measuring import Measuring, scale_option
from crack_lightning.runtime.classifier import Images, image_list
from crack_lightning.runtime.exported import ExportedModel, mirrored_mean
from crack_lightning.runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW, segment_photo
from crack_lightning.scanning.crack_map import DEFAULT_WINDOWS_PER_BATCH, crack_level
from crack_lightning.scanning.results import CrackMap
from crack_lightning.scanning.tasks import CrackTask

MEASURING_OPTIONS = ("mm_per_px", "min_area", "width_limits_mm", "width_classes", "scale", "marker_mm")
# hysteresis from strong into weak crack pixels, for a model whose metadata names no low_threshold: off, as measured
# on our synthetic photos (docs/segmentation.md#hysteresis-recall-at-the-operating-point)
DEFAULT_LOW_THRESHOLD: float | None = None


class Segmenter(ExportedModel):
    """An exported crack segmenter (see :class:`~crack_lightning.runtime.exported.ExportedModel` for the options;
    ``tta: hflip`` averages each window's probabilities with its mirror image's)."""

    task = "segmentation"

    def __init__(self, graph: bytes, source: str = "", **options) -> None:
        super().__init__(graph, source, **options)
        meta = self.metadata
        if meta.get("task") != "segmentation":
            raise CrackLightningError(
                f"{source}: not a crack_lightning segmenter graph (its metadata says no task: segmentation)"
            )
        self.threshold = float(meta["threshold"])
        # a model may carry its own, chosen with its threshold; None: pixels at the threshold only
        self.low_threshold = float(meta["low_threshold"]) if "low_threshold" in meta else DEFAULT_LOW_THRESHOLD
        self.mean, self.std = json.loads(meta["mean"]), json.loads(meta["std"])
        self.window = int(meta.get("window", DEFAULT_WINDOW))
        self.overlap = int(meta.get("overlap", DEFAULT_OVERLAP))

    @property
    def crack_level(self) -> int:
        """The 8-bit probability from which a pixel is crack: the model's threshold on the 0-255 scale."""
        return crack_level(self.threshold)

    def details(self) -> str:
        return f", windows of {self.window} px"

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Crack probabilities ``(N, 1, h, w)`` float32 of a ``uint8`` batch ``(N, 3, h, w)`` of any size."""
        return mirrored_mean(self.session(), batch, self.tta, spatial=True)

    def probability_map(
        self,
        photo: ImageInput,
        window: int | None = None,
        overlap: int | None = None,
        batch_size: int = DEFAULT_WINDOWS_PER_BATCH,
        out: np.ndarray | None = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> np.ndarray:
        """The crack probability of each pixel of ``photo`` (a path, PIL image or ``uint8`` ``(H, W, 3)`` array) as
        ``uint8`` ``(H, W)``, 255 = probability 1: windows of ``window`` px (default: the model's) overlapping by
        ``overlap`` px, ``batch_size`` at a time, written into ``out`` when given (e.g. a ``np.memmap``)."""
        window, overlap = self.windows(window, overlap, batch_size)
        return segment_photo(as_rgb(photo, max_pixels), self.probabilities, window, overlap, batch_size, out)

    def windows(self, window: int | None = None, overlap: int | None = None, batch_size: int = 1) -> tuple[int, int]:
        """``(window, overlap)``: the model's where not given, checked."""
        window, overlap = window or self.window, self.overlap if overlap is None else overlap
        if batch_size < 1 or not 0 <= overlap < window:
            raise CrackLightningError(
                f"window={window}, overlap={overlap}, batch_size={batch_size}: pass a window "
                "larger than the overlap, an overlap of 0 or more and at least 1 window a batch"
            )
        return window, overlap

    def scan_task(self, **options: Any) -> CrackTask:
        """How :meth:`scan` and :func:`crack_lightning.scan` scan photos with this model: ``threshold``,
        ``low_threshold``, ``window``, ``overlap``, ``batch_size``, ``max_pixels``
        (:class:`~crack_lightning.scanning.tasks.CrackTask`) and how cracks are measured: ``scale`` (``"auto"``: each photo's from a marker card, a GeoTIFF or drone metadata;
        ``"none"``; or mm per pixel, as ``mm_per_px``, which wins), ``marker_mm``, ``min_area``,
        ``width_limits_mm``, ``width_classes`` (:class:`~crack_lightning.measure.measuring.Measuring`)."""
        measuring = {k: options.pop(k) for k in MEASURING_OPTIONS if k in options}
        measuring["scale"], measuring["mm_per_px"] = scale_option(measuring.get("scale"), measuring.get("mm_per_px"))
        for key in ("width_limits_mm", "width_classes"):
            if key in measuring:
                measuring[key] = tuple(measuring[key])
        return CrackTask(self, measuring=Measuring(**measuring), **options)

    def scan(self, photo: ImageInput, **options: Any) -> CrackMap:
        """Segment one photo (path, PIL image or ``uint8`` ``(H, W, 3)`` array) and measure its cracks: a
        :class:`~crack_lightning.scanning.results.CrackMap`; ``options`` as :meth:`scan_task`'s."""
        name = str(photo) if isinstance(photo, (str, os.PathLike)) else "photo"
        (result,) = self.scan_task(**options).results([(name, photo)])
        if result.error:
            raise CrackLightningError(result.error)
        return result

    def predict(self, images: Images, **options: Any) -> list[CrackMap]:
        """:meth:`scan` of each image (a path, a folder or ``.txt`` list of them, a PIL image, an array, or a list of
        these), as the classifier's ``predict`` takes them; an unreadable file is an error."""
        return [self.scan(image, **options) for image in image_list(images)]
