"""The page of a classifier's scan (a tile map per photo): photos worst first by their share of crack tiles."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from crack_lightning.io.scan_files import OVERLAYS, PHOTOS_CSV, TILES_CSV
from crack_lightning.report.html import PHOTO_COLUMN, Column, ReportPhoto
from crack_lightning.report.pages import Page
from crack_lightning.results.columns import PHOTO_COLUMNS


@dataclass
class TilePhoto(ReportPhoto):
    """A photo's row with its tile counts."""

    tiles: int = 0
    crack_tiles: int = 0
    max_crack_probability: float | None = None

    @property
    def crack_share(self) -> float:
        return self.crack_tiles / self.tiles if self.tiles else 0.0


CLASSIFIER_COLUMNS = [
    PHOTO_COLUMN,
    Column(
        "Crack tiles",
        lambda p: "" if p.error else f"{p.crack_share:.0%} <span class=meta>({p.crack_tiles} of {p.tiles})</span>",
        lambda p: -1.0 if p.error else p.crack_share,
    ),
    Column(
        "Highest crack probability",
        lambda p: "" if p.max_crack_probability is None else f"{p.max_crack_probability:.3f}",
        lambda p: -1.0 if p.max_crack_probability is None else p.max_crack_probability,
    ),
    Column("Label", lambda p: html.escape(p.label), lambda p: p.label, numeric=False),
]


def worst_first(photo: TilePhoto) -> tuple:
    """Sort key: the largest share of crack tiles first, then the highest crack probability; unreadable ones last."""
    return (bool(photo.error), -photo.crack_share, -(photo.max_crack_probability or 0.0), photo.photo)


class TilePage(Page):
    photo_columns, columns = PHOTO_COLUMNS, CLASSIFIER_COLUMNS

    def photos(self, folder: Path, rows: list[dict[str, str]]) -> list[ReportPhoto]:
        photos = []
        for row in rows:
            photo = TilePhoto(row["photo"], error=row["error"], label=row["label"])
            if not row["error"]:
                photo.width, photo.height = int(row["width"]), int(row["height"])
                photo.tiles, photo.crack_tiles = int(row["tiles"]), int(row["crack_tiles"])
                photo.max_crack_probability = float(row["max_crack_probability"])
            photos.append(photo)
        return photos

    def rank(self, photo: ReportPhoto) -> tuple:
        return worst_first(photo)

    def cracked(self, photo: ReportPhoto) -> bool:
        return photo.crack_tiles > 0

    def facts(self, settings: dict) -> list[tuple[str, str]]:
        return [
            ("Input", html.escape(settings.get("input", "?"))),
            ("Model", html.escape(settings.get("model", "?"))),
            (
                "Tiles",
                f"{settings.get('tile', '?')} px, stride {settings.get('stride', '?')} px, context "
                f"{settings.get('context')} of the tile on each side, crack from probability {settings.get('threshold', '?')}",
            ),
            (
                "Results",
                f'<a href="{PHOTOS_CSV}">{PHOTOS_CSV}</a>, <a href="{TILES_CSV}">{TILES_CSV}</a>, '
                f'<a href="{OVERLAYS}/">{OVERLAYS}/</a>',
            ),
        ]


TILE_PAGE = TilePage()
