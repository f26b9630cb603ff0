"""The files of a scan's output folder: their names, the photos' picture names, and reading ``photos.csv`` and
``scan.json`` back (the report and a resumed scan both read them)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from crack_lightning.io.images import find_images

TILES_CSV = "tiles.csv"  # a classifier's scan: a row per tile
CRACKS_CSV = "cracks.csv"  # a segmenter's scan: a row per crack
PHOTOS_CSV = "photos.csv"
OVERLAYS = "overlays"
MASKS = "masks"
THUMBNAILS = "thumbnails"
MAX_SIDE = 4096  # px: the longest side of an overlay (larger photos are drawn smaller), and of an orthomosaic's copy
REPORT = "report.html"
SETTINGS = "scan.json"
LOCK = ".scan.lock"
TILES_GEOJSON, CRACKS_GEOJSON = "tiles.geojson", "cracks.geojson"  # a georeferenced photo's tiles or cracks on the map
RESULTS = (
    TILES_CSV,
    CRACKS_CSV,
    PHOTOS_CSV,
    OVERLAYS,
    MASKS,
    THUMBNAILS,
    REPORT,
    SETTINGS,
    TILES_GEOJSON,
    CRACKS_GEOJSON,
)


def find_photos(source: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(name, path)`` of each photo in a folder (recursively), one file, or a ``.txt`` list of paths.

    Names are paths relative to the folder (or to the list's folder), else the full path. A folder's files of every
    type are listed: the scan gives each one it cannot read a ``photos.csv`` row saying why, rather than none. The
    results of scans inside the folder (its sub-folders that hold a scan's lock file, an ``--output`` put inside
    ``--input``) are not photos: their overlays and masks are left out.
    """
    source = Path(source).expanduser()
    base = source if source.is_dir() else source.parent
    paths = find_images(source, option="source", every_file=True)
    if source.is_dir():
        scans = {p.parent for p in paths if p.name == LOCK and p.parent != source}
        paths = [p for p in paths if not scans.intersection(p.parents)]
    named = []
    for path in paths:
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


def read_photo_rows(folder: Path, columns: list[str]) -> list[dict[str, str]]:
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


def read_settings(folder: Path) -> dict[str, Any]:
    """``scan.json``: the scan's options, model and times; empty when missing or unreadable."""
    try:
        return json.loads((folder / SETTINGS).read_text())
    except (OSError, ValueError):
        return {}


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
