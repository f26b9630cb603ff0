"""Large TIFFs (orthomosaics, BigTIFF) read window by window: memory follows the window, not the photo.

tifffile (with imagecodecs' codecs) is the reader: it is pure Python over NumPy, already installed with
scikit-image, reads BigTIFF and every compression drone software writes (JPEG, LZW, Deflate, zstd), and exposes each
tile's offset and decoder, so a window decodes only the tiles under it. (rasterio/GDAL would do it too, at the cost of
a large native stack for what is here a few dozen lines; PIL decodes a TIFF whole.)

A window is assembled from whole rows of tiles, decoded once each and kept while the scan, which moves down the photo,
still needs them (:class:`TiffWindows` keeps the last few). Pixels of any depth become 8-bit RGB as in
:mod:`crack_lightning.io.pixels`; float photos are scaled by the whole photo's range, so every window alike. Where the
photo has an alpha channel or a GDAL no-data value, :meth:`TiffWindows.valid` says which pixels hold data.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.pixels import as_rgb8, float_range

WINDOWED_PIXELS = 64_000_000  # striped TIFFs from this size are read window by window too; tiled ones always
KEEP_ROWS = 1024  # photo rows of decoded tiles kept: a segmenter's row of 512-px windows, and the next one's overlap
GDAL_NODATA = 42113  # TIFF tag of GDAL's no-data value (ASCII)


class Orthomosaic(NamedTuple):
    """A photo to read window by window (:func:`windowed_tiff`), handed from a scan's loader to its loop undecoded."""

    path: str | os.PathLike


def windowed_tiff(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a TIFF to read window by window: tiled (as orthomosaics are), or striped and large;
    grey or RGB (with alpha or not), one sample plane, not rotated. Other TIFFs are decoded whole, through PIL."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            orientation = page.tags.get("Orientation")
            return (
                (page.is_tiled or page.imagewidth * page.imagelength >= WINDOWED_PIXELS)
                and page.photometric
                in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR)
                and page.planarconfig == tifffile.PLANARCONFIG.CONTIG
                and page.imagedepth == 1
                and (orientation is None or orientation.value == 1)
                and page.dtype is not None
            )
    except (tifffile.TiffFileError, OSError, ValueError):
        return False  # PIL's reader then says what is wrong with the file


