"""The ``scan`` command's output folder: CSV files, pictures, settings, the lock, and resuming a scan cut short.

Crash safety: a photo's tiles (or cracks) are written and flushed first, then its pictures (each under a temporary
name, then renamed), then its ``photos.csv`` row. A photo is done when its row is there; resuming drops whatever a
killed run left of the photos without a row (tiles, a half-written last line, temporary pictures) and scans
them again. The folder is locked (``fcntl.flock``, released by the kernel when the process ends, even on
``kill -9``) so that two scans never write into it at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from crack_lightning.errors import CrackLightningError
from crack_lightning.images import find_images
from crack_lightning.report import PARTIAL_GLOB, draw_colour_bar, mask_image, overlay, save_atomically, thumbnail

if TYPE_CHECKING:
    from crack_lightning.scan import PhotoScan

TILES_CSV = "tiles.csv"
CRACKS_CSV = "cracks.csv"  # a segmentation scan's rows, one per crack (crack_lightning.crack_scan)
PHOTOS_CSV = "photos.csv"
OVERLAYS = "overlays"
MASKS = "masks"
THUMBNAILS = "thumbnails"
REPORT = "report.html"
SETTINGS = "scan.json"
LOCK = ".scan.lock"
RESULTS = (TILES_CSV, CRACKS_CSV, PHOTOS_CSV, OVERLAYS, MASKS, THUMBNAILS, REPORT, SETTINGS, "tiles.geojson", "cracks.geojson")
NO_DATA = "no data"  # tiles.csv's label of a tile in an orthomosaic's empty area (alpha 0, no-data value)
TILE_COLUMNS = ["photo", "x", "y", "width", "height", "crack_probability", "label"]
PHOTO_COLUMNS = ["photo", "width", "height", "tiles", "crack_tiles", "max_crack_probability", "label", "error"]
SAME_SCAN = ("tile", "stride", "context", "threshold", "model_sha256")  # a resumed scan must keep these
# A segmenter's scan (crack_lightning.crack_scan): a row per crack (crack_lightning.measure.Crack's fields) and per photo.
CRACK_COLUMNS = ["photo", "crack", "x", "y", "width", "height", "length_px", "mean_width_px", "max_width_px", "length_mm",
                 "mean_width_mm", "max_width_mm", "width_class"]
CRACK_PHOTO_COLUMNS = ["photo", "width", "height", "cracks", "total_length_px", "mean_width_px", "max_width_px",
                       "total_length_mm", "mean_width_mm", "max_width_mm", "max_crack_probability", "label", "error"]


def find_photos(source: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(name, path)`` of each photo in a folder (recursively), one file, or a ``.txt`` list of paths.

    Names are paths relative to the folder (or to the list's folder), else the full path. A folder's files of every
    type are listed: the scan gives each one it cannot read a ``photos.csv`` row saying why, rather than none.
    """
    source = Path(source).expanduser()
    base = source if source.is_dir() else source.parent
    named = []
    for path in find_images(source, option="--input", every_file=True):
        try:
            named.append((path.relative_to(base).as_posix(), path))
        except ValueError:
            named.append((str(path), path))
    return named


def picture_names(names: Iterable[str]) -> dict[str, str]:
    """A short, unique picture name for each photo name: a relative name as it is (sub-folders kept), else the
    file's name, with 8 hex digits of the full name's sha1 where two photos would share one (case ignored)."""
    plain = {}
    for name in set(names):
        path = PurePosixPath(name.replace(os.sep, "/"))
        inside = not path.is_absolute() and ".." not in path.parts and path.parts
        plain[name] = str(path) if inside else path.name or "photo"
    claims: dict[str, int] = {}
    for candidate in plain.values():
        claims[candidate.lower()] = claims.get(candidate.lower(), 0) + 1
    return {name: hashed_name(name, c) if claims[c.lower()] > 1 else c for name, c in plain.items()}


def hashed_name(name: str, candidate: str) -> str:
    path = PurePosixPath(candidate)
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return str(path.with_name(f"{path.stem}-{digest}{path.suffix}"))


