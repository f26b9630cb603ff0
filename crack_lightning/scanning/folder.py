"""The ``scan`` command's output folder, opened for writing: the CSV files, pictures and settings of any task, the
lock, and resuming a scan cut short.

Crash safety: a photo's pictures are written first (each under a temporary name, then renamed), then its detail
rows (tiles or cracks, flushed), then its ``photos.csv`` row. A photo is done when its row is there; resuming drops
whatever a killed run left of the photos without a row (detail rows, a half-written last line, temporary pictures)
and scans them again; the part files of a scan across processes are folded in first
(:func:`~crack_lightning.scanning.shards.merge_parts`). The folder is locked (``fcntl.flock``, released by the kernel when the process ends, even on
``kill -9``) so that two scans never write into it at once.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from crack_lightning.errors import OptionError
from crack_lightning.io.atomic import PARTIAL_GLOB, replacing, write_atomically
from crack_lightning.io.scan_files import (
    LOCK,
    MASKS,
    MAX_SIDE,
    OVERLAYS,
    PHOTOS_CSV,
    RESULTS,
    SETTINGS,
    THUMBNAILS,
    now,
    read_photo_rows,
    read_settings,
)
from crack_lightning.results.maps import PhotoResult
from crack_lightning.scanning.result_writer import ResultWriter, cut_partial_line
from crack_lightning.scanning.shards import merge_parts, part_path, part_ranks


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
            raise OptionError(
                "output",
                f"{folder} is being written by another scan ({holder}); wait for it to end, or pass another folder",
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()}")
        lock.flush()
        yield
    finally:
        lock.close()  # releases the lock


class ScanFolder:
    """A scan's output folder, opened for writing: ``photos.csv`` and a second CSV (``details_csv``, a row per tile
    or per crack, with the columns of the task's ``result`` class), both open for appending, and ``scan.json``; the
    folder's lock is held from creation to :meth:`close` (use it as a context manager).

    ``settings``: the scan's options, kept in ``scan.json`` for the report; a resumed scan must have the same
    ``same_scan`` values. ``masks``: write each photo's mask picture too.
    """

    def __init__(
        self,
        output: str | os.PathLike,
        settings: dict[str, Any],
        details_csv: str,
        result: type[PhotoResult],
        same_scan: tuple[str, ...],
        overwrite: bool = False,
        resume: bool = False,
        masks: bool = True,
        overlay_max_side: int = MAX_SIDE,
    ) -> None:
        self.dir = Path(output).expanduser()
        self.details_csv, self.detail_columns, self.photo_columns = (
            details_csv,
            result.detail_columns,
            result.photo_columns,
        )
        self.same_scan, self.masks, self.overlay_max_side = same_scan, masks, overlay_max_side
        self.done: set[str] = set()
        self._lock = lock_output(self.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock.__enter__()
        except OSError as err:
            raise OptionError(
                "output", f"cannot write into {self.dir} ({err.strerror}); pass a writable folder"
            ) from err
        try:
            self._open(settings, overwrite, resume)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise

    def _open(self, settings: dict[str, Any], overwrite: bool, resume: bool) -> None:
        ours = [self.dir / n for n in RESULTS if (self.dir / n).exists()]
        ours += [part_path(self.dir, n, r) for r in part_ranks(self.dir) for n in (PHOTOS_CSV, self.details_csv)]
        previous = read_settings(self.dir)
        if ours and resume:
            changed = [k for k in self.same_scan if k in previous and previous[k] != settings.get(k)]
            if changed:
                was = ", ".join(f"{k} {previous[k]}" for k in changed)
                raise OptionError(
                    "resume",
                    f"the scan in {self.dir} was made with {was}; resume it with the same options, or overwrite it to "
                    "start again",
                )
            self.done = self._resume()
        elif ours and overwrite:
            for path in ours:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            previous = {}
        elif ours:
            raise OptionError(
                "output",
                f"{self.dir} already holds scan results; pass another folder, resume to finish that scan, or "
                "overwrite to replace it",
            )
        self.settings = {**settings, "started": previous.get("started", now()), "finished": ""}
        try:
            write_atomically(self.dir / SETTINGS, json.dumps(self.settings, indent=1) + "\n", hidden=True)
            self._details = open(self.dir / self.details_csv, "a", newline="")
            self._photos = open(self.dir / PHOTOS_CSV, "a", newline="")
        except OSError as err:
            raise OptionError(
                "output", f"cannot write into {self.dir} ({err.strerror}); pass a writable folder"
            ) from err
        self.rows = ResultWriter(self.dir, self._details, self._photos, self.overlay_max_side, self.masks)
        if self._details.tell() == 0:
            self.rows.details.writerow(self.detail_columns)
        if self._photos.tell() == 0:
            self.rows.photos_csv.writerow(self.photo_columns)

    def _resume(self) -> set[str]:
        """What a killed scan left: the photos with a row are done (in the main files or in the parts of a scan across
        processes, folded in first); the rest of it is dropped."""
        merge_parts(self.dir, self.details_csv, self.detail_columns, self.photo_columns)
        photos, details = self.dir / PHOTOS_CSV, self.dir / self.details_csv
        done: set[str] = set()
        if photos.is_file():
            cut_partial_line(photos)
            rows = read_photo_rows(self.dir, self.photo_columns)
            done = {r["photo"] for r in rows}
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows([self.photo_columns] + [list(r.values()) for r in rows])
            if photos.read_text() != text.getvalue():
                write_atomically(photos, text.getvalue(), hidden=True)
        if details.is_file():
            cut_partial_line(details)
            with (
                replacing(details, hidden=True) as partial,
                open(details, newline="") as src,
                open(partial, "w", newline="") as dst,
            ):
                writer = csv.writer(dst, lineterminator="\n")
                writer.writerow(self.detail_columns)
                writer.writerows(r for r in csv.reader(src) if len(r) == len(self.detail_columns) and r[0] in done)
        for folder in (OVERLAYS, MASKS, THUMBNAILS):
            for leftover in (self.dir / folder).rglob(PARTIAL_GLOB):
                leftover.unlink(missing_ok=True)
        return done

    def write(self, result: PhotoResult, picture: str) -> None:
        """One photo's pictures, detail rows and ``photos.csv`` row (:class:`ResultWriter`)."""
        self.rows.write(result, picture)

    def finish(self) -> None:
        """Note in ``scan.json`` that this run ended."""
        self.settings["finished"] = now()
        write_atomically(self.dir / SETTINGS, json.dumps(self.settings, indent=1) + "\n", hidden=True)

    def close(self) -> None:
        for f in (getattr(self, "_details", None), getattr(self, "_photos", None)):
            if f is not None:
                f.close()
        self._lock.__exit__(None, None, None)

    def __enter__(self) -> ScanFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
