"""``report.html`` of a scan, made from its folder's ``photos.csv`` and pictures (so that a resumed or copied scan
gets its page again): one writer for every task, which hands it a :class:`Page` (its columns, how a photo's row reads
and ranks, the facts of its settings)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from PIL import Image

from crack_lightning.io.atomic import save_picture, write_atomically
from crack_lightning.io.images import not_scanned
from crack_lightning.io.scan_files import (
    OVERLAYS,
    REPORT,
    THUMBNAILS,
    hashed_name,
    now,
    picture_names,
    read_photo_rows,
    read_settings,
)
from crack_lightning.report.html import Column, ReportPhoto, render_page
from crack_lightning.results.pictures import thumbnail


class Page:
    """What one task's page shows; subclasses fill it in."""

    photo_columns: list[str] = []  # photos.csv's header
    columns: Sequence[Column] = ()

    def photos(self, folder: Path, rows: list[dict[str, str]]) -> list[ReportPhoto]:
        """A :class:`ReportPhoto` per ``photos.csv`` row (links are added by :func:`write_report`)."""
        raise NotImplementedError

    def rank(self, photo: ReportPhoto) -> tuple:
        """Sort key, worst first; unreadable photos last."""
        raise NotImplementedError

    def cracked(self, photo: ReportPhoto) -> bool:
        raise NotImplementedError

    def facts(self, settings: dict) -> list[tuple[str, str]]:
        """The ``(name, HTML)`` lines about the scan after the counts and times: input, model, options, results."""
        raise NotImplementedError


def readable_time(iso: str | None) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except (TypeError, ValueError):
        return "?"


def link(path: Path, page_folder: Path) -> str:
    """A link from the page to ``path``: relative inside the page's folder (it travels with it), else ``file://``."""
    try:
        return quote(path.resolve().relative_to(page_folder.resolve()).as_posix())
    except ValueError:
        return path.resolve().as_uri()


def photo_links(
    folder: Path, settings: dict, rows: list[dict[str, str]], paths: dict[str, Path]
) -> tuple[dict[str, str], dict[str, str]]:
    """``(picture names, links to the originals)`` of the photos of ``photos.csv`` rows, by photo name: an original
    is where ``paths`` says, else found from the scan's ``input``; no link when it is not there any more."""
    source = Path(settings.get("input", folder)).expanduser()
    base = source if source.is_dir() else source.parent
    names = picture_names([r["photo"] for r in rows] + list(paths))
    originals = {}
    for row in rows:
        name = row["photo"]
        original = paths.get(name) or (Path(name) if Path(name).is_absolute() else base / name)
        originals[name] = link(original, folder) if original.is_file() else ""
    return names, originals


def picture_links(folder: Path, name: str, picture: str) -> tuple[str, str]:
    """``(overlay, thumbnail)`` links of a photo; the thumbnail is made from the overlay where it is missing. The
    other naming (plain or hashed) is tried when the photo was scanned with a different set of photos."""
    for candidate in (picture, PurePosixPath(name).name, hashed_name(name, PurePosixPath(name).name)):
        drawn = folder / OVERLAYS / f"{candidate}.png"
        if drawn.is_file():
            small = folder / THUMBNAILS / f"{candidate}.jpg"
            if not small.is_file():  # a scan from before thumbnails
                with Image.open(drawn) as im:
                    save_picture(thumbnail(im), small, "JPEG", quality=85)
            return link(drawn, folder), link(small, folder)
    return "", ""


def counts_and_times(photos: int, cracked: int, errors: list[str], settings: dict) -> list[tuple[str, str]]:
    """The report's first facts: how many photos, with and without cracks, which files were not scanned and
    why (``errors``: their error texts), and when the scan ran."""
    return [
        (
            "Photos",
            f"{photos - len(errors)} scanned: <b>{cracked} with cracks</b>, {photos - cracked - len(errors)} "
            f"without; {not_scanned(errors)}",
        ),
        (
            "When",
            f"started {readable_time(settings.get('started'))}, last run finished "
            f"{readable_time(settings.get('finished') or now())}",
        ),
    ]


def write_report(folder: str | os.PathLike, page: Page, paths: dict[str, Path] | None = None) -> Path:
    """Write ``report.html`` for every photo of ``folder``'s ``photos.csv`` (``paths``: where the photos named in it
    are; otherwise found from the ``input`` of ``scan.json``). Returns the page's path."""
    folder = Path(folder).expanduser()
    settings, paths = read_settings(folder), dict(paths or {})
    rows = read_photo_rows(folder, page.photo_columns)
    names, originals = photo_links(folder, settings, rows, paths)
    photos = page.photos(folder, rows)
    for row, photo in zip(rows, photos):
        photo.original = originals[row["photo"]]
        if not row["error"]:
            photo.overlay, photo.thumbnail = picture_links(folder, row["photo"], names[row["photo"]])
    photos.sort(key=page.rank)
    cracked = sum(page.cracked(p) for p in photos)
    facts = [
        *counts_and_times(len(photos), cracked, [p.error for p in photos if p.error], settings),
        *page.facts(settings),
    ]
    title = f"Crack scan: {cracked} of {len(photos)} photos with cracks"
    return write_atomically(folder / REPORT, render_page(title, facts, photos, page.columns), hidden=True)
