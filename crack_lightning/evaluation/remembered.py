"""A segmenter that computes each photo's probability map once and remembers it: several post-processing settings
(thresholds, hysteresis) evaluated through the product at the cost of one pass of the network.

    model = RememberedMaps(crack_lightning.load_model("concrete-seg-v1"))
    for low in (0.5, 0.6, 0.7):
        print(crack_lightning.evaluate("photos/", model=model, low_threshold=low).table())
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from crack_lightning.io.images import MAX_PIXELS, ImageInput, as_rgb

if TYPE_CHECKING:
    from crack_lightning.runtime.segmenter import Segmenter
    from crack_lightning.scanning.tasks import CrackTask


class RememberedMaps:
    """``segmenter`` with its :meth:`probability_map` remembered by the photo's pixels and the windows; everything else
    is the segmenter's own. The maps stay in memory (1 byte a pixel): for sets of photos, not for surveys."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter
        self.maps: dict[tuple, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.segmenter, name)

    def probability_map(
        self,
        photo: ImageInput,
        window: int | None = None,
        overlap: int | None = None,
        batch_size: int = 1,
        out: np.ndarray | None = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> np.ndarray:
        image = as_rgb(photo, max_pixels)
        key = (
            hashlib.sha256(np.ascontiguousarray(image)).hexdigest(),
            image.shape,
            self.segmenter.windows(window, overlap),
        )
        if key not in self.maps:
            self.maps[key] = self.segmenter.probability_map(image, window, overlap, batch_size, max_pixels=None)
            self.maps[key].flags.writeable = False  # shared by every scan of the photo
        if out is None:  # a copy: a scan may change its map (a marker card's pixels are no cracks)
            return self.maps[key].copy()
        out[...] = self.maps[key]
        return out

    def scan_task(self, **options: Any) -> CrackTask:
        # the segmenter's own scan task, run with this object so that its maps come from here
        from crack_lightning.scanning.tasks import scan_task

        return scan_task(self, **options)  # type: ignore[return-value]
