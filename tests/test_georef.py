"""Map coordinates: a GeoTIFF the test writes (tifffile, GeoTIFF tags) scanned into cracks.geojson and tiles.geojson in
the file's coordinate system, the cracks measured in metres from its pixel size; read back and checked."""

from __future__ import annotations

import json
import sys

import pytest
import tifffile
from PIL import Image

from crack_lightning.io.georef import from_tags
from tests.test_orthomosaic import line_mosaic, wide_photo
from tests.test_scan import brightness_model, read_rows
from tests.test_scan import scan as classifier_scan
from tests.test_segment_scan import darkness_model, scan

EAST, NORTH, PIXEL_M, EPSG = 500_000.0, 5_400_000.0, 0.002, 32633  # UTM zone 33N, 2 mm pixels


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])


def geo_tags(epsg: int = EPSG, pixel: float = PIXEL_M) -> list[tuple]:
    keys = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, epsg]  # projected, pixel is area, the EPSG code
    return [
        (33550, "d", 3, (pixel, pixel, 0.0), True),
        (33922, "d", 6, (0.0, 0.0, 0.0, EAST, NORTH, 0.0), True),
        (34735, "H", len(keys), keys, True),
    ]


def test_cracks_geojson_in_the_files_crs_with_metres(tmp_path):
    photo = line_mosaic()
    folder = tmp_path / "photos"
    folder.mkdir()
    tifffile.imwrite(folder / "striped.tif", photo, photometric="rgb", extratags=geo_tags())
    tifffile.imwrite(folder / "ortho.tif", photo, photometric="rgb", tile=(64, 64), extratags=geo_tags())
    Image.fromarray(photo).save(folder / "plain.png")  # not georeferenced: in the CSV, not on the map
    darkness = darkness_model(tmp_path / "darkness.onnx")
    scan(darkness, folder, tmp_path / "out")
    cracks = read_rows(tmp_path / "out" / "cracks.csv")
    # --mm_per_px from the georeference: 2 mm a pixel; the plain photo gets no scale
    for row in cracks:
        if row["photo"] == "plain.png":
            assert row["length_mm"] == ""
        else:  # the CSV's pixels have 2 decimals
            assert float(row["length_mm"]) == pytest.approx(float(row["length_px"]) * 2, abs=0.011)
    mapped = json.loads((tmp_path / "out" / "cracks.geojson").read_text())
    assert mapped["crs"] == {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{EPSG}"}}
    features = mapped["features"]
    assert {f["properties"]["photo"] for f in features} == {"striped.tif", "ortho.tif"}
    by_key = {(r["photo"], r["crack"]): r for r in cracks}
    assert len(features) == sum(r["photo"] != "plain.png" for r in cracks) >= 4
    for feature in features:
        p = feature["properties"]
        row = by_key[(p["photo"], str(p["crack"]))]
        x, y, w, h = (int(row[k]) for k in ("x", "y", "width", "height"))
        ring = feature["geometry"]["coordinates"][0]
        assert ring[0] == pytest.approx([EAST + x * PIXEL_M, NORTH - y * PIXEL_M])
        assert ring[2] == pytest.approx([EAST + (x + w) * PIXEL_M, NORTH - (y + h) * PIXEL_M])
        assert p["length_m"] == pytest.approx(float(row["length_px"]) * PIXEL_M, abs=1e-6)
        assert p["max_width_m"] == pytest.approx(float(row["max_width_px"]) * PIXEL_M, abs=1e-6)
    photos = {r["photo"]: r for r in read_rows(tmp_path / "out" / "photos.csv")}
    assert float(photos["ortho.tif"]["total_length_mm"]) == pytest.approx(
        float(photos["ortho.tif"]["total_length_px"]) * 2, abs=0.01
    )


def test_tile_map_polygons_and_a_given_scale_wins(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    tifffile.imwrite(folder / "ortho.tif", wide_photo(), photometric="rgb", tile=(64, 64), extratags=geo_tags())
    classifier_scan(brightness_model(tmp_path / "bright.onnx"), folder, tmp_path / "out", "--tile", "64")
    assert "Map: tiles.geojson (1 georeferenced photos)" in capsys.readouterr().out
    tiles = read_rows(tmp_path / "out" / "tiles.csv")
    features = json.loads((tmp_path / "out" / "tiles.geojson").read_text())["features"]
    assert len(features) == len(tiles) == 18 * 4
    last = features[-1]
    assert last["properties"]["label"] == tiles[-1]["label"]
    assert last["properties"]["crack_probability"] == pytest.approx(float(tiles[-1]["crack_probability"]))
    assert last["geometry"]["coordinates"][0][2] == pytest.approx([EAST + 1152 * PIXEL_M, NORTH - 256 * PIXEL_M])

    scan(darkness_model(tmp_path / "darkness.onnx"), folder, tmp_path / "seg", "--mm_per_px", "5")
    for row in read_rows(tmp_path / "seg" / "cracks.csv"):  # the scale given wins over the georeference's
        assert float(row["length_mm"]) == pytest.approx(float(row["length_px"]) * 5, abs=0.03)


def test_georeference_tags_transformation_pixel_is_point_and_degrees():
    matrix = [0.5, 0.0, 0.0, 1000.0, 0.0, -0.5, 0.0, 2000.0, 0, 0, 0, 0, 0, 0, 0, 1]
    point = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 2, 3072, 0, 1, 2056]
    georef = from_tags({34264: matrix, 34735: point})
    assert georef.to_map(0, 0) == pytest.approx((999.75, 2000.25))  # the tie point was a pixel centre
    assert georef.mm_per_px == pytest.approx(500.0) and georef.epsg == 2056
    degrees = from_tags(
        {33550: (1e-6, 1e-6, 0), 33922: (0, 0, 0, 13.4, 52.5, 0), 34735: [1, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326]}
    )
    assert degrees.mm_per_px is None  # no metres from degrees
    assert degrees.crs_name == "urn:ogc:def:crs:OGC:1.3:CRS84"
    assert from_tags({256: 10}) is None
