"""Scan at scale: peak memory on a 50-megapixel photo, and scan tiles/s next to predict img/s.

    python bench/scan_scale.py CKPT --photos ../shared/data/crack-photos/images --patches ../shared/data/concrete-crack

Both commands run as users run them (``python -m crack_lightning ...`` in a fresh process, start-up
included), one after the other on this machine, with the same checkpoint, batch size and precision:

1. memory: ``scan --masks true`` of one 8,660 x 5,773 JPEG made of sample patches; peak RSS of that process;
2. speed: ``scan`` of the first ``--photos_count`` photos of ``--photos`` against ``predict`` of
   ``--patches_count`` patches of ``--patches``: tiles/s over img/s.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from crack_lightning.io.images import find_images

SAMPLE = Path(__file__).resolve().parents[1] / "crack_lightning" / "assets" / "sample"


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process."""
    started = time.perf_counter()
    # Each command runs under its own `time`-like wrapper so that ru_maxrss is this child's alone.
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *command], check=True, capture_output=True, text=True)
    return time.perf_counter() - started, int(out.stdout.split()[-1]) / 1024


def big_photo(path: Path, width: int = 8660, height: int = 5773) -> Path:
    """A photo of ``width`` x ``height`` pixels tiled with the shipped sample patches (cracks and sound concrete)."""
    patches = itertools.cycle(sorted(SAMPLE.rglob("*.jpg")))
    photo = Image.new("RGB", (width, height))
    for y in range(0, height, 227):
        for x in range(0, width, 227):
            with Image.open(next(patches)) as patch:
                photo.paste(patch.convert("RGB"), (x, y))
    photo.save(path, quality=90)
    return path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt")
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos for the speed run")
    parser.add_argument("--photos_count", type=int, default=60)
    parser.add_argument("--patches", type=Path, required=True, help="folder of patches for predict")
    parser.add_argument("--patches_count", type=int, default=2000)
    parser.add_argument("--tile", type=int, default=None, help="scan --tile (default: scan's default)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--skip_memory", action="store_true")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "crack_lightning"]
    tile = ["--tile", str(args.tile)] if args.tile else []
    common = ["--progress", "false", "--batch_size", str(args.batch_size)]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; checkpoint {args.ckpt}; batch {args.batch_size}")
    from crack_lightning import load_model

    # A checkpoint is exported to ONNX on its first use (with torch) and cached: do it here, outside the measured runs.
    print(f"model: {load_model(args.ckpt).source}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if not args.skip_memory:
            (tmp / "big").mkdir()
            photo = big_photo(tmp / "big" / "photo_50mp.jpg")
            seconds, rss = run(
                [
                    *cli,
                    "scan",
                    "--ckpt_path",
                    args.ckpt,
                    "--input",
                    str(photo),
                    "--output",
                    str(tmp / "scan_big"),
                    "--masks",
                    "true",
                    *tile,
                    *common,
                ]
            )
            with Image.open(tmp / "scan_big" / "overlays" / "photo_50mp.jpg.png") as im:
                overlay = im.size
            tiles = sum(1 for _ in open(tmp / "scan_big" / "tiles.csv")) - 1
            print(
                f"memory: scan of one 8660x5773 photo (50.0 MP), {tiles} tiles, masks on: peak RSS {rss:.0f} MB, "
                f"{seconds:.0f} s; overlay {overlay[0]}x{overlay[1]}"
            )

        photos = tmp / "photos.txt"
        photos.write_text("\n".join(str(p.resolve()) for p in find_images(args.photos)[: args.photos_count]) + "\n")
        patches = tmp / "patches.txt"
        patches.write_text(
            "\n".join(str(p.resolve()) for p in find_images(args.patches)[::2][: args.patches_count]) + "\n"
        )
        scan_s, scan_rss = run(
            [
                *cli,
                "scan",
                "--ckpt_path",
                args.ckpt,
                "--input",
                str(photos),
                "--output",
                str(tmp / "scan"),
                *tile,
                *common,
            ]
        )
        tiles = sum(1 for _ in open(tmp / "scan" / "tiles.csv")) - 1
        # torch-free predict, as scan runs: the same exported graph in the same runtime
        predict_s, predict_rss = run(
            [
                *cli,
                "predict",
                "--ckpt_path",
                args.ckpt,
                "--data.predict_dir",
                str(patches),
                "--output",
                str(tmp / "predictions.csv"),
                "--data.batch_size",
                str(args.batch_size),
            ]
        )
        images = sum(1 for _ in open(tmp / "predictions.csv")) - 1
    print(
        f"scan:    {tiles} tiles of {args.photos_count} photos in {scan_s:.1f} s = {tiles / scan_s:.1f} tiles/s "
        f"(peak RSS {scan_rss:.0f} MB)"
    )
    print(
        f"predict: {images} patches in {predict_s:.1f} s = {images / predict_s:.1f} img/s (peak RSS {predict_rss:.0f} MB)"
    )
    print(f"scan tiles/s / predict img/s = {(tiles / scan_s) / (images / predict_s):.2f}  (both from process start)")


if __name__ == "__main__":
    main()
