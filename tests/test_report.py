"""report.html: what it lists and in which order, kept in step with photos.csv, and the page in a real browser."""

from __future__ import annotations

import csv
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from crack_lightning.cli import main
from crack_lightning.report.html import PHOTO_COLUMN, Column, ReportPhoto, render_page
from crack_lightning.runtime.models import shipped_model
from tests.test_scan import blocks, bright, brightness_model, mosaic, plain_argv  # noqa: F401  (bright, plain_argv: the scan tests' fixtures)


class Rows(HTMLParser):
    """The photo table's body rows: each a list of cells ``{value, text, name, links, images}`` (``name``: the text of
    the photo's name)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[dict]] = []
        self.depth = 0  # nested tables (a photo's cracks) are inside a cell
        self.in_body = False
        self.in_name = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.depth += 1
        elif tag == "tbody" and self.depth == 1:
            self.in_body = True
        elif self.in_body and self.depth == 1 and tag == "tr":
            self.rows.append([])
        elif self.in_body and self.depth == 1 and tag == "td":
            self.rows[-1].append({"value": attrs.get("data-value"), "text": "", "name": "", "links": [], "images": []})
        elif self.in_body and self.rows and self.rows[-1]:
            if tag == "a":
                self.rows[-1][-1]["links"].append(attrs["href"])
            if tag == "img":
                self.rows[-1][-1]["images"].append(attrs["src"])
            self.in_name = self.in_name or (tag == "span" and attrs.get("class") == "name")

    def handle_endtag(self, tag):
        self.in_name = self.in_name and tag != "span"
        if tag == "table":
            self.depth -= 1
        elif tag == "tbody" and self.depth == 1:
            self.in_body = False

    def handle_data(self, data):
        if self.in_body and self.rows and self.rows[-1]:
            self.rows[-1][-1]["text"] += data
            self.rows[-1][-1]["name"] += data if self.in_name else ""


def page_rows(page: Path) -> list[list[dict]]:
    parser = Rows()
    parser.feed(page.read_text())
    return parser.rows


def photos_csv(folder: Path) -> list[dict]:
    with open(folder / "photos.csv", newline="") as f:
        return list(csv.DictReader(f))


def scan(model: Path, source: Path, output: Path, *extra: str) -> None:
    main(
        [
            "scan",
            "--ckpt_path",
            str(model),
            "--input",
            str(source),
            "--output",
            str(output),
            "--progress",
            "false",
            "--tile",
            "64",
            "--context",
            "0",
            *extra,
        ]
    )


PHOTO = 2  # the photo's cell: its name, linking to the original


def test_rows_are_worst_first_and_link_the_pictures(bright, tmp_path):
    photos = tmp_path / "photos"
    blocks(photos / "half.png", [[255, 0]])  # 1 of 2 tiles a crack, probability 1
    blocks(photos / "sub" / "all.png", [[255, 204]])  # every tile
    blocks(photos / "none.png", [[0, 51]])  # none
    blocks(photos / "half dim.png", [[0, 153]])  # 1 of 2, probability 0.6
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 cut")
    out = tmp_path / "out"
    scan(bright, photos, out)
    rows = page_rows(out / "report.html")
    order = ("sub/all.png", "half.png", "half dim.png", "none.png")
    assert [r[PHOTO]["links"] for r in rows][:4] == [[(photos / n).resolve().as_uri()] for n in order]
    assert "broken.jpg" in rows[4][PHOTO]["text"] and "cannot be read as an image" in rows[4][PHOTO]["text"]
    assert [r[0]["value"] for r in rows] == ["1", "2", "3", "4", "5"]
    overlay = rows[0][1]
    assert overlay["links"] == ["overlays/sub/all.png.png"] and overlay["images"] == ["thumbnails/sub/all.png.jpg"]
    assert all((out / unquote(r[1]["images"][0])).is_file() for r in rows[:4])
    page = (out / "report.html").read_text()
    assert "http" not in page.replace("http-equiv", "")  # nothing from the network
    assert "3 with cracks" in page and "1 unreadable" in page and "64 px, stride 64 px" in page


def test_report_false_writes_no_page_and_the_page_follows_resume_and_overwrite(bright, tmp_path):
    photos = tmp_path / "photos"
    for name in "abc":
        blocks(photos / f"{name}.png", [[0, 255]])
    out = tmp_path / "out"
    scan(bright, photos / "a.png", out, "--report", "false")
    assert not (out / "report.html").exists()
    scan(bright, photos, out, "--resume", "true")  # a.png done before; the page lists all three
    assert (
        [r[PHOTO]["name"] for r in page_rows(out / "report.html")]
        == [r["photo"] for r in photos_csv(out)]
        == ["a.png", "b.png", "c.png"]
    )
    (photos / "c.png").unlink()
    scan(bright, photos, out, "--overwrite", "true")
    assert len(page_rows(out / "report.html")) == len(photos_csv(out)) == 2


def test_a_segmentation_scan_can_list_each_crack_under_its_photo():
    photos = [
        ReportPhoto(
            "a.jpg",
            100,
            80,
            details=[
                {"crack": 1, "length_mm": 52.0, "max_width_mm": 0.4, "width_class": "medium"},
                {"crack": 2, "length_mm": 7.5, "max_width_mm": 0.1, "width_class": "fine"},
            ],
        ),
        ReportPhoto("b.jpg", 100, 80),
    ]
    columns = [
        PHOTO_COLUMN,
        Column(
            "Total length (mm)",
            lambda p: f"{sum(c['length_mm'] for c in p.details):.1f}",
            lambda p: sum(c["length_mm"] for c in p.details),
        ),
    ]
    parser = Rows()
    parser.feed(render_page("Cracks", [("Model", "segmenter")], photos, columns))
    assert len(parser.rows) == 2  # one row per photo, the cracks nested in it
    assert "52.0" in parser.rows[0][PHOTO]["text"] and "medium" in parser.rows[0][PHOTO]["text"]
    assert parser.rows[0][3]["text"].strip() == "59.5" and parser.rows[0][3]["value"] == "59.5"


# -- in Chromium -------------------------------------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def report_model(tmp_path_factory, request) -> Path:
    """The shipped model where it is there; else the test fixture checkpoint, exported."""
    shipped = shipped_model("concrete-v1")
    if shipped is not None and shipped.graph.is_file():
        return shipped.graph
    from crack_lightning.export.onnx import export_checkpoint

    path = tmp_path_factory.mktemp("report_model") / "model.onnx"
    path.write_bytes(export_checkpoint(request.getfixturevalue("trained")["ckpt"]))
    return path


def test_report_in_a_browser_from_a_moved_folder(report_model, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    executable = chromium()
    photos = tmp_path / "photos"
    mosaic(photos / "wall A" / "crack across.jpg", [[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]], first=150)
    mosaic(photos / "wall A" / "sound.jpg", [[0, 0, 0], [0, 0, 0]], first=170)
    mosaic(photos / "wall B" / "two cracks.jpg", [[1, 0, 0], [0, 0, 1]], first=190)
    mosaic(photos / "tiny.jpg", [[1]], first=210)
    (photos / "unreadable.jpg").write_bytes(b"\xff\xd8 cut")
    scanned = tmp_path / "scan"
    main(
        [
            "scan",
            "--ckpt_path",
            str(report_model),
            "--input",
            str(photos),
            "--output",
            str(scanned),
            "--progress",
            "false",
            "--tile",
            "227",
            "--stride",
            "113",
        ]
    )
    moved = tmp_path / "elsewhere" / "site report"
    shutil.move(scanned, moved)
    expected = len(photos_csv(moved))

    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
            page.goto((moved / "report.html").as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
            rows = page.locator("#photos tbody tr")
            names = lambda: rows.evaluate_all("rows => rows.map(r => r.cells[2].querySelector('.name').textContent)")
            shares = rows.evaluate_all("rows => rows.map(r => parseFloat(r.cells[3].dataset.value))")
            worst_first = names()
            page.screenshot(path=tmp_path / "report.png", full_page=True)
            page.click("th:has-text('Photo')")
            by_name = names()
            page.click("th:has-text('Photo')")
            by_name_reversed = names()
            links = page.eval_on_selector_all("#photos tbody a", "links => links.map(a => a.href)")
        finally:
            browser.close()

    assert problems == []
    assert len(widths) == expected - 1 and all(w > 0 for w in widths)  # a thumbnail for each photo read
    assert len(worst_first) == expected
    assert shares == sorted(shares, reverse=True) and shares[0] > 0
    assert by_name == sorted(worst_first, key=str.lower) != worst_first and by_name_reversed == by_name[::-1]
    files = [Path(unquote(urlparse(link).path)) for link in links]
    assert all(f.is_file() for f in files), files  # overlays beside the moved page, originals where they are
    assert sum(moved in f.parents for f in files) == expected - 1  # one overlay each
    assert (tmp_path / "report.png").stat().st_size > 10_000
