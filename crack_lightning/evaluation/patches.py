"""Patches without masks (``Positive/`` crack, ``Negative/`` sound, as Özgenel's dataset): the share of each in
which a scan finds a crack (of at least the scan's ``min_area`` pixels), with its 95% Wilson interval."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.evaluation.intervals import wilson
from crack_lightning.io.images import find_images

if TYPE_CHECKING:
    from crack_lightning.scanning.tasks import CrackTask

PATCH_CLASSES = {"Positive": "crack", "Negative": "sound"}


def failed(name: str, error: str) -> str:
    """A scan's error for one file, naming it once."""
    return error if name in error else f"{name}: {error}"


def patch_shares(task: CrackTask, folder: str | os.PathLike, limit: int | None = None) -> dict:
    """``{"folder", "min_area", "Positive": {...}, "Negative": {...}}``: for each class folder, its ``patches``,
    ``crack_found`` (patches with a crack), ``share`` and ``share_95ci``; the first ``limit`` patches of each when
    given. An unreadable patch is an error naming it."""
    folder = Path(folder).expanduser()
    shares: dict = {"folder": str(folder), "min_area": task.measuring.min_area}
    for kind in PATCH_CLASSES:
        if not (folder / kind).is_dir():
            raise OptionError("patches", f"no folder {folder / kind}; pass a folder with Positive/ and Negative/")
        paths = find_images(folder / kind, option="patches")[:limit]
        found = 0
        for result in task.results((str(path), path) for path in paths):
            if result.error:
                raise CrackLightningError(failed(result.name, result.error))
            found += bool(result.cracks)
        low, high = wilson(found, len(paths))
        shares[kind] = {
            "patches": len(paths),
            "crack_found": found,
            "share": found / max(1, len(paths)),
            "share_95ci": [low, high],
        }
    return shares
