"""Formats beyond PIL's own: HEIC/HEIF through pillow-heif, and TIFFs PIL cannot decode (float RGB, some tiled
or BigTIFF files) through tifffile. Every reader opens files through :func:`crack_lightning.io.images.open_checked`,
which calls these, so fit, predict and scan read the same formats alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from PIL import Image

HEIF_EXTENSIONS = (".heic", ".heif", ".hif")
TIFF_EXTENSIONS = (".tif", ".tiff")


@lru_cache(maxsize=1)
def register_heif() -> bool:
    """Teach PIL to open HEIC/HEIF (phones' default format) once per process; False without pillow-heif, when a
    HEIC file is then reported as unreadable with PIL's own reason."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    # thumbnails=False: a HEIC's embedded thumbnails are never wanted here, and skipping them reads less
    register_heif_opener(thumbnails=False)
    return True


def read_other_format(path: str | os.PathLike, check_size: Callable[[int, int], None]) -> Image.Image | None:
    """A file PIL cannot open, as an 8-bit RGB PIL image, or None when no reader here knows its type.

    TIFF only: tifffile decodes any sample type (float RGB, which PIL refuses) and compression (with imagecodecs);
    ``check_size(width, height)`` sees its header before anything is decoded (the pixel limit raises there).
    """
    if Path(path).suffix.lower() not in TIFF_EXTENSIONS:
        return None
    import tifffile

    from crack_lightning.io.pixels import as_rgb8

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            check_size(page.imagewidth, page.imagelength)
            values = page.asarray()
    except (tifffile.TiffFileError, ValueError, NotImplementedError) as err:
        raise OSError(str(err)) from err  # open_checked turns it into one line naming the file
    if values.ndim == 3 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
        values = values.transpose(1, 2, 0)  # (samples, H, W) -> (H, W, samples)
    return Image.fromarray(as_rgb8(values))
