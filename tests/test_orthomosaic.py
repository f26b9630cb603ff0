"""Orthomosaics: tiled TIFF/BigTIFF read window by window give the crack map and cracks of the decoded photo; no-data
and alpha areas are skipped and shown as such; pictures are drawn smaller; memory follows the window.

Files are made here with tifffile from photos of sample patches (classifier) and of dark lines on noise (segmenter).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageDraw

from crack_lightning.io.preview import CHECKER_GREYS
from crack_lightning.io.tiff_windows import TiffWindows, windowed_tiff
from crack_lightning.measure.components import BandComponents
from tests.test_photo_formats import sample_photo
from tests.test_scan import bright, brightness_model, plain_argv, read_rows, scan  # noqa: F401  (bright, plain_argv: the scan tests' fixtures)
from tests.test_segment_scan import darkness_model
from tests.test_segment_scan import scan as segment_scan


@pytest.fixture(scope="module")
def darkness(tmp_path_factory) -> Path:
    return darkness_model(tmp_path_factory.mktemp("darkness") / "darkness.onnx")


def by_photo(rows: list[dict], *columns: str) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for row in rows:
        out.setdefault(row["photo"], []).append(tuple(row[c] for c in columns))
    return out


def wide_photo() -> np.ndarray:
    return np.concatenate([sample_photo()] * 3, axis=1)  # 256 x 1152


def test_tiled_tiff_and_bigtiff_scan_as_the_decoded_photo(bright, tmp_path):
    photo = wide_photo()
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "photo.png")
    tifffile.imwrite(folder / "tiled.tif", photo, tile=(64, 128), photometric="rgb", compression="zlib")
    tifffile.imwrite(folder / "big.tif", photo, tile=(128, 128), photometric="rgb", compression="lzw", bigtiff=True)
    tifffile.imwrite(folder / "deep.tif", photo.astype(np.uint16) * 257, tile=(64, 64), photometric="rgb")
    tifffile.imwrite(folder / "float.tif", photo.astype(np.float32) / 255, tile=(64, 64), photometric="rgb")
    assert all(windowed_tiff(folder / n) for n in ("tiled.tif", "big.tif", "deep.tif", "float.tif"))
    scan(bright, folder, tmp_path / "out", "--tile", "64", "--context", "0.25", "--overlay_max_side", "600")
    maps = by_photo(read_rows(tmp_path / "out" / "tiles.csv"), "x", "y", "crack_probability", "label")
    assert maps["tiled.tif"] == maps["big.tif"] == maps["deep.tif"] == maps["float.tif"] == maps["photo.png"]
    rows = {r["photo"]: r for r in read_rows(tmp_path / "out" / "photos.csv")}
    assert (rows["big.tif"]["width"], rows["big.tif"]["height"]) == ("1152", "256")
    with Image.open(tmp_path / "out" / "overlays" / "big.tif.png") as overlay:
        assert max(overlay.size) <= 600  # drawn from a smaller copy of the photo


def test_alpha_and_nodata_areas_are_skipped_and_shown_as_such(bright, tmp_path):
    photo = wide_photo()
    folder = tmp_path / "photos"
    folder.mkdir()
    alpha = np.full(photo.shape[:2], 255, np.uint8)
    alpha[:, :320] = 0  # the survey's empty left part: 5 columns of 64-px tiles
    tifffile.imwrite(
        folder / "alpha.tif", np.dstack([photo, alpha]), tile=(64, 64), photometric="rgb", extrasamples=["unassalpha"]
    )
    nodata = photo.copy()
    nodata[:, :320] = 0
    tifffile.imwrite(
        folder / "nodata.tif", nodata, tile=(64, 64), photometric="rgb", extratags=[(42113, "s", 0, "0", True)]
    )
    Image.fromarray(photo).save(folder / "photo.png")
    scan(bright, folder, tmp_path / "out", "--tile", "64", "--context", "0")
    maps = by_photo(read_rows(tmp_path / "out" / "tiles.csv"), "x", "crack_probability", "label")
    for name in ("alpha.tif", "nodata.tif"):
        empty = [(x, p, label) for x, p, label in maps[name] if int(x) < 320]
        assert empty and all(p == "" and label == "no data" for _, p, label in empty), name
        kept = [row for row in maps[name] if int(row[0]) >= 320]
        assert kept == [row for row in maps["photo.png"] if int(row[0]) >= 320], name
        with Image.open(tmp_path / "out" / "overlays" / f"{name}.png") as overlay:
            left = np.asarray(overlay.convert("RGB"))[:, :300]
        assert set(np.unique(left)) <= set(CHECKER_GREYS)  # the empty area as a checkerboard, not as concrete


def line_mosaic(height: int = 700, width: int = 900) -> np.ndarray:
    """Bright noise with dark lines (cracks) of several widths, crossing tile and window edges; one speck."""
    mask = Image.new("L", (width, height))
    draw = ImageDraw.Draw(mask)
    for points, w in [
        ((20, 30, 880, 40), 3),
        ((100, 60, 600, 650), 5),
        ((700, 100, 705, 690), 4),
        ((720, 300, 890, 320), 2),
        ((50, 600, 52, 601), 1),
    ]:
        draw.line(points, fill=255, width=w)
    photo = np.random.default_rng(0).integers(120, 200, (height, width, 3), dtype=np.uint8)
    photo[np.asarray(mask) > 0] = 40
    return photo


def test_segmenter_on_a_tiled_tiff_finds_and_measures_the_same_cracks(darkness, tmp_path):
    photo = line_mosaic()
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "photo.png")
    tifffile.imwrite(folder / "ortho.tif", photo, tile=(64, 64), photometric="rgb", compression="zlib", bigtiff=True)
    segment_scan(darkness, folder, tmp_path / "out", "--mm_per_px", "0.5", "--overlay_max_side", "300")
    columns = (
        "crack",
        "x",
        "y",
        "width",
        "height",
        "length_px",
        "mean_width_px",
        "max_width_px",
        "length_mm",
        "width_class",
    )
    cracks = by_photo(read_rows(tmp_path / "out" / "cracks.csv"), *columns)
    assert len(cracks["photo.png"]) == 4 and cracks["ortho.tif"] == cracks["photo.png"]
    rows = {r["photo"]: r for r in read_rows(tmp_path / "out" / "photos.csv")}
    same = ("width", "height", "cracks", "total_length_px", "max_width_px", "max_crack_probability")
    assert [rows["ortho.tif"][c] for c in same] == [rows["photo.png"][c] for c in same]
    with Image.open(tmp_path / "out" / "masks" / "ortho.tif.png") as mask:
        assert max(mask.size) <= 300 and np.asarray(mask).max() > 200  # max-pooled: the cracks stay


def test_band_components_are_those_of_the_whole_mask():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    for _ in range(10):
        mask = rng.random((200, 150)) < rng.uniform(0.05, 0.5)
        found = BandComponents(150)
        top = 0
        while top < 200:
            rows = int(rng.integers(1, 50))
            found.add(mask[top : top + rows])
            top += rows
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        boxes, areas = ndimage.find_objects(labels), np.bincount(labels.ravel())[1:]
        got = found.components()
        assert len(got) == count
        for index, (c, box, area) in enumerate(zip(got, boxes, areas), start=1):
            assert (c.top, c.bottom, c.left, c.right, c.area) == (
                box[0].start,
                box[0].stop,
                box[1].start,
                box[1].stop,
                area,
            )
            assert labels[c.first] == index


def test_reading_a_window_holds_the_window_not_the_photo(tmp_path):
    """A 3072 x 6144 tiled TIFF (57 MB decoded) read in bands: numpy's peak allocation stays a few MB."""
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    with tifffile.TiffWriter(tmp_path / "big.tif", bigtiff=True) as tif:
        tif.write(
            (tile for _ in range(24 * 12)),
            shape=(6144, 3072, 3),
            dtype=np.uint8,
            tile=(256, 256),
            photometric="rgb",
            compression="zlib",
        )
    tracemalloc.start()
    with TiffWindows(tmp_path / "big.tif", keep_rows=256) as source:
        for top in range(0, 6144, 200):
            band = source.read(top, min(6144, top + 200), 1000, 1400)
            rows, columns = (top + np.arange(10)) % 256, (1000 + np.arange(10)) % 256  # the repeated tile's pixels
            assert np.array_equal(band[:10, :10], tile[np.ix_(rows, columns)])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 6144 * 3072 * 3 / 4  # a quarter of the photo: kept tile rows and one band, not the photo
