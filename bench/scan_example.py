"""The README's scan pictures: a photo made of the shipped sample patches, scanned, and a report page.

    python bench/scan_example.py [MODEL]            # writes bench/results/scan_example/{photo.jpg, scan/...}
    python bench/scan_example.py [MODEL] --report   # also report/ (4 photos) and report.png, its screenshot
    python bench/scan_example.py SEGMENTER.ckpt     # segment_example.png: crack patches and their crack overlays

MODEL: a checkpoint of fit, an .onnx written by export, or a shipped model's name (default: the shipped model).
The photo is 8 x 5 patches (1816 x 1135 px) of never-trained sample images: sound concrete with a line of crack
patches running across it, so the overlay shows whether the map follows the crack. The screenshot needs
Chromium (Debian: apt-get install chromium) and Playwright (pip install playwright).

With a segmenter, the newest crack patches of the sample (CC BY 4.0, never trained on) are scanned one by one, and
``segment_example.png`` shows each beside its overlay, with the length and width that ``cracks.csv`` gives.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

from crack_lightning import load_model, scan
from crack_lightning.tasks.segmentation import SEGMENTATION

PATCH = 227
SAMPLE = Path(__file__).resolve().parents[1] / "crack_lightning" / "assets" / "sample"
CRACK_PATH = {(0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 2), (7, 2), (3, 0)}  # (column, row) of crack patches
# More photos for the report: (name, columns, rows, crack patches)
REPORT_PHOTOS = [
    ("wall B/joint.jpg", 4, 3, {(1, 0), (1, 1), (1, 2)}),
    ("wall B/sound.jpg", 4, 3, set()),
    ("pier 3/corner.jpg", 3, 3, {(2, 2)}),
]


def patches():
    """The last sample images of each class, newest first: the test fixtures train on the first ones."""
    return (
        iter(sorted((SAMPLE / "Positive").glob("*.jpg"))[::-1]),
        iter(sorted((SAMPLE / "Negative").glob("*.jpg"))[::-1]),
    )


def make_photo(path: Path, columns: int, rows: int, cracks: set, crack, sound) -> Path:
    photo = Image.new("RGB", (columns * PATCH, rows * PATCH))
    for row in range(rows):
        for column in range(columns):
            with Image.open(next(crack if (column, row) in cracks else sound)) as patch:
                photo.paste(patch.convert("RGB"), (column * PATCH, row * PATCH))
    path.parent.mkdir(parents=True, exist_ok=True)
    photo.save(path, quality=92)
    return path


def screenshot(page: Path, picture: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"))
        tab = browser.new_page(viewport={"width": 1100, "height": 800})
        tab.goto(page.as_uri(), wait_until="load")
        tab.screenshot(path=picture, full_page=True)
        browser.close()


def segment_example(segmenter, output: Path, count: int) -> Path:
    """Scan ``count`` crack patches with ``segmenter``; a picture of each patch above its overlay and measurements."""
    photos = output / "patches"
    shutil.rmtree(photos, ignore_errors=True)
    photos.mkdir(parents=True)
    crack, _ = patches()
    for _ in range(count):
        shutil.copy(next(crack), photos)
    scan(photos, output / "scan", model=segmenter, overwrite=True, report=False)
    with open(output / "scan" / "cracks.csv", newline="") as f:
        cracks = list(csv.DictReader(f))
    names = sorted(p.name for p in photos.iterdir())
    gap, text = 6, 30
    picture = Image.new("RGB", (count * (PATCH + gap) - gap, 2 * PATCH + gap + text), "white")
    draw = ImageDraw.Draw(picture)
    for i, name in enumerate(names):
        x = i * (PATCH + gap)
        with Image.open(photos / name) as im:
            picture.paste(im.convert("RGB"), (x, 0))
        with Image.open(output / "scan" / "overlays" / f"{name}.png") as im:
            picture.paste(im.convert("RGB").resize((PATCH, PATCH)), (x, PATCH + gap))
        mine = [c for c in cracks if c["photo"].endswith(name)]
        length = sum(float(c["length_px"]) for c in mine)
        widest = max((float(c["max_width_px"]) for c in mine), default=0.0)
        draw.text(
            (x + 2, 2 * PATCH + gap + 2),
            f"{len(mine)} crack{'s' if len(mine) != 1 else ''}, {length:.0f} px long",
            fill="black",
        )
        draw.text((x + 2, 2 * PATCH + gap + 15), f"widest {widest:.1f} px", fill="black")
    path = output / "segment_example.png"
    picture.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=None)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "scan_example")
    parser.add_argument("--tile", type=int, default=PATCH)
    parser.add_argument("--stride", type=int, default=PATCH // 2)
    parser.add_argument("--report", action="store_true", help="also scan 4 photos into report/ and screenshot its page")
    parser.add_argument("--patches", type=int, default=5, help="segmenter: crack patches to show")
    args = parser.parse_args()
    classifier = load_model(args.model or "concrete-v1")
    if classifier.task == SEGMENTATION.name:
        output = args.output.parent / "segment_example" if args.output.name == "scan_example" else args.output
        print(f"picture in {segment_example(classifier, output, args.patches)}")
        return
    crack, sound = patches()
    path = make_photo(args.output / "photo.jpg", 8, 5, CRACK_PATH, crack, sound)
    counts = scan(
        path,
        args.output / "scan",
        model=classifier,
        tile=args.tile,
        stride=args.stride,
        masks=True,
        overwrite=True,
        report=False,
    )
    print(f"{counts['tiles']} tiles; overlay in {args.output / 'scan' / 'overlays' / 'photo.jpg.png'}")
    if args.report:
        photos = args.output / "report_photos"
        shutil.rmtree(photos, ignore_errors=True)
        shutil.copy(path, (photos / "wall A").mkdir(parents=True) or photos / "wall A" / "crack.jpg")
        for name, columns, rows, cracks in REPORT_PHOTOS:
            make_photo(photos / name, columns, rows, cracks, crack, sound)
        scan(photos, args.output / "report", model=classifier, tile=args.tile, stride=args.stride, overwrite=True)
        screenshot(args.output / "report" / "report.html", args.output / "report.png")
        print(f"report in {args.output / 'report' / 'report.html'}, screenshot {args.output / 'report.png'}")


if __name__ == "__main__":
    main()
