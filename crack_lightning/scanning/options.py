"""How a classifier's scan cuts photos into tiles and labels them: one options object that holds the defaults and the
checks, shared by the Python API, the scan task, :func:`~crack_lightning.scanning.tile_map.scan_photos` and the
command. Its errors name the field (``tile: 0; ...``); the command names its flag instead
(:meth:`crack_lightning.errors.OptionError.for_flag`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from crack_lightning.errors import OptionError
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD, check_threshold

# Chosen with bench/scan_quality.py on 300 real crack photos (docs/scan-quality.md).
DEFAULT_TILE = 128  # photo pixels
DEFAULT_CONTEXT = 0.125  # share of the tile side seen around it on each side: a crack along an edge is seen whole
DEFAULT_BATCH = 32  # tiles a batch


@dataclass(frozen=True)
class TileOptions:
    """Square tiles of ``tile`` px every ``stride`` px (``None``: the tile, no overlap), each seen with ``context``
    of its side around it, labelled crack from ``threshold``, ``batch_size`` tiles a batch."""

    tile: int = DEFAULT_TILE
    stride: int | None = None
    context: float = DEFAULT_CONTEXT
    threshold: float = DEFAULT_THRESHOLD
    batch_size: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if self.stride is None:
            object.__setattr__(self, "stride", self.tile)
        for name in ("tile", "stride", "batch_size"):
            if getattr(self, name) < 1:
                raise OptionError(name, f"{getattr(self, name)}; pass a whole number of at least 1")
        if self.context < 0:
            raise OptionError("context", f"{self.context}; pass 0 (the tile alone) or a positive share of the tile")
        check_threshold(self.threshold)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
