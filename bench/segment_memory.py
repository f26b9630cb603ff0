"""A segmenter's scan of a 50-megapixel photo in bounded memory: peak RSS against the same command on a small photo.

    python bench/segment_memory.py SEGMENTER.ckpt [--batch_size 1] [--precision auto]

Both photos are made of the shipped sample patches (cracks and sound concrete, 227 px each): 8,660 x 5,773
(50.0 MP) and 1,135 x 908 (1.0 MP). Each ``scan`` runs as users run it, in a fresh process (start-up included);
the peak resident memory is that process's. The checkpoint's graph is exported and cached first, outside the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from scan_scale import big_photo, cpu_name, run

from crack_lightning import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="a segmenter's checkpoint or exported graph")
    parser.add_argument("--batch_size", type=int, default=1, help="scan --batch_size: windows run at once")
    parser.add_argument("--precision", default="auto", help="scan --precision")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; model: {load_model(args.ckpt).source}")
    results, rates = {}, {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for label, width, height in (("1 MP", 1135, 908), ("50 MP", 8660, 5773)):
            folder = tmp / label.replace(" ", "")
            folder.mkdir()
            photo = big_photo(folder / "photo.jpg", width, height)
            seconds, rss = run(
                [
                    sys.executable,
                    "-m",
                    "crack_lightning",
                    "scan",
                    "--ckpt_path",
                    args.ckpt,
                    "--input",
                    str(photo),
                    "--output",
                    str(tmp / f"out{label.replace(' ', '')}"),
                    "--progress",
                    "false",
                    "--batch_size",
                    str(args.batch_size),
                    "--precision",
                    args.precision,
                ]
            )
            cracks = sum(1 for _ in open(tmp / f"out{label.replace(' ', '')}" / "cracks.csv")) - 1
            results[label] = rss
            rates[label] = width * height / 1e6 / seconds
            print(
                f"| {label} ({width} x {height}) | peak RSS {rss:.0f} MB | {seconds:.1f} s from process start "
                f"| {width * height / 1e6 / seconds:.2f} MP/s | {cracks} cracks |"
            )
    print(f"50 MP over 1 MP: +{results['50 MP'] - results['1 MP']:.0f} MB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cpu": cpu_name(),
                    "cores": os.cpu_count(),
                    "peak_rss_mb": results,
                    "mp_per_s_from_process_start": rates,
                    "over_small_mb": results["50 MP"] - results["1 MP"],
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
