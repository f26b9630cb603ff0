"""The page of a segmenter's scan (a crack mask per photo): the photos worst first by total crack length, then by their widest crack,
each with its cracks listed (length, widths and width class), from ``photos.csv`` and ``cracks.csv``."""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass
from pathlib import Path

from crack_lightning.io.scan_files import CRACKS_CSV, MASKS, OVERLAYS, PHOTOS_CSV
from crack_lightning.report.html import PHOTO_COLUMN, Column, ReportPhoto
from crack_lightning.report.pages import Page
from crack_lightning.results.columns import CRACK_COLUMNS, CRACK_PHOTO_COLUMNS


@dataclass
class CrackedPhoto(ReportPhoto):
    """A photo's row with its measured cracks (``cracks``: one dict per crack, longest first, as the page lists them)."""

    crack_count: int = 0
    max_crack_probability: float | None = None
    total_length_px: float = 0.0
    max_width_px: float = 0.0
    total_length_mm: float | None = None
    max_width_mm: float | None = None
    widest_class: str = ""
    mm_per_px: float | None = None
    scale_source: str = ""
    scale_note: str = ""


def worst_cracks_first(photo: CrackedPhoto) -> tuple:
    """Sort key: the longest total crack length first, then the widest crack; unreadable photos last."""
    return (bool(photo.error), -photo.total_length_px, -photo.max_width_px, photo.photo)


def _size(px: float | None, mm: float | None, digits: int = 1) -> str:
    """A length or width: in mm when the scan had a scale, else in px."""
    if mm is not None:
        return f"{mm:.{digits + 1}f} mm"
    return "" if px is None else f"{px:.{digits}f} px"