class TiffWindows:
    """The first image of a TIFF, readable a window at a time; use it as a context manager (it holds the file open).
    The decoded tile rows of the last ``keep_rows`` photo rows are kept, so that windows moving down the photo decode
    each tile once.

    ``read(top, bottom, left, right)`` is ``uint8`` RGB ``(bottom - top, right - left, 3)``. ``on_rows(top, rows)``,
    when given, sees every row of the photo once, top to bottom, as soon as it is decoded (a preview is built from
    them without a second pass).
    """

    def __init__(self, path: str | os.PathLike, on_rows=None, keep_rows: int = KEEP_ROWS) -> None:
        import tifffile

        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(path)
        except (tifffile.TiffFileError, OSError) as err:
            raise CrackLightningError(f"{path}: cannot be read as an image ({err}); remove or replace it") from err
        page = self._page = self._tif.pages.first
        self.width, self.height = page.imagewidth, page.imagelength
        self.tags = {tag.code: tag.value for tag in page.tags.values()}
        if page.is_tiled:
            self._tile_h, self._tile_w = page.tilelength, page.tilewidth
        else:
            self._tile_h, self._tile_w = min(page.rowsperstrip or self.height, self.height), self.width
        self._columns = math.ceil(self.width / self._tile_w)
        self._kept = math.ceil(keep_rows / self._tile_h) + 1
        samples = page.samplesperpixel
        extra = tuple(int(e) for e in page.extrasamples)
        # alpha: the first extra sample when it is one (1 associated, 2 unassociated); grey + alpha or RGB + alpha
        self._alpha = samples - len(extra) if extra and extra[0] in (1, 2) else None
        nodata = self.tags.get(GDAL_NODATA)
        try:
            self._nodata = float(str(nodata).strip("\x00 ")) if nodata is not None else None
        except ValueError:
            self._nodata = None
        self._rows: OrderedDict[int, np.ndarray] = OrderedDict()  # tile row -> decoded (tile_h, width, samples)
        self._lock = threading.Lock()
        self.on_rows, self._next_row, self._range = None, 0, None
        self._range = self._float_range() if np.dtype(page.dtype).kind == "f" else None
        self.on_rows = on_rows  # after the range's pass: the rows it decoded are not the scan's

    def __enter__(self) -> TiffWindows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._rows.clear()
        self._tif.close()

    @property
    def has_mask(self) -> bool:
        """Whether some pixels may hold no data (an alpha channel or a no-data value)."""
        return self._alpha is not None or self._nodata is not None

    def _decode_row(self, row: int) -> np.ndarray:
        """Tile row ``row`` as ``(rows, width, samples)`` in the file's type, decoded or from the kept ones."""
        if row in self._rows:
            self._rows.move_to_end(row)
            return self._rows[row]
        page, fh = self._page, self._tif.filehandle
        top = row * self._tile_h
        height = min(self._tile_h, self.height - top)
        out = None
        for column in range(self._columns):
            index = row * self._columns + column
            offset, count = page.dataoffsets[index], page.databytecounts[index]
            with self._lock:
                if count:
                    fh.seek(offset)
                    data = fh.read(count)
                else:
                    data = None  # an empty tile: no data there
            try:
                tile, _, shape = page.decode(data, index, jpegtables=page.jpegtables, jpegheader=page.jpegheader)
            except (ValueError, NotImplementedError, RuntimeError) as err:
                raise CrackLightningError(
                    f"{self.path}: tile {index} cannot be decoded ({err}); remove or replace the file"
                ) from err
            if out is None:
                out = np.zeros((height, self.width, page.samplesperpixel), page.dtype)
            left = column * self._tile_w
            width = min(self._tile_w, self.width - left)
            if tile is not None:
                out[:, left : left + width] = tile.reshape(shape)[0, :height, :width]
        self._rows[row] = out
        while len(self._rows) > self._kept:
            self._rows.popitem(last=False)
        if self.on_rows is not None and top == self._next_row:
            self.on_rows(top, as_rgb8(out, self._range), self._valid(out))
            self._next_row = top + height
        return out

    def _raw(self, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        if not (0 <= top < bottom <= self.height and 0 <= left < right <= self.width):
            raise ValueError(
                f"window rows {top}:{bottom}, columns {left}:{right} is outside {self.width}x{self.height}"
            )
        pieces = []
        for row in range(top // self._tile_h, (bottom - 1) // self._tile_h + 1):
            data, start = self._decode_row(row), row * self._tile_h
            # the window's columns of each tile row only: no full-width copy per window
            pieces.append(data[max(top, start) - start : min(bottom, start + len(data)) - start, left:right])
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def read(self, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        """Pixels of rows ``top:bottom`` and columns ``left:right`` as ``uint8`` RGB ``(h, w, 3)``."""
        return as_rgb8(self._raw(top, bottom, left, right), self._range)

    def _valid(self, raw: np.ndarray) -> np.ndarray | None:
        if self._alpha is not None:
            return raw[..., self._alpha] > 0
        if self._nodata is not None:
            colour = raw[..., : min(3, raw.shape[2])]
            return ~np.all(colour == np.asarray(self._nodata, raw.dtype), axis=2)
        return None

    def valid(self, top: int, bottom: int, left: int, right: int) -> np.ndarray | None:
        """Which pixels of the window hold data (``bool (h, w)``), or None when all of them do."""
        return self._valid(self._raw(top, bottom, left, right)) if self.has_mask else None

    def finish_rows(self) -> None:
        """Decode the rows no window asked for (the scan's last tiles end above them), so :attr:`on_rows` saw all."""
        if self.on_rows is not None:
            for row in range(self._next_row // self._tile_h, math.ceil(self.height / self._tile_h)):
                self._decode_row(row)

    def _float_range(self) -> tuple[float, float]:
        """A float photo's range (:func:`~crack_lightning.io.pixels.float_range`): from its SMin/SMaxSampleValue tags,
        else from one pass over its tiles, a row at a time."""
        low, high = self.tags.get(340), self.tags.get(341)  # SMinSampleValue, SMaxSampleValue
        if low is not None and high is not None:
            low, high = float(np.min(low)), float(np.max(high))
            return float_range(np.array([low, high]))
        lows, highs = [], []
        for row in range(math.ceil(self.height / self._tile_h)):
            values = self._decode_row(row)
            colour = values[..., : 3 if values.shape[2] >= 3 else 1]
            finite = colour[np.isfinite(colour)]
            if self._nodata is not None:
                finite = finite[finite != self._nodata]
            if finite.size:
                lows.append(finite.min())
                highs.append(finite.max())
        self._rows.clear()
        return float_range(np.array([min(lows), max(highs)])) if lows else (0.0, 1.0)
