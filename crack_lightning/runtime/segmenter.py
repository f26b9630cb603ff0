"""A crack segmenter as an exported graph, run by ONNX Runtime or OpenVINO: no torch, torchvision or Lightning.

    from crack_lightning import load_model
    segmenter = load_model("runs/segment/version_0/checkpoints/last.ckpt")   # or an .onnx written by export
    probability = segmenter.probability_map("photo.jpg")   # uint8 (H, W): 0 = sure no crack, 255 = sure crack

Photos of any size run in overlapping windows blended back (:func:`crack_lightning.runtime.windows.segment_photo`): memory
stays bounded by a band of windows, whatever the photo's size. The predictor only: :mod:`crack_lightning.scanning.models`
adds ``scan`` (``segmenter.scan("photo.jpg")``: a CrackMap, the cracks measured, in mm from a marker card in the
photo or at ``scale=0.2`` mm per pixel), which
:func:`crack_lightning.load_model`'s models have.
"""

from __future__ import annotations

import json

import numpy as np

from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.io.images import MAX_PIXELS, ImageInput, as_rgb
from crack_lightning.runtime.exported import ExportedModel, mirrored_mean
from crack_lightning.runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW, segment_photo
from crack_lightning.tasks.segmentation import SEGMENTATION

# a 512-px window is ~300 MB of activations in ONNX Runtime; more a batch is no faster on a CPU
DEFAULT_WINDOWS_PER_BATCH = 1
# hysteresis from strong into weak crack pixels, for a model whose metadata names no low_threshold: off, as measured
# on our synthetic photos (docs/segmentation.md#hysteresis-recall-at-the-operating-point)
DEFAULT_LOW_THRESHOLD: float | None = None


def crack_level(threshold: float) -> int:
    """The 8-bit probability from which a pixel of a probability map is crack."""
    return int(round(threshold * 255))


class Segmenter(ExportedModel):
    """An exported crack segmenter (see :class:`~crack_lightning.runtime.exported.ExportedModel` for the options;
    ``tta: hflip`` averages each window's probabilities with its mirror image's)."""

    task = SEGMENTATION.name

    def __init__(self, graph: bytes, source: str = "", **options) -> None:
        super().__init__(graph, source, **options)
        meta = self.metadata
        if meta.get("task") != self.task:
            raise CrackLightningError(
                f"{source}: not a crack_lightning segmenter graph (its metadata says no task: {self.task})"
            )
        self.threshold = float(meta["threshold"])
        # a model may carry its own, chosen with its threshold; None: pixels at the threshold only
        self.low_threshold = float(meta["low_threshold"]) if "low_threshold" in meta else DEFAULT_LOW_THRESHOLD
        # and its own smallest crack, chosen against false alarms on sound concrete; None: the scan's default
        self.min_area = int(meta["min_area"]) if "min_area" in meta else None
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
        answer = segment_photo(as_rgb(photo, max_pixels), self.probabilities, window, overlap, batch_size, out)
        self.release_memory()
        return answer

    def release_memory(self) -> None:
        """Hand back the memory the runtime kept from the largest window (ONNX Runtime's arena), e.g. between photos."""
        release = getattr(self.session(), "release", None)
        if release is not None:
            release()

    def windows(self, window: int | None = None, overlap: int | None = None, batch_size: int = 1) -> tuple[int, int]:
        """``(window, overlap)``: the model's where not given, checked."""
        window, overlap = self.window if window is None else window, self.overlap if overlap is None else overlap
        check_windows(window, overlap, batch_size)
        return window, overlap


def check_windows(window: int | None, overlap: int | None, batch_size: int | None = None) -> None:
    """The checks of a segmenter's windows, each value where given (``None``: the model's, checked with it)."""
    if window is not None and window < 1:
        raise OptionError("window", f"{window}; pass a whole number of at least 1")
    if overlap is not None and not 0 <= overlap < (overlap + 1 if window is None else window):
        raise OptionError("overlap", f"{overlap}; pass 0 or more, smaller than the window ({window} px)")
    if batch_size is not None and batch_size < 1:
        raise OptionError("batch_size", f"{batch_size}; pass a whole number of at least 1")
