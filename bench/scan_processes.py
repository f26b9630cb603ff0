"""``scan --devices N``: one scan's wall time with the photos shared out across N processes, against the first run,
on this machine, in one run; each run checked to write the same CSV rows as the first.

    python bench/scan_processes.py --photos ../shared/data/crack-photos/images --limit 120 --runs cpu:1 cpu:2
    python bench/scan_processes.py --photos PHOTOS --runs cpu:1 cuda:1 cuda:4 cuda:8      # a GPU machine

A run ``DEVICE:N`` is ``scan --device DEVICE --devices N``, as a user runs it (``python -m crack_lightning scan`` in a
fresh process, start-up and, for N > 1, Lightning's launch included; CSV files, pictures and report written), with
the shipped segmenter unless ``--model``. CPU processes share the cores; GPU processes share the GPUs round-robin.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from scan_scale import cpu_name

from crack_lightning.io.images import find_images
from crack_lightning.runtime.backends import cpu_count


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def timed_scans(photos: list[Path], runs: list[str], model: str = "concrete-seg-v1") -> list[dict]:
    """Each run (``DEVICE:N``) of ``scan`` over ``photos``: wall seconds, MP/s, its speed over the first run's, and
    whether its photos.csv and details CSV rows equal the first run's (probabilities may differ in the last digits
    between a GPU in bf16 and a CPU, so compare runs on one device for that)."""
    megapixels = 0.0
    for photo in photos:
        with Image.open(photo) as image:
            megapixels += image.width * image.height / 1e6
    results, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "photos.txt"
        listing.write_text("".join(f"{p.resolve()}\n" for p in photos))  # a list's relative paths are the list's
        for i, run in enumerate(runs):
            device, n = run.split(":")
            out = Path(tmp) / f"out{i}"
            command = [
                sys.executable,
                "-m",
                "crack_lightning",
                "scan",
                "--input",
                str(listing),
                "--output",
                str(out),
                "--ckpt_path",
                model,
                "--device",
                device,
                "--devices",
                n,
                "--progress",
                "false",
            ]
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            seconds = time.perf_counter() - start
            details = "cracks.csv" if (out / "cracks.csv").exists() else "tiles.csv"
            written = (rows(out / "photos.csv"), rows(out / details))
            errors = [r for r in written[0][1:] if r[-1]]
            if errors:
                raise RuntimeError(f"{run}: {len(errors)} photos not scanned, e.g. {errors[0]}")
            reference = reference or written
            results.append(
                {
                    "run": run,
                    "photos": len(photos),
                    "megapixels": round(megapixels, 2),
                    "seconds": round(seconds, 2),
                    "mp_per_s": round(megapixels / seconds, 3),
                    "x_first": round(results[0]["seconds"] / seconds if results else 1.0, 2),
                    "same_rows_as_first": written == reference,
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=120, help="The first photos of --photos, sorted by path.")
    parser.add_argument(
        "--runs", nargs="+", default=["cpu:1", "cpu:2"], help="DEVICE:PROCESSES, the first the reference."
    )
    parser.add_argument("--model", default="concrete-seg-v1")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    photos = sorted(find_images(args.photos))[: args.limit]
    results = timed_scans(photos, args.runs, args.model)
    print(f"{len(photos)} photos, {results[0]['megapixels']} MP, {args.model}; {cpu_name()}, {cpu_count()} cores")
    print("| scan --device:--devices | wall s | MP/s | x first | same rows as first |\n| --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['run']} | {r['seconds']} | {r['mp_per_s']} | {r['x_first']}x | {r['same_rows_as_first']} |")
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu_name(), "cores": cpu_count(), "model": args.model, "runs": results}, indent=1)
        )


if __name__ == "__main__":
    main()
