"""What every task's result for one photo shares: its values (numbers as numbers), the CSV rows written from them,
``to_dict`` for JSON, and ``save``. A task's result (:mod:`crack_lightning.results.maps`, or a task of its own) says
its columns, their number formats in the CSV files, and fills in its values and pictures."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from crack_lightning.io.atomic import save_picture, write_atomically
from crack_lightning.io.scan_files import MASKS, MAX_SIDE, THUMBNAILS

# (folder, suffix, format, save options, picture): one of a photo's pictures; made one at a time (bounded memory)
Picture = tuple[str, str, str, dict, Image.Image]
PNG, JPEG = {"compress_level": 1}, {"quality": 85}  # zlib's fastest level: 4x faster than the default, ~1.3x larger


def plain(value: Any) -> Any:
    """A NumPy number as Python's (JSON takes it; the CSV writer writes it as Python would)."""
    return value.item() if isinstance(value, np.generic) else value


def csv_row(columns: Sequence[str], values: Sequence[Any], formats: dict[str, str]) -> list:
    """``values`` as a CSV file writes them: a column of ``formats`` by its format spec, None empty, others as they
    are."""
    return ["" if v is None else format(v, formats[c]) if c in formats else plain(v) for c, v in zip(columns, values)]


@dataclass
class PhotoResult:
    """One photo's scan, or the error that stopped it; a task's subclass holds what its model found."""

    name: str
    width: int = 0
    height: int = 0
    image: np.ndarray | None = field(default=None, repr=False)  # uint8 (H, W, 3), for the pictures
    error: str = ""
    # Work still running in a thread (a scan measures cracks while the pictures are drawn): a Future of the values
    # of fields it fills in. finish() waits for it; the pictures never need it.
    pending: Future | None = field(default=None, repr=False, compare=False, kw_only=True)

    photo_columns: ClassVar[list[str]] = []  # photos.csv's header
    detail_columns: ClassVar[list[str]] = []  # the header of the scan's second CSV (tiles.csv, cracks.csv...)
    formats: ClassVar[dict[str, str]] = {}  # a float column's format in the CSV files ("{:.6f}": ".6f")
    details_name: ClassVar[str] = "details"  # what the detail rows are, as to_dict's key: tiles, cracks

    def finish(self) -> PhotoResult:
        """Wait for :attr:`pending` work and fill in its values (at once where there is none); returns itself."""
        if self.pending is not None:
            for name, value in self.pending.result().items():
                setattr(self, name, value)
            self.pending = None
        return self

    def photo_values(self) -> list:
        """The photo's values, in :attr:`photo_columns`' order: numbers as numbers, None where there is none."""
        raise NotImplementedError

    def detail_values(self) -> list[list]:
        """Each detail row's values, in :attr:`detail_columns`' order (a tile's, a crack's)."""
        raise NotImplementedError

    @property
    def summary(self) -> dict[str, Any]:
        """The photo's values by ``photos.csv``'s columns: numbers as numbers (format them only to print them)."""
        return dict(zip(self.photo_columns, map(plain, self.photo_values())))

    def details(self) -> list[dict[str, Any]]:
        """The detail rows by :attr:`detail_columns`, numbers as numbers."""
        return [dict(zip(self.detail_columns, map(plain, row))) for row in self.detail_values()]

    def to_dict(self) -> dict[str, Any]:
        """``{"summary": ..., <details_name>: [...]}``, ready for ``json.dumps``."""
        return {"summary": self.summary, self.details_name: self.details()}

    def photo_row(self) -> list:
        """Its ``photos.csv`` row, as written."""
        return csv_row(self.photo_columns, self.photo_values(), self.formats)

    def detail_rows(self) -> list[list]:
        """Its rows of the scan's second CSV (``tiles.csv``, ``cracks.csv``...), as written."""
        return [csv_row(self.detail_columns, row, self.formats) for row in self.detail_values()]

    def pictures(self, max_side: int = MAX_SIDE, masks: bool = True) -> Iterator[Picture]:
        """The scan folder's pictures of the photo: overlay, thumbnail (and mask), one at a time."""
        raise NotImplementedError

    def plot(self, max_side: int = MAX_SIDE) -> Image.Image:
        """The photo with what was found drawn over it (at most ``max_side`` px long)."""
        raise NotImplementedError

    def save(self, folder: str | os.PathLike) -> list[Path]:
        """Write ``<name>.png`` (:meth:`plot`), ``<name>.mask.png`` and ``<name>.csv`` (its detail rows) into
        ``folder``; returns the paths."""
        if self.error:
            raise ValueError(f"{self.name}: {self.error}")
        folder = Path(folder).expanduser()
        stem = PurePosixPath(self.name.replace(os.sep, "/")).name or "photo"
        written = []
        for kind, suffix, image_format, options, picture in self.pictures(masks=True):
            if kind != THUMBNAILS:
                path = folder / f"{stem}{'.mask' if kind == MASKS else ''}{suffix}"
                save_picture(picture, path, image_format, **options)
                written.append(path)
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([self.detail_columns, *self.detail_rows()])
        written.append(write_atomically(folder / f"{stem}.csv", text.getvalue()))
        return written
