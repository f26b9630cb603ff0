"""A drone photo's ground sampling distance from its metadata: the lens's focal length and the sensor's size (EXIF),
the height above the take-off point and the gimbal's pitch (DJI's XMP), for photos taken straight down.

``GSD = pixel pitch * height / focal length``: the pixel pitch from EXIF's focal plane resolution where given, else
from the 35 mm equivalent focal length (which fixes the sensor's diagonal: 43.27 mm at the equivalent focal length,
the CIPA definition). It is an estimate: the height is above the take-off point, not above the surface photographed,
and the 35 mm equivalent is rounded to a whole millimetre. An oblique photo (gimbal pitch more than
``NADIR_TOLERANCE`` degrees from straight down) has a different scale at every row, and gets none.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

EXIF_IFD = 0x8769
FOCAL_LENGTH, FOCAL_35MM = 0x920A, 0xA405
FOCAL_PLANE_X, FOCAL_PLANE_UNIT, PIXEL_X, PIXEL_Y = 0xA20E, 0xA210, 0xA002, 0xA003
MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # EXIF resolution units: inch, cm, mm, um
FULL_FRAME_DIAGONAL_MM = math.hypot(36, 24)
NADIR_TOLERANCE = 5.0  # degrees: 5 degrees off nadir already makes the scale of the photo's edges differ by ~6%
XMP_BYTES = 1 << 20  # XMP sits in the file's first segments; DJI's within the first 64 KB


@dataclass(frozen=True)
class DroneScale:
    """The estimate (``mm_per_px`` None when there is none) and ``note``: what it rests on, or why there is none
    ("" when the photo is no drone photo at all)."""

    mm_per_px: float | None
    note: str = ""


def xmp_value(xmp: bytes, name: str) -> float | None:
    """A number of the XMP packet, as an attribute (``drone-dji:Name="+30.2"``) or an element."""
    found = re.search(rb"drone-dji:" + name.encode() + rb'\s*=\s*"([^"]*)"', xmp) or re.search(
        rb"<drone-dji:" + name.encode() + rb">([^<]*)<", xmp
    )
    try:
        return float(found.group(1)) if found else None
    except ValueError:
        return None


def read_xmp(path: str | os.PathLike) -> bytes:
    """The start of the file, where its XMP packet is (JPEG APP1, TIFF/DNG tag 700, HEIC item)."""
    with open(path, "rb") as f:
        head = f.read(XMP_BYTES)
    start = head.find(b"<x:xmpmeta")
    return head[start : head.find(b"</x:xmpmeta>", start) + 12] if start >= 0 else b""


def pixel_pitch_mm(exif: dict, size: tuple[int, int]) -> tuple[float, str] | None:
    """``(pitch, how)``: the side of one pixel of the image of ``size`` ``(width, height)`` on the sensor, in mm."""
    focal = float(exif.get(FOCAL_LENGTH) or 0)
    long_side = max(size)
    recorded = max(int(exif.get(PIXEL_X) or 0), int(exif.get(PIXEL_Y) or 0)) or long_side
    resolution, unit = float(exif.get(FOCAL_PLANE_X) or 0), MM_PER_UNIT.get(int(exif.get(FOCAL_PLANE_UNIT) or 0))
    if resolution > 0 and unit:
        pitch = unit / resolution * recorded / long_side  # a smaller copy's pixels cover more of the sensor
        if 1 < pitch * long_side < 60:  # a sensor's long side; some cameras write nonsense here
            return pitch, f"{pitch * long_side:.1f} mm sensor (focal plane resolution)"
    equivalent = float(exif.get(FOCAL_35MM) or 0)
    if focal > 0 and equivalent > 0:
        diagonal = FULL_FRAME_DIAGONAL_MM * focal / equivalent
        return diagonal / math.hypot(*size), f"{diagonal:.1f} mm sensor diagonal ({equivalent:g} mm equivalent)"
    return None


def drone_scale(photo: str | os.PathLike | Image.Image, size: tuple[int, int]) -> DroneScale:
    """The GSD of a drone photo (a path or a PIL image) decoded at ``size`` ``(width, height)``; no estimate, and
    the reason, for an oblique photo or missing metadata; no note for a photo without a drone's height at all."""
    try:
        if isinstance(photo, Image.Image):
            xmp = photo.info.get("xmp", b"")
        else:
            xmp = read_xmp(photo) if Path(photo).is_file() else b""
    except OSError:
        return DroneScale(None)
    xmp = xmp.encode() if isinstance(xmp, str) else bytes(xmp or b"")
    height = xmp_value(xmp, "RelativeAltitude")
    if height is None:
        return DroneScale(None)  # no drone photo: nothing to say
    # The EXIF only now: reading it decodes a whole PNG (its eXIf chunk may follow the pixels).
    try:
        if isinstance(photo, Image.Image):
            exif = photo.getexif().get_ifd(EXIF_IFD)
        else:
            with Image.open(photo) as image:
                exif = image.getexif().get_ifd(EXIF_IFD)
    except (OSError, ValueError, SyntaxError):
        return DroneScale(None)
    pitch = xmp_value(xmp, "GimbalPitchDegree")
    if pitch is None:
        return DroneScale(None, "drone photo without GimbalPitchDegree: not known to look straight down; no GSD")
    if abs(pitch + 90) > NADIR_TOLERANCE:
        return DroneScale(
            None,
            f"oblique drone photo (gimbal pitch {pitch:g} degrees, more than {NADIR_TOLERANCE:g} from -90): its "
            "scale changes across the photo; no GSD",
        )
    if height <= 0:
        return DroneScale(None, f"drone photo {height:g} m above its take-off point: no GSD")
    focal = float(exif.get(FOCAL_LENGTH) or 0)
    sensor = pixel_pitch_mm(exif, size)
    if focal <= 0 or sensor is None:
        return DroneScale(None, "drone photo without focal length and sensor size in its EXIF: no GSD")
    pitch_mm, how = sensor
    gsd = pitch_mm * height * 1000 / focal
    return DroneScale(gsd, f"estimate: {height:g} m above take-off (DJI XMP), {focal:g} mm lens, {how}")
