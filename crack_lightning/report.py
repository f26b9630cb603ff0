"""What a person looks at after a scan: overlays, masks, thumbnails and ``report.html``, with PIL and NumPy only.

The page (:func:`render_page`) is one offline HTML file: no CDN, no server; it links the pictures of its folder
relatively, so the folder can be moved, zipped and sent. It knows nothing of CSV files or models: the scan hands it
:class:`ReportPhoto` rows and the lines of its header.

Hook for a segmentation model: pass ``columns`` of its own (:data:`PHOTO_COLUMN`, then total crack length and the
widest crack, each with its ``sort`` value), order the rows worst first by those, and fill each photo's ``cracks``
with one dict per crack (length, width, width class...): they are listed under the photo's name in a nested
table, so the page keeps one ``<tbody>`` row per photo.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crack_lightning.images import skip_reason
from crack_lightning.tiling import Box, probability_rows

ASSETS = Path(__file__).resolve().parent / "assets"
THUMBNAIL_SIDE = 240  # px, longest side of a thumbnail in the page


@lru_cache(maxsize=1)
def colour_table() -> np.ndarray:
    """The turbo colour map as a ``uint8`` table ``(256, 3)``: row ``i`` colours probability ``i / 255``.

    Generated once with matplotlib (not needed at run time), truncating as the torch-era scan did:
    ``np.save("crack_lightning/assets/colormaps/turbo.npy",
    (matplotlib.colormaps["turbo"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8))``
    """
    return np.load(ASSETS / "colormaps" / "turbo.npy")


def overlay(
    image: np.ndarray, boxes: Sequence[Box], crack_probability: np.ndarray, max_side: int = 4096, colour_bar: bool = True,
    photo_size: tuple[int, int] | None = None,
) -> Image.Image:
    """The photo ``uint8 (H, W, 3)`` with the crack probability blended over it, and a colour bar (unless
    ``colour_bar`` is false: :func:`draw_colour_bar` adds it later).

    Colour follows the probability and so does opacity (up to 60%), so sound concrete stays visible and cracks
    stand out. Photos longer than ``max_side`` pixels are drawn at that length. Blended a block of rows at a time,
    so a huge photo costs little more than the picture itself. ``photo_size`` ``(height, width)``: the photo's,
    when ``image`` is a smaller copy of it (an orthomosaic's preview, :mod:`crack_lightning.preview`).
    """
    height, width = photo_size or image.shape[:2]
    scale = min(1.0, max_side / max(image.shape[:2]), max(image.shape[:2]) / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if size != image.shape[:2]:
        image = np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
    lut = colour_table()
    blended = np.empty((size[0], size[1], 3), np.uint8)
    start = 0
    for crack in probability_rows(boxes, crack_probability, width, height, size):
        crack = np.clip(crack, 0.0, 1.0)
        stop = start + len(crack)
        colours = lut[np.round(crack * 255).astype(np.intp)].astype(np.float32)  # (rows, w, 3)
        alpha = (crack * 0.6)[..., None]
        photo = image[start:stop].astype(np.float32)
        blended[start:stop] = np.round(photo * (1 - alpha) + colours * alpha).astype(np.uint8)
        start = stop
    picture = Image.fromarray(blended)
    del blended
    if colour_bar:
        draw_colour_bar(picture)
    return picture


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def draw_colour_bar(picture: Image.Image) -> None:
    """A legend in the top right corner: the colour of crack probabilities 0 to 1; none on a picture too small."""
    width, height = picture.size
    unit = max(8, min(width, height) // 24)
    bar_w, bar_h = unit, max(unit * 3, height // 3)
    font = _font(max(8, unit * 3 // 4))
    labels = ("1.0", "0.5", "0.0")
    text_w = max(font.getbbox(t)[2] for t in labels + ("crack",))
    box_w, box_h = bar_w + text_w + unit * 3 // 2, bar_h + unit * 2
    if box_w + 4 > width or box_h + 4 > height:
        return  # too small a photo for a legible bar
    left, top = width - box_w - unit // 2, unit // 2
    draw = ImageDraw.Draw(picture)
    draw.rectangle([left, top, left + box_w, top + box_h], fill=(255, 255, 255))
    draw.text((left + unit // 2, top + unit // 4), "crack", fill=(0, 0, 0), font=font)
    lut = colour_table()
    bar_top, bar_left = top + unit + unit // 4, left + unit // 2
    for i in range(bar_h):
        colour = tuple(lut[round(255 * (1 - i / max(1, bar_h - 1)))].tolist())
        draw.line([bar_left, bar_top + i, bar_left + bar_w, bar_top + i], fill=colour)
    for label, fraction in zip(labels, (0.0, 0.5, 1.0)):
        y = bar_top + fraction * (bar_h - 1)
        text_h = font.getbbox(label)[3]
        draw.text((bar_left + bar_w + unit // 4, y - text_h / 2), label, fill=(0, 0, 0), font=font)


def mask_image(
    boxes: Sequence[Box], crack_probability: np.ndarray, width: int, height: int, size: tuple[int, int] | None = None
) -> Image.Image:
    """The crack probability map at the photo's size (or ``size`` ``(height, width)``) as 8-bit grey: 0 = sure no
    crack, 255 = sure crack."""
    mask = np.empty(size or (height, width), np.uint8)
    start = 0
    for crack in probability_rows(boxes, crack_probability, width, height, size):
        mask[start : start + len(crack)] = np.round(np.clip(crack, 0.0, 1.0) * 255).astype(np.uint8)
        start += len(crack)
    return Image.fromarray(mask, mode="L")


def thumbnail(picture: Image.Image, side: int = THUMBNAIL_SIDE) -> Image.Image:
    """A copy of ``picture`` at most ``side`` pixels long, for the page."""
    small = picture.copy()
    small.thumbnail((side, side), Image.BILINEAR)
    return small.convert("RGB")


def save_atomically(picture: Image.Image, path: Path, image_format: str, **options) -> None:
    """Save under a temporary name in the same folder, then rename: a reader, or a scan killed midway, never
    leaves a half-written picture at ``path``. Temporary names match :data:`PARTIAL_GLOB`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        picture.save(partial, format=image_format, **options)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


PARTIAL_GLOB = ".*.partial"


# -- the page ------------------------------------------------------------------------------------------------


@dataclass
class ReportPhoto:
    """One photo's row of the page. ``photo`` is its full source path as in ``photos.csv``; the links are URLs
    relative to the page (or ``file://``), empty when there is nothing to link."""

    photo: str
    width: int = 0
    height: int = 0
    tiles: int = 0
    crack_tiles: int = 0
    max_crack_probability: float | None = None
    label: str = ""
    error: str = ""
    overlay: str = ""
    thumbnail: str = ""
    original: str = ""
    cracks: list[dict] = field(default_factory=list)  # segmentation hook: one dict per crack (length, width...)

    @property
    def crack_share(self) -> float:
        return self.crack_tiles / self.tiles if self.tiles else 0.0


def worst_first(photo: ReportPhoto) -> tuple:
    """Sort key: the largest share of crack tiles first, then the highest crack probability; unreadable ones last."""
    return (bool(photo.error), -photo.crack_share, -(photo.max_crack_probability or 0.0), photo.photo)


@dataclass
class Column:
    """A column of the photo table: its title, and for a row the cell's HTML and the value it sorts by."""

    title: str
    cell: Callable[[ReportPhoto], str]
    sort: Callable[[ReportPhoto], float | str]
    numeric: bool = True


def _link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{text}</a>' if href else text


def _overlay_cell(p: ReportPhoto) -> str:
    if p.error:
        return f'<span class="error">{skip_reason(p.error)}</span>'
    image = f'<img src="{html.escape(p.thumbnail)}" alt="crack map of {html.escape(p.photo)}">' if p.thumbnail else "no overlay"
    return _link(p.overlay, image)


def _photo_cell(p: ReportPhoto) -> str:
    name = _link(p.original, f'<span class="name">{html.escape(p.photo)}</span>')
    size = f'<div class="meta">{p.width} x {p.height} px</div>' if not p.error else f'<div class="error">{html.escape(p.error)}</div>'
    return name + size + _cracks_table(p.cracks)


def _cracks_table(cracks: list[dict]) -> str:
    if not cracks:
        return ""
    keys = list(cracks[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c.get(k, '')))}</td>" for k in keys) + "</tr>" for c in cracks)
    return f'<details><summary>{len(cracks)} crack{"" if len(cracks) == 1 else "s"}</summary><table class="cracks"><tr>{head}</tr>{rows}</table></details>'


PHOTO_COLUMN = Column("Photo", _photo_cell, lambda p: p.photo, numeric=False)  # name, size or error, cracks
CLASSIFIER_COLUMNS = [
    PHOTO_COLUMN,
    Column("Crack tiles", lambda p: "" if p.error else f"{p.crack_share:.0%} <span class=meta>({p.crack_tiles} of {p.tiles})</span>",
           lambda p: -1.0 if p.error else p.crack_share),
    Column("Highest crack probability", lambda p: "" if p.max_crack_probability is None else f"{p.max_crack_probability:.3f}",
           lambda p: -1.0 if p.max_crack_probability is None else p.max_crack_probability),
    Column("Label", lambda p: html.escape(p.label), lambda p: p.label, numeric=False),
]

SORT_SCRIPT = """
document.querySelectorAll("#photos th[data-sort]").forEach(function (th) {
  th.addEventListener("click", function () {
    var body = document.querySelector("#photos tbody"), i = th.cellIndex, numeric = th.dataset.sort === "number";
    // First click: numbers largest first (worst first), text A to Z; a second click turns the order round.
    var first = numeric ? "descending" : "ascending", second = numeric ? "ascending" : "descending";
    var order = th.getAttribute("aria-sort") === first ? second : first;
    document.querySelectorAll("#photos th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", order);
    var sign = order === "ascending" ? 1 : -1;
    var value = function (row) { var v = row.cells[i].dataset.value; return numeric ? parseFloat(v) : v; };
    Array.from(body.rows).sort(function (a, b) {
      var x = value(a), y = value(b);
      return sign * (numeric ? x - y : x.localeCompare(y, undefined, {numeric: true}));
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""

STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .4em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; margin: 0 0 1em; }
dt { color: #666; } dd { margin: 0; }
table#photos { border-collapse: collapse; }
#photos th, #photos td { border-bottom: 1px solid #ddd; padding: .4em .6em; text-align: left; vertical-align: top; }
#photos th { position: sticky; top: 0; background: #f4f4f4; white-space: nowrap; }
#photos td.number { white-space: nowrap; }
#photos th[data-sort] { cursor: pointer; user-select: none; }
#photos th[aria-sort=ascending]::after { content: " \\25B2"; } #photos th[aria-sort=descending]::after { content: " \\25BC"; }
#photos img { display: block; max-width: 240px; max-height: 160px; }
.meta { color: #666; font-size: .9em; } .error { color: #b00; }
.legend { display: inline-block; width: 12em; height: .9em; vertical-align: middle; border: 1px solid #999; }
"""


def _gradient() -> str:
    lut = colour_table()
    stops = ", ".join(f"rgb({r},{g},{b}) {i / 255:.0%}" for i, (r, g, b) in enumerate(lut.tolist()) if i % 51 == 0)
    return f"linear-gradient(to right, {stops})"


def render_page(
    title: str,
    facts: Iterable[tuple[str, str]],
    photos: Sequence[ReportPhoto],
    columns: Sequence[Column] = CLASSIFIER_COLUMNS,
) -> str:
    """The page: ``title``, the ``(name, HTML)`` facts of the scan, unreadable photos, then the photo table in the
    order given (sort it with :func:`worst_first`), every column sortable by a click on its header."""
    fact_rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
    unreadable = [p for p in photos if p.error]
    errors = ""
    if unreadable:
        items = "".join(f"<li>{html.escape(p.photo)}: <b>{skip_reason(p.error)}</b>: <span class=error>"
                        f"{html.escape(p.error)}</span></li>" for p in unreadable)
        errors = f"<h2>Files not scanned ({len(unreadable)})</h2><ul>{items}</ul>"
    # The rank sorts as text (1, 2, ... first); the crack map column does not sort.
    head = ['<th data-sort="text" aria-sort="ascending">#</th>', "<th>Crack map</th>"]
    head += [f'<th data-sort="{"number" if c.numeric else "text"}">{html.escape(c.title)}</th>' for c in columns]
    rows = []
    for rank, photo in enumerate(photos, 1):
        cells = [f'<td data-value="{rank}">{rank}</td>', f"<td>{_overlay_cell(photo)}</td>"]
        cells += [f'<td data-value="{html.escape(str(c.sort(photo)))}"{" class=number" if c.numeric else ""}>{c.cell(photo)}</td>'
                  for c in columns]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<dl>{fact_rows}</dl>
<p class="meta">Crack maps: colour and opacity follow the crack probability, <span class="legend" style="background: {_gradient()}"></span> 0 to 1.
Click a column's title to sort by it; a crack map opens the full-size picture, a photo's name the original.</p>
{errors}
<h2>Photos, worst first</h2>
<table id="photos">
<thead><tr>{''.join(head)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<script>{SORT_SCRIPT}</script>
</body>
</html>
"""
