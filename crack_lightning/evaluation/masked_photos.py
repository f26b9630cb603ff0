"""A folder of photos with true crack masks, as a segmenter is trained and evaluated on: ``images/NAME.ext`` and
``masks/NAME.png`` (the same size; grey above 127 = crack); the photos' groups and the two halves of them."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.io.images import IMG_EXTENSIONS

# A group: the name up to the first '-' or '.', so that crops of one photograph (11125-1.jpg, 11125-2.jpg) stay
# together; the pattern of configs/segment.yaml's --data.group_pattern.
GROUP_PATTERN = re.compile(r"^([^-.]+)")


@dataclass(frozen=True)
class MaskedPhoto:
    name: str  # the file name in images/
    image: Path
    mask: Path
    group: str  # photos of one group go to the same half


def group_of(name: str) -> str:
    found = GROUP_PATTERN.match(name)
    return found.group(1) if found else name


def split_names(split_file: str | os.PathLike, split: str) -> set[str]:
    """The file names of the photos of ``split`` in a ``split.csv`` written by a segmenter's fit."""
    path = Path(split_file).expanduser()
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise OptionError(
            "split_file", f"cannot read {path} ({err.strerror}); pass the split.csv of a fit run"
        ) from None
    if rows and not {"path", "split"} <= set(rows[0]):
        raise OptionError("split_file", f"{path} has no path and split columns; pass the split.csv of a fit run")
    return {Path(row["path"]).name for row in rows if row["split"] == split}


def masked_photos(
    root: str | os.PathLike, split_file: str | os.PathLike | None = None, split: str = "val", limit: int | None = None
) -> list[MaskedPhoto]:
    """The photos of ``root/images/`` with their masks and groups, sorted by name: those of ``split`` in
    ``split_file`` when given, the first ``limit`` when given. A photo without its mask is an error naming it."""
    root = Path(root).expanduser()
    images, masks = root / "images", root / "masks"
    for folder in (images, masks):
        if not folder.is_dir():
            raise OptionError(
                "source", f"no folder {folder}; pass a folder with images/NAME.jpg and masks/NAME.png (255 = crack)"
            )
    files = sorted(p for p in images.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    if split_file is not None:
        chosen = split_names(split_file, split)
        files = [p for p in files if p.name in chosen]
    files = files[:limit]
    if not files:
        raise OptionError("source", f"no photos in {images}" + (f" of split {split!r}" if split_file else ""))
    for path in files:
        if not (masks / f"{path.stem}.png").is_file():
            raise CrackLightningError(
                f"{path}: no mask {masks / (path.stem + '.png')}; every photo needs masks/NAME.png of its size"
            )
    groups = [group_of(p.name) for p in files]
    if len(set(groups)) < 2:  # names without groups (synth-000001.jpg ...): each photo its own
        groups = [p.name for p in files]
    return [MaskedPhoto(p.name, p, masks / f"{p.stem}.png", g) for p, g in zip(files, groups)]


def read_truth(photo: MaskedPhoto, size: tuple[int, int]) -> np.ndarray:
    """The true crack mask ``(H, W)`` bool of ``photo``, checked to be ``size`` ``(H, W)`` (the photo's)."""
    try:
        with Image.open(photo.mask) as image:
            grey = np.asarray(image.convert("L"))
    except OSError as err:
        raise CrackLightningError(f"{photo.mask}: unreadable mask ({err}); pass an 8-bit PNG, 255 = crack") from None
    if grey.shape != tuple(size):
        raise CrackLightningError(
            f"{photo.mask}: mask of {grey.shape[1]}x{grey.shape[0]} px for a photo of {size[1]}x{size[0]}; "
            "pass a mask of the photo's size"
        )
    return grey > 127


def halves(groups: list[str]) -> dict[str, set[str]]:
    """Every other group (sorted) in half 1, the rest in half 2: two disjoint sets, to show how much figures move."""
    ordered = sorted(set(groups))
    return {"half 1": set(ordered[0::2]), "half 2": set(ordered[1::2])}
