"""The report page: one offline HTML file (no CDN, no server) that links the pictures of its folder relatively, so
the folder can be moved, zipped and sent. It knows nothing of CSV files or models: a page description
(:mod:`crack_lightning.report.pages`) hands it :class:`ReportPhoto` rows, the columns and the lines of its header.

A photo's ``details`` (one dict per crack: length, width, width class...) are listed under its name in a nested
table, so the page keeps one ``<tbody>`` row per photo. A task's page adds its own fields in a subclass of
:class:`ReportPhoto` (a tile map's tile counts, a crack mask's lengths).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from crack_lightning.io.images import skip_reason
from crack_lightning.results.pictures import colour_table


@dataclass
class ReportPhoto:
    """One photo's row of the page. ``photo`` is its full source path as in ``photos.csv``; the links are URLs
    relative to the page (or ``file://``), empty when there is nothing to link."""

    photo: str
    width: int = 0
    height: int = 0
    label: str = ""
    error: str = ""
    overlay: str = ""
    thumbnail: str = ""
    original: str = ""
    details: list[dict] = field(default_factory=list)  # listed under its name: one dict per crack (length, width...)
    details_unit: str = "crack"  # what one of ``details`` is, for the list's title


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
    image = (
        f'<img src="{html.escape(p.thumbnail)}" alt="crack map of {html.escape(p.photo)}">'
        if p.thumbnail
        else "no overlay"
    )
    return _link(p.overlay, image)


def _photo_cell(p: ReportPhoto) -> str:
    name = _link(p.original, f'<span class="name">{html.escape(p.photo)}</span>')
    size = (
        f'<div class="meta">{p.width} x {p.height} px</div>'
        if not p.error
        else f'<div class="error">{html.escape(p.error)}</div>'
    )
    return name + size + _details_table(p.details, p.details_unit)


def _details_table(details: list[dict], unit: str) -> str:
    if not details:
        return ""
    keys = list(details[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c.get(k, '')))}</td>" for k in keys) + "</tr>" for c in details
    )
    title = f"{len(details)} {html.escape(unit)}{'' if len(details) == 1 else 's'}"
    return f'<details><summary>{title}</summary><table class="cracks"><tr>{head}</tr>{rows}</table></details>'


PHOTO_COLUMN = Column("Photo", _photo_cell, lambda p: p.photo, numeric=False)  # name, size or error, cracks
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
    columns: Sequence[Column],
) -> str:
    """The page: ``title``, the ``(name, HTML)`` facts of the scan, unreadable photos, then the photo table in the
    order given (sort it with :func:`worst_first`), every column sortable by a click on its header."""
    fact_rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
    unreadable = [p for p in photos if p.error]
    errors = ""
    if unreadable:
        items = "".join(
            f"<li>{html.escape(p.photo)}: <b>{skip_reason(p.error)}</b>: <span class=error>"
            f"{html.escape(p.error)}</span></li>"
            for p in unreadable
        )
        errors = f"<h2>Files not scanned ({len(unreadable)})</h2><ul>{items}</ul>"
    # The rank sorts as text (1, 2, ... first); the crack map column does not sort.
    head = ['<th data-sort="text" aria-sort="ascending">#</th>', "<th>Crack map</th>"]
    head += [f'<th data-sort="{"number" if c.numeric else "text"}">{html.escape(c.title)}</th>' for c in columns]
    rows = []
    for rank, photo in enumerate(photos, 1):
        cells = [f'<td data-value="{rank}">{rank}</td>', f"<td>{_overlay_cell(photo)}</td>"]
        cells += [
            f'<td data-value="{html.escape(str(c.sort(photo)))}"{" class=number" if c.numeric else ""}>{c.cell(photo)}</td>'
            for c in columns
        ]
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
<thead><tr>{"".join(head)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<script>{SORT_SCRIPT}</script>
</body>
</html>
"""