@contextmanager
def lock_output(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s scan lock, or raise a one-line error naming the scan that holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; scans there are not guarded against each other
        yield
        return
    lock = open(folder / LOCK, "a+")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise CrackLightningError(
                f"--output: {folder} is being written by another scan ({holder}); wait for it to end, or pass another --output"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()}")
        lock.flush()
        yield
    finally:
        lock.close()  # releases the lock


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


def read_photo_rows(folder: Path, columns: list[str] = PHOTO_COLUMNS) -> list[dict[str, str]]:
    """The complete rows of ``photos.csv`` (of a scan whose columns are ``columns``), each photo once (its first row)."""
    path = folder / PHOTOS_CSV
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if len(r) == len(columns)]
    seen: dict[str, dict[str, str]] = {}
    for row in rows[1:] if rows and rows[0] == columns else rows:
        seen.setdefault(row[0], dict(zip(columns, row)))
    return list(seen.values())


def write_text_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, newline="")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_settings(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / SETTINGS).read_text())
    except (OSError, ValueError):
        return {}


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class ScanFolder:
    """A scan's output folder, opened for writing: ``photos.csv`` and a second CSV (:attr:`details_csv`, a row per
    tile or per crack), both open for appending, and ``scan.json``; the folder's lock is held from creation to
    :meth:`close` (use it as a context manager). Subclasses write a photo's rows and pictures.

    ``settings``: the scan's options, kept in ``scan.json`` for the report; a resumed scan must have the same
    :attr:`same_scan` values.
    """

    details_csv, detail_columns, photo_columns, same_scan = TILES_CSV, TILE_COLUMNS, PHOTO_COLUMNS, SAME_SCAN

    def __init__(
        self, output: str | os.PathLike, settings: dict[str, Any], overwrite: bool = False, resume: bool = False,
        overlay_max_side: int = 4096,
    ) -> None:
        self.dir = Path(output).expanduser()
        self.overlay_max_side = overlay_max_side
        self.done: set[str] = set()
        self._lock = lock_output(self.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock.__enter__()
        except OSError as err:
            raise CrackLightningError(f"--output: cannot write into {self.dir} ({err.strerror}); pass a writable folder") from err
        try:
            self._open(settings, overwrite, resume)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise

    def _open(self, settings: dict[str, Any], overwrite: bool, resume: bool) -> None:
        ours = [self.dir / n for n in RESULTS if (self.dir / n).exists()]
        previous = read_settings(self.dir)
        if ours and resume:
            changed = [k for k in self.same_scan if k in previous and previous[k] != settings.get(k)]
            if changed:
                was = ", ".join(f"{k} {previous[k]}" for k in changed)
                raise CrackLightningError(
                    f"--resume: the scan in {self.dir} was made with {was}; resume it with the same options, or pass "
                    "--overwrite true to start again"
                )
            self.done = self._resume()
        elif ours and overwrite:
            for path in ours:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            previous = {}
        elif ours:
            raise CrackLightningError(
                f"--output: {self.dir} already holds scan results; pass another --output, --resume true to "
                "finish that scan, or --overwrite true to replace it"
            )
        self.settings = {**settings, "started": previous.get("started", now()), "finished": ""}
        try:
            write_text_atomically(self.dir / SETTINGS, json.dumps(self.settings, indent=1) + "\n")
            self._details = open(self.dir / self.details_csv, "a", newline="")
            self._photos = open(self.dir / PHOTOS_CSV, "a", newline="")
        except OSError as err:
            raise CrackLightningError(f"--output: cannot write into {self.dir} ({err.strerror}); pass a writable folder") from err
        self.details = csv.writer(self._details, lineterminator="\n")
        self.photos_csv = csv.writer(self._photos, lineterminator="\n")
        if self._details.tell() == 0:
            self.details.writerow(self.detail_columns)
        if self._photos.tell() == 0:
            self.photos_csv.writerow(self.photo_columns)

    def _resume(self) -> set[str]:
        """What a killed scan left: the photos with a row are done; the rest of it is dropped."""
        photos, details = self.dir / PHOTOS_CSV, self.dir / self.details_csv
        done: set[str] = set()
        if photos.is_file():
            cut_partial_line(photos)
            rows = read_photo_rows(self.dir, self.photo_columns)
            done = {r["photo"] for r in rows}
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows([self.photo_columns] + [list(r.values()) for r in rows])
            if photos.read_text() != text.getvalue():
                write_text_atomically(photos, text.getvalue())
        if details.is_file():
            cut_partial_line(details)
            partial = details.with_name(f".{details.name}.{os.getpid()}.partial")
            with open(details, newline="") as src, open(partial, "w", newline="") as dst:
                writer = csv.writer(dst, lineterminator="\n")
                writer.writerow(self.detail_columns)
                writer.writerows(r for r in csv.reader(src) if len(r) == len(self.detail_columns) and r[0] in done)
            os.replace(partial, details)
        for folder in (OVERLAYS, MASKS, THUMBNAILS):
            for leftover in (self.dir / folder).rglob(PARTIAL_GLOB):
                leftover.unlink(missing_ok=True)
        return done

    def finish(self) -> None:
        """Note in ``scan.json`` that this run ended."""
        self.settings["finished"] = now()
        write_text_atomically(self.dir / SETTINGS, json.dumps(self.settings, indent=1) + "\n")

    def close(self) -> None:
        for f in (getattr(self, "_details", None), getattr(self, "_photos", None)):
            if f is not None:
                f.close()
        self._lock.__exit__(None, None, None)

    def __enter__(self) -> "ScanFolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScanWriter(ScanFolder):
    """A classifier's scan: ``tiles.csv`` (a row per tile), ``photos.csv``, overlays, thumbnails (and masks)."""

    def __init__(
        self, output: str | os.PathLike, crack_class: str, settings: dict[str, Any], overwrite: bool = False,
        resume: bool = False, masks: bool = False, overlay_max_side: int = 4096,
    ) -> None:
        self.crack_class, self.masks = crack_class, masks
        super().__init__(output, settings, overwrite, resume, overlay_max_side)

    def write(self, scan: PhotoScan, labels: list[str], picture: str) -> None:
        """Write one photo's tiles (with their ``labels``), its pictures (``overlays/<picture>.png``...) and its
        ``photos.csv`` row, in that order."""
        if scan.error:
            self.photos_csv.writerow([scan.name, "", "", 0, 0, "", "", scan.error])
            self._photos.flush()
            return
        crack_probability = scan.crack_probability
        for (x, y, w, h), p, label in zip(scan.boxes, crack_probability.tolist(), labels):
            self.details.writerow([scan.name, x, y, w, h, "" if label == NO_DATA else f"{p:.6f}", label])
        self._details.flush()
        # zlib's fastest level: 4x faster to write than the default, files ~1.3x larger. scan.image may be a
        # smaller copy of the photo (an orthomosaic's): the map is drawn at its size.
        size = (scan.height, scan.width)
        drawn = overlay(scan.image, scan.boxes, crack_probability, self.overlay_max_side, False, size)
        small = thumbnail(drawn)  # without the colour bar, illegible that small: the page shows the scale
        draw_colour_bar(drawn)
        save_atomically(drawn, self.dir / OVERLAYS / f"{picture}.png", "PNG", compress_level=1)
        save_atomically(small, self.dir / THUMBNAILS / f"{picture}.jpg", "JPEG", quality=85)
        del drawn
        if self.masks:
            reduced = scan.image.shape[:2] if scan.image.shape[:2] != size else None  # an orthomosaic's copy
            mask = mask_image(scan.boxes, crack_probability, scan.width, scan.height, reduced)
            save_atomically(mask, self.dir / MASKS / f"{picture}.png", "PNG", compress_level=1)
        crack_tiles = sum(label == self.crack_class for label in labels)
        others = [label for label in labels if label not in (self.crack_class, NO_DATA)]
        label = self.crack_class if crack_tiles else max(set(others), key=others.count) if others else NO_DATA
        self.photos_csv.writerow(
            [scan.name, scan.width, scan.height, len(scan.boxes), crack_tiles, f"{crack_probability.max():.6f}", label, ""]
        )
        self._photos.flush()
