"""The classifier scan's ``report.html``, made from the folder's ``photos.csv`` and pictures (so that a resumed or
copied scan gets its page again), and the links and facts the segmenter's page (:mod:`crack_lightning.crack_report`)
shares with it."""

from __future__ import annotations

import html
import os
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from PIL import Image

from crack_lightning.images import not_scanned
from crack_lightning.report import ReportPhoto, render_page, save_atomically, thumbnail, worst_first
from crack_lightning.scan_folder import (
    OVERLAYS, PHOTOS_CSV, REPORT, THUMBNAILS, TILES_CSV, hashed_name, now, picture_names, read_photo_rows, read_settings, write_text_atomically,
)


def readable_time(iso: str) -> str:
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


def photo_links(folder: Path, settings: dict, rows: list[dict[str, str]], paths: dict[str, Path]) -> tuple[dict[str, str], dict[str, str]]:
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


def counts_and_times(photos: int, cracked: int, errors: list[str], settings: dict) -> list[tuple[str, str]]:
    """The report's first facts: how many photos, with and without cracks, which files were not scanned and
    why (``errors``: their error texts), and when the scan ran."""
    return [
        ("Photos", f"{photos - len(errors)} scanned: <b>{cracked} with cracks</b>, {photos - cracked - len(errors)} "
                   f"without; {not_scanned(errors)}"),
        ("When", f"started {readable_time(settings.get('started'))}, last run finished "
                 f"{readable_time(settings.get('finished') or now())}"),
    ]


def write_report(folder: str | os.PathLike, paths: dict[str, Path] | None = None) -> Path:
    """Write ``report.html`` for every photo of ``folder``'s ``photos.csv`` (``paths``: where the photos named in it
    are; otherwise found from the ``input`` of ``scan.json``). Returns the page's path."""
    folder = Path(folder).expanduser()
    settings, rows, paths = read_settings(folder), read_photo_rows(folder), dict(paths or {})
    names, originals = photo_links(folder, settings, rows, paths)
    photos = []
    for row in rows:
        name = row["photo"]
        photo = ReportPhoto(name, error=row["error"], label=row["label"], original=originals[name])
        if not row["error"]:
            photo.width, photo.height = int(row["width"]), int(row["height"])
            photo.tiles, photo.crack_tiles = int(row["tiles"]), int(row["crack_tiles"])
            photo.max_crack_probability = float(row["max_crack_probability"])
            photo.overlay, photo.thumbnail = picture_links(folder, name, names[name])
        photos.append(photo)
    photos.sort(key=worst_first)
    cracked = sum(p.crack_tiles > 0 for p in photos)
    context = settings.get("context")
    facts = [
        *counts_and_times(len(photos), cracked, [p.error for p in photos if p.error], settings),
        ("Input", html.escape(settings.get("input", "?"))),
        ("Model", html.escape(settings.get("model", "?"))),
        ("Tiles", f"{settings.get('tile', '?')} px, stride {settings.get('stride', '?')} px, context {context} of the tile "
                  f"on each side, crack from probability {settings.get('threshold', '?')}"),
        ("Results", f'<a href="{PHOTOS_CSV}">{PHOTOS_CSV}</a>, <a href="{TILES_CSV}">{TILES_CSV}</a>, '
                    f'<a href="{OVERLAYS}/">{OVERLAYS}/</a>'),
    ]
    title = f"Crack scan: {cracked} of {len(photos)} photos with cracks"
    page = folder / REPORT
    write_text_atomically(page, render_page(title, facts, photos))
    return page


def picture_links(folder: Path, name: str, picture: str) -> tuple[str, str]:
    """``(overlay, thumbnail)`` links of a photo; the thumbnail is made from the overlay where it is missing. The
    other naming (plain or hashed) is tried when the photo was scanned with a different set of photos."""
    for candidate in (picture, PurePosixPath(name).name, hashed_name(name, PurePosixPath(name).name)):
        drawn = folder / OVERLAYS / f"{candidate}.png"
        if drawn.is_file():
            small = folder / THUMBNAILS / f"{candidate}.jpg"
            if not small.is_file():  # a scan from before thumbnails
                with Image.open(drawn) as im:
                    save_atomically(thumbnail(im), small, "JPEG", quality=85)
            return link(drawn, folder), link(small, folder)
    return "", ""
