"""How a scan works, per task: one options object each, holding the defaults and the checks, shared by the Python API
(:func:`crack_lightning.scan`, a model's ``scan``), the scan tasks and the command. :class:`TileOptions`: how a
classifier's scan cuts photos into tiles and labels them; :class:`CrackOptions`: how a segmenter's scan finds and
measures cracks. Their errors name the field (``tile: 0; ...``); the command names its flag instead
(:meth:`crack_lightning.errors.OptionError.for_flag`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crack_lightning.errors import OptionError
from crack_lightning.io.images import MAX_PIXELS
from crack_lightning.measure.measuring import Measuring, scale_option
from crack_lightning.options import Options, at_least, probability
from crack_lightning.runtime.backends import cpu_count
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD, check_threshold
from crack_lightning.runtime.segmenter import DEFAULT_WINDOWS_PER_BATCH, check_windows

# Chosen with bench/scan_quality.py on 300 real crack photos (docs/scan-quality.md).
DEFAULT_TILE = 128  # photo pixels
DEFAULT_CONTEXT = 0.125  # share of the tile side seen around it on each side: a crack along an edge is seen whole
DEFAULT_BATCH = 32  # tiles (predict: images) a batch on a CPU
GPU_BATCH = 256  # ... on a GPU, which needs large batches to be busy
GPU_WINDOWS = 8  # a segmenter's windows a batch on a GPU
GPU_WORKERS = 8  # most threads decoding photos ahead for a GPU, which would otherwise wait for each decode


def workers_for(model: Any, workers: int | None) -> int:
    """``workers``, or by default none on a CPU and up to :data:`GPU_WORKERS` (the model's threads) for a GPU."""
    if workers is not None:
        return workers
    return min(GPU_WORKERS, model.threads or cpu_count()) if model.device == "cuda" else 0


@dataclass(frozen=True)
class TileOptions(Options):
    """Square tiles of ``tile`` px every ``stride`` px (``None``: the tile, no overlap), each seen with ``context``
    of its side around it, labelled crack from ``threshold``, ``batch_size`` tiles a batch (``None``: :data:`DEFAULT_BATCH` on a
    CPU, :data:`GPU_BATCH` on a GPU); ``masks`` also writes the probability map; photos of at most ``max_pixels`` (``None``: any);
    ``workers`` threads decode photos ahead (``None``: none on a CPU, up to :data:`GPU_WORKERS` for a GPU)."""

    tile: int = DEFAULT_TILE
    stride: int | None = None
    context: float = DEFAULT_CONTEXT
    threshold: float = DEFAULT_THRESHOLD
    batch_size: int | None = None
    masks: bool = False
    max_pixels: int | None = MAX_PIXELS
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.stride is None:
            object.__setattr__(self, "stride", self.tile)
        for name in ("tile", "stride"):
            at_least(name, getattr(self, name))
        at_least("batch_size", self.batch_size, none=True)
        at_least("max_pixels", self.max_pixels, none=True)
        at_least("workers", self.workers, 0, none=True)
        if self.context < 0:
            raise OptionError("context", f"{self.context}; pass 0 (the tile alone) or a positive share of the tile")
        check_threshold(self.threshold)

    def batch_for(self, device: str) -> int:
        return self.batch_size or (GPU_BATCH if device == "cuda" else DEFAULT_BATCH)


@dataclass(frozen=True)
class CrackOptions(Options):
    """Windows of ``window`` px overlapping by ``overlap`` (``None``: the model's), ``batch_size`` a batch (``None``:
    :data:`DEFAULT_WINDOWS_PER_BATCH` on a CPU, :data:`GPU_WINDOWS` on a GPU); crack pixels from ``threshold``
    (``None``: the model's) and, by hysteresis, down to ``low_threshold`` where they touch them (``None``: the model's; at or above ``threshold``: off); cracks
    measured as :class:`~crack_lightning.measure.measuring.Measuring` says, its fields given flat: ``scale``
    (``"auto"``: each photo's from a marker card, a GeoTIFF or drone metadata; ``"none"``; or mm per pixel, as
    ``mm_per_px``, which wins), ``marker_mm``, ``min_area`` (``None``: the model's, else 25 px), ``width_limits_mm``,
    ``width_classes``; photos of at
    most ``max_pixels``; ``workers`` as :class:`TileOptions`'."""

    threshold: float | None = None
    low_threshold: float | None = None
    window: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    scale: str | float | None = Measuring.scale
    mm_per_px: float | None = Measuring.mm_per_px
    marker_mm: float | None = Measuring.marker_mm
    min_area: int | None = None
    width_limits_mm: tuple[float, ...] = Measuring.width_limits_mm
    width_classes: tuple[str, ...] = Measuring.width_classes
    max_pixels: int | None = MAX_PIXELS
    workers: int | None = None

    def __post_init__(self) -> None:
        probability("threshold", self.threshold, none=True)
        probability("low_threshold", self.low_threshold, none=True)
        check_windows(self.window, self.overlap, self.batch_size)
        at_least("max_pixels", self.max_pixels, none=True)
        at_least("workers", self.workers, 0, none=True)
        scale, mm_per_px = scale_option(self.scale, self.mm_per_px)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "mm_per_px", mm_per_px)
        object.__setattr__(self, "width_limits_mm", tuple(self.width_limits_mm))
        object.__setattr__(self, "width_classes", tuple(self.width_classes))
        _ = self.measuring  # its checks

    @property
    def measuring(self) -> Measuring:
        """How cracks are measured, with no model's smallest crack (:meth:`measuring_for`)."""
        return self.measuring_for(None)

    def measuring_for(self, model_min_area: int | None) -> Measuring:
        """How cracks are measured for a model whose own smallest crack is ``model_min_area``: ``min_area`` if
        given, else the model's, else the default's."""
        min_area = next(a for a in (self.min_area, model_min_area, Measuring.min_area) if a is not None)
        return Measuring(self.mm_per_px, min_area, self.width_limits_mm, self.width_classes, self.scale, self.marker_mm)

    def batch_for(self, device: str) -> int:
        return self.batch_size or (GPU_WINDOWS if device == "cuda" else DEFAULT_WINDOWS_PER_BATCH)