def _float(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def _crack_entry(row: dict[str, str]) -> dict[str, str]:
    """What the page lists of one crack of ``cracks.csv``."""
    entry = {
        "crack": row["crack"],
        "length": _size(_float(row["length_px"]), _float(row["length_mm"])),
        "mean width": _size(_float(row["mean_width_px"]), _float(row["mean_width_mm"])),
        "max width": _size(_float(row["max_width_px"]), _float(row["max_width_mm"])),
    }
    if row["width_class"]:
        entry["class"] = row["width_class"]
    return entry


def read_cracks(folder: Path) -> dict[str, list[dict[str, str]]]:
    """The rows of ``cracks.csv`` by photo, each photo's longest crack first."""
    by_photo: dict[str, list[dict[str, str]]] = {}
    path = folder / CRACKS_CSV
    if path.is_file():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if len(row) == len(CRACK_COLUMNS) and None not in row.values():
                    by_photo.setdefault(row["photo"], []).append(row)
    for rows in by_photo.values():
        rows.sort(key=lambda r: -float(r["length_px"] or 0))
    return by_photo


def _scale_cell(p: CrackedPhoto) -> str:
    if p.error:
        return ""
    scale = "none" if p.mm_per_px is None else f"{p.mm_per_px:.4g} mm/px"
    source = f" <span class=meta>({html.escape(p.scale_source)})</span>" if p.mm_per_px is not None else ""
    note = f'<div class="meta">{html.escape(p.scale_note)}</div>' if p.scale_note else ""
    return scale + source + note


CRACK_COLUMNS_OF_PAGE = [
    PHOTO_COLUMN,
    Column("Cracks", lambda p: "" if p.error else str(p.crack_count), lambda p: -1 if p.error else p.crack_count),
    Column(
        "Total crack length",
        lambda p: "" if p.error else _size(p.total_length_px, p.total_length_mm),
        lambda p: -1.0 if p.error else p.total_length_px,
    ),
    Column(
        "Widest crack",
        lambda p: (
            ""
            if p.error or not p.crack_count
            else _size(p.max_width_px, p.max_width_mm, 2)
            + (f" <span class=meta>({html.escape(p.widest_class)})</span>" if p.widest_class else "")
        ),
        lambda p: -1.0 if p.error else p.max_width_px,
    ),
    Column(
        "Highest crack probability",
        lambda p: "" if p.max_crack_probability is None else f"{p.max_crack_probability:.3f}",
        lambda p: -1.0 if p.max_crack_probability is None else p.max_crack_probability,
    ),
    Column("Scale", _scale_cell, lambda p: -1.0 if p.mm_per_px is None else p.mm_per_px),
]


def _measures(settings: dict) -> str:
    scale = settings.get("mm_per_px")
    limits, classes = settings.get("width_limits_mm") or [], settings.get("width_classes") or []
    bounds = [f"{html.escape(str(c))} below {limit:g} mm" for c, limit in zip(classes, limits)]
    last = f"{html.escape(str(classes[-1]))} from {limits[-1]:g} mm" if classes and limits else ""
    classes_text = "width classes by the widest point: " + ", ".join(bounds + [last])
    if scale is not None:
        return f"in mm at {scale:g} mm per pixel; {classes_text}"
    if settings.get("scale", "auto") == "auto":
        return (
            "in mm where a photo's scale was found (a marker card, whose plane it is measured on; a GeoTIFF's pixel "
            f"size; drone metadata, an estimate: the Scale column), else in pixels; {classes_text}"
        )
    return "in pixels (no scale given: --mm_per_px gives millimetres and width classes)"


class CrackPage(Page):
    photo_columns, columns = CRACK_PHOTO_COLUMNS, CRACK_COLUMNS_OF_PAGE

    def photos(self, folder: Path, rows: list[dict[str, str]]) -> list[ReportPhoto]:
        cracks, photos = read_cracks(folder), []
        for row in rows:
            name = row["photo"]
            photo = CrackedPhoto(name, error=row["error"], label=row["label"])
            if not row["error"]:
                photo.width, photo.height, photo.crack_count = int(row["width"]), int(row["height"]), int(row["cracks"])
                photo.total_length_px, photo.max_width_px = float(row["total_length_px"]), float(row["max_width_px"])
                photo.total_length_mm, photo.max_width_mm = _float(row["total_length_mm"]), _float(row["max_width_mm"])
                photo.max_crack_probability = float(row["max_crack_probability"])
                photo.mm_per_px, photo.scale_source = _float(row["mm_per_px"]), row["scale_source"]
                photo.scale_note = row["scale_note"]
                own = cracks.get(name, [])
                photo.details = [_crack_entry(c) for c in own]
                widest = max(own, key=lambda c: float(c["max_width_px"]), default=None)
                photo.widest_class = widest["width_class"] if widest else ""
            photos.append(photo)
        return photos

    def rank(self, photo: ReportPhoto) -> tuple:
        return worst_cracks_first(photo)

    def cracked(self, photo: ReportPhoto) -> bool:
        return photo.crack_count > 0

    def facts(self, settings: dict) -> list[tuple[str, str]]:
        return [
            ("Input", html.escape(settings.get("input", "?"))),
            ("Model", html.escape(settings.get("model", "?")) + " (crack segmenter)"),
            (
                "Cracks",
                f"pixels from crack probability {settings.get('threshold', '?')}"
                + (f" (from {low} where they touch those)" if (low := settings.get("low_threshold")) else "")
                + ", groups of at least "
                f"{settings.get('min_area', '?')} px; windows of {settings.get('window', '?')} px overlapping by "
                f"{settings.get('overlap', '?')} px",
            ),
            (
                "Measures",
                f"{_measures(settings)}. Length: along the crack's smoothed, pruned skeleton; width: across it, "
                "the area under the crack probability's profile",
            ),
            (
                "Results",
                f'<a href="{PHOTOS_CSV}">{PHOTOS_CSV}</a>, <a href="{CRACKS_CSV}">{CRACKS_CSV}</a>, '
                f'<a href="{OVERLAYS}/">{OVERLAYS}/</a>, <a href="{MASKS}/">{MASKS}/</a>',
            ),
        ]


CRACK_PAGE = CrackPage()
