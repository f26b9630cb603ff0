"""``scan --devices N``: one scan's wall time with the photos shared out across N processes, against one process, on
this machine, in one run; each run checked to write the same CSV rows as the one-process scan.

    python bench/scan_processes.py --photos ../shared/data/crack-photos/images --limit 120 --devices 1 2

Each scan runs as a user runs it (``python -m crack_lightning scan`` in a fresh process, start-up and, for N > 1,
Lightning's launch included) with the default model (the shipped segmenter) unless ``--model``; CPU processes share
the cores (``--device cpu``), or ``--device cuda`` puts one on each GPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crack_lightning.io.images import find_images  # noqa: E402
from crack_lightning.runtime.backends import cpu_count  # noqa: E402
from scan_scale import cpu_name  # noqa: E402


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=120, help="The first photos of --photos, sorted by path.")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--model", default="concrete-seg-v1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    photos = sorted(find_images(args.photos))[: args.limit]
    megapixels = 0.0
    for photo in photos:
        with Image.open(photo) as image:
            megapixels += image.width * image.height / 1e6
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    results, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "photos.txt"
        listing.write_text("".join(f"{p}\n" for p in photos))
        details = "cracks.csv"
        for n in args.devices:
            out = Path(tmp) / f"out{n}"
            command = [sys.executable, "-m", "crack_lightning", "scan", "--input", str(listing), "--output", str(out),
                       "--ckpt_path", args.model, "--device", args.device, "--devices", str(n), "--progress", "false"]
            start = time.perf_counter()
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            details = "cracks.csv" if (out / "cracks.csv").exists() else "tiles.csv"
            written = (rows(out / "photos.csv"), rows(out / details))
            reference = reference or written
            results.append({"devices": n, "seconds": round(seconds, 2), "mp_per_s": round(megapixels / seconds, 3),
                            "same_rows_as_first": written == reference})
    base = results[0]["seconds"]
    print(f"{len(photos)} photos, {megapixels:.1f} MP, {args.model}, --device {args.device}; "
          f"{cpu_name()}, {cpu_count()} cores")
    print("| processes | wall s | MP/s | x first | same rows |\n| --- | --- | --- | --- | --- |")
    for r in results:
        r["ratio"] = round(base / r["seconds"], 2)
        print(f"| {r['devices']} | {r['seconds']} | {r['mp_per_s']} | {r['ratio']}x | {r['same_rows_as_first']} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "cores": cpu_count(), "photos": len(photos),
                                         "megapixels": megapixels, "model": args.model, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
