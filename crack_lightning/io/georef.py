"""Map coordinates of a georeferenced photo (GeoTIFF): where each pixel lies in the file's coordinate system.

Read from the GeoTIFF tags drone software writes (ModelPixelScale + ModelTiepoint, or ModelTransformation; the
GeoKeyDirectory for the EPSG code, units and pixel-is-point), with tifffile: no GDAL needed for an affine
georeference, which is what orthomosaics carry. Pixel ``(column, row)`` here is the corner of that pixel, as the tile
and crack boxes count them, so a pixel-is-point file is shifted by half a pixel (as GDAL does).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

MODEL_PIXEL_SCALE, MODEL_TIEPOINT, MODEL_TRANSFORMATION, GEO_KEY_DIRECTORY = 33550, 33922, 34264, 34735
GT_MODEL_TYPE, GT_RASTER_TYPE, GEOGRAPHIC_TYPE, PROJECTED_CS_TYPE, PROJ_LINEAR_UNITS = 1024, 1025, 2048, 3072, 3076
PIXEL_IS_POINT, MODEL_TYPE_GEOGRAPHIC, USER_DEFINED = 2, 2, 32767
METRES_PER_UNIT = {9001: 1.0, 9002: 0.3048, 9003: 1200 / 3937}  # EPSG unit codes: metre, foot, US survey foot


@dataclass(frozen=True)
class Georeference:
    """``x = a * column + b * row + c``, ``y = d * column + e * row + f`` in the coordinate system ``epsg``;
    ``metres_per_unit``: None where the units are not linear (degrees of a geographic system) or unknown."""

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float
    epsg: int | None
    metres_per_unit: float | None

    def to_map(self, column: float, row: float) -> tuple[float, float]:
        return self.a * column + self.b * row + self.c, self.d * column + self.e * row + self.f

    @property
    def metres_per_pixel(self) -> float | None:
        """The side of a pixel on the ground (the square root of its area, for pixels not square), or None."""
        if self.metres_per_unit is None:
            return None
        return math.sqrt(abs(self.a * self.e - self.b * self.d)) * self.metres_per_unit

    @property
    def mm_per_px(self) -> float | None:
        size = self.metres_per_pixel
        return size * 1000 if size else None

    @property
    def crs_name(self) -> str | None:
        """The coordinate system as GeoJSON's legacy ``crs`` member names it (GDAL and QGIS read it)."""
        if self.epsg is None:
            return None
        # EPSG:4326 is latitude first; GeoJSON's coordinates are longitude first, which CRS84 names
        return "urn:ogc:def:crs:OGC:1.3:CRS84" if self.epsg == 4326 else f"urn:ogc:def:crs:EPSG::{self.epsg}"

    def polygon(self, x: int, y: int, width: int, height: int) -> list[list[list[float]]]:
        """A pixel box as a GeoJSON polygon's rings: its four corners in map coordinates, closed."""
        corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height), (x, y)]
        return [[list(self.to_map(cx, cy)) for cx, cy in corners]]


def geo_keys(directory: tuple | list) -> dict[int, int]:
    """The GeoKeyDirectory's short keys (those stored in the directory itself) as ``{key: value}``."""
    keys = {}
    values = list(directory)
    for i in range(4, 4 + 4 * int(values[3]), 4):
        key, location, _, value = values[i : i + 4]
        if location == 0:
            keys[int(key)] = int(value)
    return keys


def from_tags(tags: dict[int, object]) -> Georeference | None:
    """A georeference from a TIFF's tags ``{code: value}``, or None when it has none."""
    keys = geo_keys(tags[GEO_KEY_DIRECTORY]) if GEO_KEY_DIRECTORY in tags else {}
    if MODEL_TRANSFORMATION in tags:
        m = [float(v) for v in tags[MODEL_TRANSFORMATION]]
        a, b, c, d, e, f = m[0], m[1], m[3], m[4], m[5], m[7]
    elif MODEL_PIXEL_SCALE in tags and MODEL_TIEPOINT in tags:
        sx, sy = (float(v) for v in list(tags[MODEL_PIXEL_SCALE])[:2])
        i, j, _, x, y = (float(v) for v in list(tags[MODEL_TIEPOINT])[:5])
        a, b, c, d, e, f = sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy
    else:
        return None
    if keys.get(GT_RASTER_TYPE) == PIXEL_IS_POINT:  # the tie point is a pixel's centre: move it to its corner
        c, f = c - 0.5 * (a + b), f - 0.5 * (d + e)
    geographic = keys.get(GT_MODEL_TYPE) == MODEL_TYPE_GEOGRAPHIC
    code = keys.get(GEOGRAPHIC_TYPE if geographic else PROJECTED_CS_TYPE)
    epsg = code if code and code != USER_DEFINED else None
    # a projected system's units: its key, else metres (what nearly every projected EPSG system uses)
    unit = None if geographic else METRES_PER_UNIT.get(keys.get(PROJ_LINEAR_UNITS, 9001))
    return Georeference(a, b, c, d, e, f, epsg, unit)


def read_georeference(path: str | os.PathLike) -> Georeference | None:
    """The georeference of a TIFF file, or None (any other file, or a TIFF without GeoTIFF tags)."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            tags = {tag.code: tag.value for tag in tif.pages.first.tags.values()}
    except (tifffile.TiffFileError, OSError, ValueError):
        return None
    return from_tags(tags)
