"""The scan on the map: ``tiles.geojson`` (a classifier's tiles) or ``cracks.geojson`` (a segmenter's cracks; a task
names its map and feature: :class:`~crack_lightning.scanning.tasks.ScanTask`) for the georeferenced photos of a scan, in their coordinate system, for GIS software (QGIS, ArcGIS, GDAL).

Each tile or crack is a polygon (a crack's is its bounding box) with the numbers of its CSV row; a crack's length and
widths are also in metres, from the photo's pixel size. The legacy ``crs`` member names the coordinate system (RFC 7946
GeoJSON is WGS 84 only; GDAL and QGIS read ``crs`` for projected data, as orthomosaics are). Written at the end of the
scan from the CSV files, like the report, so a resumed scan's map holds every photo; photos in another coordinate
system than the first georeferenced one are left out of it (one file has one system), and said so.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

from crack_lightning.io.georef import Georeference, read_georeference

Feature = Callable[[dict[str, str], Georeference], dict]  # a CSV row's feature on the map


def _float(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _metres(pixels: str, georef: Georeference) -> float | None:
    size = georef.metres_per_pixel
    return round(float(pixels) * size, 6) if pixels and size else None


def box_feature(row: dict[str, str], georef: Georeference, **properties) -> dict:
    """A feature of the row's box (``x, y, width, height`` in pixels) in the map's coordinates, with the photo's name
    and ``properties``."""
    box = [int(row[k]) for k in ("x", "y", "width", "height")]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": georef.polygon(*box)},
        "properties": {"photo": row["photo"], **properties},
    }


def tile_feature(row: dict[str, str], georef: Georeference) -> dict:
    x, y, width, height = (int(row[k]) for k in ("x", "y", "width", "height"))
    return box_feature(
        row,
        georef,
        x=x,
        y=y,
        width=width,
        height=height,
        crack_probability=_float(row["crack_probability"]),
        label=row["label"],
    )


def crack_feature(row: dict[str, str], georef: Georeference) -> dict:
    return box_feature(
        row,
        georef,
        crack=int(row["crack"]),
        length_m=_metres(row["length_px"], georef),
        mean_width_m=_metres(row["mean_width_px"], georef),
        max_width_m=_metres(row["max_width_px"], georef),
        width_class=row["width_class"],
        length_px=_float(row["length_px"]),
        max_width_px=_float(row["max_width_px"]),
    )


def write_geojson(
    folder: str | os.PathLike, paths: dict[str, Path], details_csv: str, name: str | None, feature: Feature | None
) -> tuple[list[str], list[str]]:
    """Write the map ``name`` of ``details_csv``'s rows (``tiles.csv``, ``cracks.csv``...), a ``feature`` each, into
    ``folder`` (nothing when no photo is georeferenced, or the task draws no map: ``name`` None); ``paths``: each
    photo's file. Returns the photos on the map and those left out of it."""
    if name is None or feature is None:
        return [], []
    folder = Path(folder)
    georefs = {n: g for n, path in paths.items() if (g := read_georeference(path)) is not None}
    if not georefs:
        return [], []
    crs = next(iter(georefs.values())).crs_name
    left_out = sorted(n for n, g in georefs.items() if g.crs_name != crs)
    georefs = {n: g for n, g in georefs.items() if g.crs_name == crs}
    target = folder / name
    partial = target.with_name(f".{name}.{os.getpid()}.partial")
    try:
        # written a feature at a time: an orthomosaic's tiles are tens of thousands
        with open(folder / details_csv, newline="") as rows, open(partial, "w") as out:
            out.write('{"type": "FeatureCollection",\n')
            if crs:
                out.write(f'"crs": {json.dumps({"type": "name", "properties": {"name": crs}})},\n')
            out.write('"features": [\n')
            first = True
            for row in csv.DictReader(rows):
                georef = georefs.get(row["photo"])
                if georef is None:
                    continue
                out.write(("" if first else ",\n") + json.dumps(feature(row, georef)))
                first = False
            out.write("\n]}\n")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return sorted(georefs), left_out


def map_counts(mapped: list[str], left_out: list[str]) -> dict[str, int]:
    """For the scan's counts: how many photos are on the map, and how many georeferenced ones are not."""
    return {"mapped": len(mapped), "map_left_out": len(left_out)}


def map_line(counts: dict[str, int], name: str) -> str:
    """The command's line about the map, or "" without one."""
    if not counts.get("mapped"):
        return ""
    other = f"; {counts['map_left_out']} in another coordinate system left out" if counts.get("map_left_out") else ""
    return f"Map: {name} ({counts['mapped']} georeferenced photos{other}), to open in GIS software."
