"""The marker card's accuracy (docs/scale.md) and the README's pictures of it.

    python bench/marker_example.py            # the accuracy table: scale and crack length against the truth
    python bench/marker_example.py --pictures # also docs/images/marker-card.png, marker-photo.jpg, marker-scan.jpg

Photos are made from the shipped sample patches (CC BY 4.0), given 0.25 mm per pixel, with the card rendered in by
a pinhole camera turned 0 to 60 degrees away from face-on (crack_lightning.synth.card_photo), saved as JPEG
(quality 90), so the truth is known: the scale at the marker, a line across the whole photo, and a crack drawn
121 mm long and 0.5 or 1.0 mm wide on the card's plane (the surface), whose mask is measured through the card's homography and,
for comparison, at one scale (the marker's) for the whole photo.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from crack_lightning.measure.cracks import summarise
from crack_lightning.measure.measuring import Measuring
from crack_lightning.measure.plane import Plane
from crack_lightning.scale.marker import marker_scale
from crack_lightning.synth.card_photo import Camera, Card, card_photo, stroke_mask

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "crack_lightning" / "assets" / "sample"
IMAGES = REPO / "docs" / "images"
PATCH = 227


def surface(columns: int, rows: int, cracks: set = frozenset()) -> np.ndarray:
    sound = iter(sorted((SAMPLE / "Negative").glob("*.jpg"))[::-1])
    cracked = iter(sorted((SAMPLE / "Positive").glob("*.jpg"))[::-1])
    out = np.zeros((rows * PATCH, columns * PATCH, 3), np.uint8)
    for row in range(rows):
        for column in range(columns):
            with Image.open(next(cracked if (column, row) in cracks else sound)) as patch:
                out[row * PATCH : (row + 1) * PATCH, column * PATCH : (column + 1) * PATCH] = patch.convert("RGB")
    return out


def jpeg(photo: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=90)
    return np.asarray(Image.open(buffer))


def line_length(plane: Plane, ends: np.ndarray) -> float:
    return float(np.hypot(*np.diff(plane.to_mm(ends[:, 0], ends[:, 1]), axis=0)[0]))


def accuracy(mm_per_px: float, tilts=(0, 15, 30, 45, 60), turns=(0, 10, 35)) -> None:
    wall = surface(6, 5)
    t = np.linspace(0, 1, 60)
    path = np.c_[-20 + 110 * t, 35 + 15 * np.sin(5 * t)]  # on the surface, right of and below the card
    length = np.hypot(*np.diff(path, axis=0).T).sum()
    print(
        f"| tilt | marker side (px) | scale at the marker | line across the photo | crack {length:.0f} mm, "
        "1.0 / 0.5 mm wide: length, mean width | the same at the marker's one scale |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for tilt in tilts:
        camera = Camera((1000, 750), mm_per_px, tilt)
        rows = []
        for turn in turns:
            corner = np.array([-45.0, -20.0]) - Card(50, (0, 0), turn).marker_to_surface()[:2, :2] @ [25, 25]
            shot = card_photo(wall, 0.25, camera, [Card(50, tuple(corner), turn)])  # the marker's centre at -45, -20
            found = marker_scale(jpeg(shot.photo))
            if found.plane is None:
                rows.append(None)
                continue
            truth = Plane(shot.photo_to_marker())
            marker = found.markers[0]
            ends = np.array([[30.0, 40.0], [970.0, 710.0]])
            row = [marker.side_px, found.mm_per_px / truth.mm_per_px(*marker.centre) - 1]
            row.append(line_length(found.plane, ends) / line_length(truth, ends) - 1)
            for width in (1.0, 0.5):
                mask = stroke_mask(path, width, camera)
                # a thin crack's mask may break: its pieces together
                crack = summarise(Measuring(min_area=0).measure(mask, "wall", plane=found.plane), own_mm=True)
                flat = summarise(Measuring(min_area=0).measure(mask, "wall"), mm_per_px=found.mm_per_px)
                row += [crack.total_length_mm / length - 1, crack.mean_width_mm / width - 1]
                row.append(flat.total_length_mm / length - 1)
            rows.append(row)
        done = [r for r in rows if r is not None]
        if not done:
            print(f"| {tilt} | not found | | | | |")
            continue
        worst = np.abs(np.array(done)).max(axis=0)
        side = f"{min(r[0] for r in done):.0f}-{max(r[0] for r in done):.0f}"
        print(
            f"| {tilt} | {side} | {worst[1]:.2%} | {worst[2]:.2%} | {worst[3]:.1%}, {worst[4]:.1%} / "
            f"{worst[6]:.1%}, {worst[7]:.1%} | {worst[5]:.0%} / {worst[8]:.0%} |"
            + ("" if len(done) == len(rows) else f" ({len(rows) - len(done)} of {len(rows)} not found)")
        )
    print(
        f"\nWorst of in-plane turns {list(turns)} degrees; 1000 x 750 px photos, {mm_per_px} mm/px face-on at the centre.\n"
    )


def pictures() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    run = [sys.executable, "-m", "crack_lightning"]
    card = IMAGES / "marker-card.png"
    subprocess.run([*run, "marker", "--output", str(card), "--dpi", "150", "--overwrite", "true"], check=True)
    wall = surface(5, 4, {(2, 1), (3, 1), (3, 2), (4, 2)})
    shot = card_photo(wall, 0.25, Camera((1000, 750), 0.25, 30), [Card(50, (-82, -50), 4)])
    photo = IMAGES / "marker-photo.jpg"
    Image.fromarray(shot.photo).save(photo, quality=90)
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([*run, "scan", "--input", str(photo), "--output", folder, "--progress", "false"], check=True)
        Image.open(Path(folder) / "overlays" / "marker-photo.jpg.png").convert("RGB").save(
            IMAGES / "marker-scan.jpg", quality=85
        )
        with open(Path(folder) / "photos.csv", newline="") as f:
            (row,) = csv.DictReader(f)
        with open(Path(folder) / "cracks.csv", newline="") as f:
            cracks = list(csv.DictReader(f))
    marker = marker_scale(shot.photo).markers[0]
    truth = Plane(shot.photo_to_marker()).mm_per_px(*marker.centre)
    print({k: row[k] for k in ("mm_per_px", "scale_source", "total_length_mm", "max_width_mm", "scale_note")})
    print(f"true scale at the marker's centre: {truth:.6g} mm/px")
    for c in cracks:
        print({k: c[k] for k in ("crack", "length_px", "length_mm", "max_width_px", "max_width_mm", "width_class")})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", action="store_true", help="also write the README's pictures")
    args = parser.parse_args()
    accuracy(0.2)
    accuracy(0.6)  # a marker about 80 px wide
    if args.pictures:
        pictures()
