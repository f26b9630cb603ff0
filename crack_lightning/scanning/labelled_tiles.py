"""Tiles: turn photos with pixel masks into an ImageFolder of labelled tiles, to adapt a model to a new surface."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from crack_lightning.errors import OptionError
from crack_lightning.io.images import find_images, own_pixel_limit, read_rgb
from crack_lightning.options import at_least
from crack_lightning.results.tiling import context_window, tile_boxes

TILE_NAME = "{photo}_x{x}_y{y}.jpg"
DEFAULT_CRACK_FRACTION = 0.01  # share of a tile's mask pixels that makes it a crack tile


def read_mask(path: Path, width: int, height: int) -> np.ndarray:
    """A mask as a boolean ``(height, width)`` array: True where the pixel is crack (grey value above 127)."""
    try:
        with own_pixel_limit(), Image.open(path) as im:
            mask = np.asarray(ImageOps.exif_transpose(im).convert("L")) > 127
    except OSError as err:
        raise OptionError("masks", f"{path} cannot be read as an image ({err}); replace it") from err
    if tuple(mask.shape) != (height, width):
        raise OptionError(
            "masks",
            f"{path} is {mask.shape[1]}x{mask.shape[0]} but its photo is {width}x{height}; give each photo a mask of its size",
        )
    return mask


def tile_truth(mask: np.ndarray, boxes: list[tuple[int, int, int, int]], crack_fraction: float = 0.01) -> np.ndarray:
    """Each tile's truth from a crack mask: 1 = crack (at least ``crack_fraction`` of its pixels are crack),
    0 = no crack (none are), -1 = in between, left out."""
    fractions = np.array([mask[y : y + h, x : x + w].mean() for x, y, w, h in boxes], dtype=np.float64)
    truth = np.full(len(fractions), -1, dtype=np.int64)
    truth[fractions >= crack_fraction] = 1
    truth[fractions == 0] = 0
    return truth


def cut_tiles(
    photos: str | os.PathLike,
    masks: str | os.PathLike,
    output: str | os.PathLike,
    tile: int,
    stride: int | None = None,
    crack_fraction: float = DEFAULT_CRACK_FRACTION,
    context: float = 0.0,
    crack_class: str = "Positive",
    sound_class: str = "Negative",
    overwrite: bool = False,
) -> dict[str, int]:
    """Cut every photo into tiles; a tile is ``crack_class`` when at least ``crack_fraction`` of its mask pixels are
    crack, ``sound_class`` when none are, and left out in between. Masks are ``masks/<photo path>`` with ``.png``.
    With ``context``, each tile's image also holds that share of its side of the photo around it on every side (as
    ``scan --context`` shows the network); its label is still the tile's own.

    Tile names carry the photo's name (:data:`TILE_NAME`), so :data:`GROUP_PATTERN` keeps a photo's tiles on one
    side of a split. Returns counts of photos, tiles per class and left-out tiles.
    """
    at_least("tile", tile)
    at_least("stride", stride, none=True)
    if not 0 < crack_fraction <= 1:
        raise OptionError("crack_fraction", f"{crack_fraction}; pass a share of pixels in (0, 1]")
    if context < 0:
        raise OptionError("context", f"{context}; pass 0 (the tile alone) or a positive share of the tile side")
    margin = round(context * tile)
    photos, masks, output = Path(photos).expanduser(), Path(masks).expanduser(), Path(output).expanduser()
    if not photos.is_dir():
        raise OptionError("photos", f"no folder {photos}; pass the folder of photos")
    if not masks.is_dir():
        raise OptionError("masks", f"no folder {masks}; pass the folder of masks (same names, .png)")
    folders = [output / crack_class, output / sound_class]
    if any(f.is_dir() and any(f.iterdir()) for f in folders) and not overwrite:
        raise OptionError("output", f"{output} already holds tiles; pass another folder, or overwrite it")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    counts = {"photos": 0, crack_class: 0, sound_class: 0, "left_out": 0}
    for path in find_images(photos, option="photos"):
        relative = path.relative_to(photos)
        image = read_rgb(path)
        height, width = image.shape[:2]
        mask = read_mask((masks / relative).with_suffix(".png"), width, height)
        name = "__".join(relative.with_suffix("").parts)  # photos in sub-folders keep distinct names
        boxes = tile_boxes(width, height, tile, stride or tile)
        for (x, y, w, h), truth in zip(boxes, tile_truth(mask, boxes, crack_fraction).tolist()):
            if truth < 0:
                counts["left_out"] += 1
                continue
            label = crack_class if truth == 1 else sound_class
            cx, cy, cw, ch = context_window((x, y, w, h), margin, width, height)
            crop = image[cy : cy + ch, cx : cx + cw]
            Image.fromarray(crop).save(output / label / TILE_NAME.format(photo=name, x=x, y=y), quality=95)
            counts[label] += 1
        counts["photos"] += 1
    return counts
