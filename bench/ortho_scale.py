"""Orthomosaics: peak memory and speed of ``scan`` on a 1-gigapixel tiled BigTIFF against a 10-megapixel photo.

    python bench/ortho_scale.py [--classifier CKPT] [--segmenter SEGMENTER.ckpt] [--gigapixels 1.0]

Both photos are made of the shipped sample patches (cracks and sound concrete, 227 px each; the BigTIFF of
``--tiles_from``'s photos where given, e.g. crack photos for a map dense with cracks): a 10 MP JPEG
(3,873 x 2,582) and a tiled BigTIFF of ``--gigapixels`` (square, JPEG-compressed 512-px tiles, as drone software
writes orthomosaics). Each scan runs in a fresh process; its peak RSS is that process's (start-up and model included),
its speed is the photo's megapixels over the seconds of the scan itself (model loading left out). The 10 MP photo is
scanned before and after the big one and its speed averaged, so that other load on the machine weighs on both alike.
The segmenter's scan is measured the same way when ``--segmenter`` is given (a checkpoint or exported graph).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scan_scale import SAMPLE, big_photo, cpu_name

TIFF_TILE = 512


def ortho_tiff(path: Path, side: int, photos: Path | None = None) -> Path:
    """A ``side`` x ``side`` tiled BigTIFF (JPEG tiles of 512 px) made of sample patches (or of the photos of the
    folder ``photos``: with crack photos, a map dense with cracks), written tile by tile."""
    import tifffile

    patches = itertools.cycle(sorted((photos or SAMPLE).rglob("*.jpg")))
    # 16 different tiles, each a mosaic of patches, cycled: the file is written without the photo in memory
    tiles = []
    for _ in range(16):
        tile = Image.new("RGB", (TIFF_TILE, TIFF_TILE))
        y = 0
        while y < TIFF_TILE:
            x, tallest = 0, 0
            while x < TIFF_TILE:
                with Image.open(next(patches)) as patch:
                    tile.paste(patch.convert("RGB"), (x, y))
                    x, tallest = x + patch.width, max(tallest, patch.height)
            y += tallest
        tiles.append(np.asarray(tile))
    count = math.ceil(side / TIFF_TILE) ** 2
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            (tiles[i % 16] for i in range(count)),
            shape=(side, side, 3),
            dtype=np.uint8,
            tile=(TIFF_TILE, TIFF_TILE),
            photometric="rgb",
            compression="jpeg",
            compressionargs={"level": 90},
        )
    return path


def child(model: str, photo: str, output: str) -> None:
    """Run in the measured process: load the model, then time the scan alone; print the seconds as JSON."""
    import crack_lightning

    loaded = crack_lightning.load_model(model or "concrete-v1")
    started = time.perf_counter()
    counts = crack_lightning.scan(photo, output, model=loaded, max_pixels=None, progress=False)
    print(json.dumps({"seconds": time.perf_counter() - started, "counts": counts}))


def measure(model: str, photo: Path, output: Path) -> dict:
    """Seconds of the scan and peak RSS (MB) of a fresh process that runs it."""
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], check=True, capture_output=True, "
        "text=True); print(r.stdout.strip().splitlines()[-1]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    command = [sys.executable, __file__, "--child", model, str(photo), str(output)]
    out = subprocess.run([sys.executable, "-c", wrapper, *command], check=True, capture_output=True, text=True)
    result_line, rss_line = out.stdout.strip().splitlines()[-2:]
    return {**json.loads(result_line), "rss_mb": int(rss_line) / 1024}


def compare(label: str, model: str, small: Path, big: Path, tmp: Path) -> None:
    small_mp, big_mp = (
        math.prod(Image.open(small).size) / 1e6,
        __import__("tifffile").TiffFile(big).pages.first.imagewidth ** 2 / 1e6,
    )
    before = measure(model, small, tmp / f"{label}-small-1")
    large = measure(model, big, tmp / f"{label}-big")
    after = measure(model, small, tmp / f"{label}-small-2")
    small_speed = small_mp / ((before["seconds"] + after["seconds"]) / 2)
    big_speed = big_mp / large["seconds"]
    print(
        f"| {label} | 10 MP JPEG | {small_mp:.1f} MP | {small_speed:.2f} MP/s | peak RSS {max(before['rss_mb'], after['rss_mb']):.0f} MB |"
    )
    print(f"| {label} | tiled BigTIFF | {big_mp:.0f} MP | {big_speed:.2f} MP/s | peak RSS {large['rss_mb']:.0f} MB |")
    print(
        f"{label}: MP/s of the big one over the 10 MP photo's = {big_speed / small_speed:.2f}; "
        f"peak RSS {large['rss_mb']:.0f} MB; {large['counts']}",
        flush=True,
    )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--classifier", default="", help="a classifier checkpoint or graph (default: the shipped model)"
    )
    parser.add_argument("--segmenter", default="", help="a segmenter checkpoint or graph: its scan measured too")
    parser.add_argument("--gigapixels", type=float, default=1.0, help="size of the tiled BigTIFF")
    parser.add_argument("--skip_classifier", action="store_true")
    parser.add_argument(
        "--tiles_from",
        type=Path,
        default=None,
        help="a folder of photos (*.jpg) to make the BigTIFF of, e.g. crack photos for a crack-dense map",
    )
    args = parser.parse_args()
    from crack_lightning import load_model

    # A checkpoint is exported to ONNX on first use and cached: done here, outside the measured runs.
    models = [
        (label, str(m))
        for label, m in (("classifier", args.classifier), ("segmenter", args.segmenter))
        if (m or label == "classifier") and not (label == "classifier" and args.skip_classifier)
    ]
    for label, model in models:
        print(f"{label}: {load_model(model or 'concrete-v1').source}")
    import crack_lightning

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; crack_lightning from {Path(crack_lightning.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        small = big_photo(tmp / "photo_10mp.jpg", 3873, 2582)
        side = int(math.sqrt(args.gigapixels * 1e9))
        started = time.perf_counter()
        big = ortho_tiff(tmp / "ortho.tif", side, args.tiles_from)
        print(
            f"wrote {side} x {side} tiled BigTIFF ({big.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        for label, model in models:
            compare(label, model or "", small, big, tmp)


if __name__ == "__main__":
    main()
