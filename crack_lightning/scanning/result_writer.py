"""One photo's result written into a scan's folder, in the order that makes a kill safe: its pictures (each whole or
not at all), its detail rows (flushed), then its ``photos.csv`` row. A photo is done when its row is there."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TextIO

from crack_lightning.io.atomic import save_picture
from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.results.maps import PhotoResult


class ResultWriter:
    """Rows into two open CSV files (``details``: a row per tile or crack; ``photos``: a row per photo) and pictures
    into ``folder``'s picture folders (``masks``: the mask pictures too; overlays at most ``overlay_max_side``)."""

    def __init__(
        self, folder: Path, details: TextIO, photos: TextIO, overlay_max_side: int = MAX_SIDE, masks: bool = True
    ) -> None:
        self.dir, self.overlay_max_side, self.masks = folder, overlay_max_side, masks
        self._details, self._photos = details, photos
        self.details = csv.writer(details, lineterminator="\n")
        self.photos_csv = csv.writer(photos, lineterminator="\n")

    def write(self, result: PhotoResult, picture: str) -> None:
        """Write one photo's pictures (``overlays/<picture>.png``...), its detail rows and its ``photos.csv`` row, in
        that order; the pictures while its last work finishes (:meth:`PhotoResult.finish`)."""
        if not result.error:
            for folder, suffix, image_format, options, drawn in result.pictures(self.overlay_max_side, self.masks):
                save_picture(drawn, self.dir / folder / f"{picture}{suffix}", image_format, **options)
                del drawn
            self.details.writerows(result.finish().detail_rows())
            self._details.flush()
        self.photos_csv.writerow(result.finish().photo_row())
        self._photos.flush()

    def close(self) -> None:
        self._details.close()
        self._photos.close()


def cut_partial_line(path: Path) -> None:
    """Drop a last line cut short by a kill (a file that does not end with a newline)."""
    with open(path, "r+b") as f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return
        start = max(0, end - (1 << 16))
        while True:
            f.seek(start)
            tail = f.read(end - start)
            if b"\n" in tail or start == 0:
                break
            start = max(0, start - (1 << 16))
        f.truncate(start + tail.rfind(b"\n") + 1)
