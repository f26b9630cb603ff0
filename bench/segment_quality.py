"""Segmentation quality on held-out photos: pixel F1 / IoU / ODS F1 (with and without a 2-px tolerance), crack length
and width measured on the predicted mask against the same measurement on the true mask, and throughput.

    python bench/segment_quality.py CKPT --data ../shared/data/crack-photos --split_file RUN/split.csv
    python bench/segment_quality.py CKPT --data DIR --backend onnxruntime --window 512 --overlap 64

Photos run through ``crack_lightning.runtime.windows.segment_photo`` (windowed, blended, a uint8 map) as a scan would run
them. With ``--split_file`` only the photos of ``--split`` (``val``) are scored, else every photo in ``images/``.
Rows: all photos, then the photos of every other group (a group: the name before '-'), halves 1 and 2, to show
how much the numbers move between two disjoint sets. Prints Markdown tables.

``--patches DIR`` (class folders ``Positive/`` and ``Negative/``, e.g. Özgenel's patches, another surface with no
masks) adds how often a crack of at least ``--min_area`` pixels is found in crack patches and in sound ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from crack_lightning.measure.cracks import ODS_THRESHOLDS, f1_scores, measure_cracks, pixel_counts, summarise
from crack_lightning.runtime.backends import choose_backend, open_session
from crack_lightning import load_model
from crack_lightning.measure.measuring import DEFAULT_MIN_AREA
from crack_lightning.scanning.options import DEFAULT_TILE
from crack_lightning.scanning.tile_map import scan_photos
from crack_lightning.export.onnx import export_segmenter, segmenter_network, torch_runner
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.runtime.windows import flip_averaged, segment_photo


def held_out(data: Path, split_file: Path | None, split: str) -> list[str]:
    if split_file is None:
        return sorted(p.name for p in (data / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    with open(split_file, newline="") as f:
        return sorted(Path(row["path"]).name for row in csv.DictReader(f) if row["split"] == split)


def score(rows: list[dict], threshold: float) -> dict:
    """Scores of a set of photos from their per-photo rows."""
    exact = sum(r["counts0"] for r in rows)
    tolerant = sum(r["counts2"] for r in rows)
    at = int(np.argmin(np.abs(ODS_THRESHOLDS - threshold)))
    f1, precision, recall = f1_scores(exact)
    tp, predicted, truth = exact[0, at], exact[1, at], exact[3, at]
    length_errors = np.array([r["length_error"] for r in rows])
    width_errors = np.array([r["width_error"] for r in rows])
    return {
        "photos": len(rows), "precision": precision[at], "recall": recall[at], "f1": f1[at],
        "iou": tp / max(1, predicted + truth - tp), "ods": f1.max(), "ods_at": ODS_THRESHOLDS[f1.argmax()],
        "ods2": f1_scores(tolerant)[0].max(), "length": np.median(np.abs(length_errors)),
        "within15": np.mean(np.abs(length_errors) <= 0.15), "width": np.median(np.abs(width_errors)),
        "width_bias": np.median(width_errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="checkpoint of a CrackSegmenter fit")
    parser.add_argument("--data", type=Path, required=True, help="folder with images/ and masks/")
    parser.add_argument("--split_file", type=Path, default=None, help="split.csv of the run: score its held-out photos")
    parser.add_argument("--split", default="val", help="which split of --split_file to score (default val)")
    parser.add_argument("--backend", choices=("auto", "onnxruntime", "openvino", "torch"), default="auto",
                        help="auto: the exported graph as scan runs it (default); torch: PyTorch float32")
    parser.add_argument("--precision", choices=("auto", "32", "bf16"), default="auto", help="of the exported graph, as scan's")
    parser.add_argument("--compare_scan", action="store_true",
                        help="also time the classifier scan (shipped model, default tiles) on the same photos, for MP/s")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=None, help="mask threshold (default: the checkpoint's, chosen on validation unless fixed)")
    parser.add_argument("--min_area", type=int, default=DEFAULT_MIN_AREA, help="drop cracks smaller than this, in both masks (scan's default)")
    parser.add_argument("--tta", action="store_true", help="average each window with its 3 mirror images (4x compute)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (quick looks)")
    parser.add_argument("--patches", type=Path, default=None, help="class folders Positive/ and Negative/: crack found or not")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here (a model card reads them)")
    args = parser.parse_args()
    report: dict = {"checkpoint": str(args.ckpt), "data": str(args.data), "tta": args.tta}
    model = load_checkpoint(args.ckpt)  # also a checkpoint that names the module paths before 0.3
    threshold = args.threshold if args.threshold is not None else model.threshold
    report["threshold"] = threshold
    if args.backend == "torch":
        run, runtime = torch_runner(segmenter_network(model)), "PyTorch float32"
    else:
        backend, why = choose_backend(args.backend, args.precision)
        run, runtime = open_session(export_segmenter(model), backend, args.precision), f"{backend} ({why})"
    run = flip_averaged(run) if args.tta else run
    names = held_out(args.data, args.split_file, args.split)[: args.limit]
    print(f"{len(names)} photos from {args.data}, checkpoint {args.ckpt}, {runtime}, "
          f"{torch.get_num_threads()} threads, window {args.window} overlap {args.overlap}, threshold {threshold}"
          f"{', flip TTA' if args.tta else ''}",
          file=sys.stderr)
    rows, seconds, megapixels = [], 0.0, 0.0
    for name in names:
        photo = np.asarray(Image.open(args.data / "images" / name).convert("RGB"))
        truth = np.asarray(Image.open(args.data / "masks" / (Path(name).stem + ".png")).convert("L")) > 127
        started = time.perf_counter()
        probability = segment_photo(photo, run, args.window, args.overlap, args.batch_size)
        seconds += time.perf_counter() - started
        megapixels += photo.shape[0] * photo.shape[1] / 1e6
        measured = [summarise(measure_cracks(probability >= round(threshold * 255), name, min_area=args.min_area,
                                             probability=probability)),
                    summarise(measure_cracks(truth, name, min_area=args.min_area))]
        predicted, true = measured
        rows.append({
            "name": name, "group": name.split("-")[0].split(".")[0],
            "counts0": pixel_counts(probability, truth), "counts2": pixel_counts(probability, truth, tolerance=2),
            "length_error": (predicted.total_length_px - true.total_length_px) / max(true.total_length_px, 1.0),
            "width_error": predicted.mean_width_px - true.mean_width_px,
        })
    groups = sorted({r["group"] for r in rows})
    halves = {"all": rows}
    for half in (1, 2):
        kept = set(groups[half - 1 :: 2])
        halves[f"half {half}"] = [r for r in rows if r["group"] in kept]
    print(f"| photos | P@{threshold:g} | R@{threshold:g} | F1@{threshold:g} | IoU@{threshold:g} | ODS F1 (threshold) "
          "| ODS F1, 2-px tolerance | length: median abs rel. error | length within 15% | "
          "mean width: median abs error (px) | width: median error (px) |")
    print("| --- " * 11 + "|")
    for label, subset in halves.items():
        s = score(subset, threshold)
        report.setdefault("photos", {})[label] = {k: (v.item() if hasattr(v, "item") else v) for k, v in s.items()}
        print(f"| {label}: {s['photos']} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} | {s['iou']:.4f} "
              f"| {s['ods']:.4f} ({s['ods_at']:.2f}) | {s['ods2']:.4f} | {s['length']:.1%} | {s['within15']:.0%} "
              f"| {s['width']:.2f} | {s['width_bias']:+.2f} |")
    report["segmentation_mp_per_s"] = megapixels / seconds
    print(f"\nThroughput: {megapixels:.1f} MP in {seconds:.1f} s = {megapixels / seconds:.2f} MP/s "
          f"({runtime}, {torch.get_num_threads()} threads, segmentation only, not file reading or measuring)")
    if args.patches:
        print(f"\n| {args.patches} | patches | with a crack of >= {args.min_area} px found |\n| --- | --- | --- |")
        for kind in ("Positive", "Negative"):
            files = sorted((args.patches / kind).glob("*.jpg"))[: args.limit]
            found = 0
            for path in files:
                patch = np.asarray(Image.open(path).convert("RGB"))
                mask = segment_photo(patch, run, args.window, args.overlap, args.batch_size) >= round(threshold * 255)
                found += bool(measure_cracks(mask, path.name, min_area=args.min_area))
            print(f"| {kind} | {len(files)} | {found} ({found / max(1, len(files)):.1%}) |")
            report.setdefault("patches", {"folder": str(args.patches), "min_area": args.min_area})[kind] = {
                "patches": len(files), "crack_found": found}
    if args.compare_scan:
        classifier = load_model("concrete-v1", precision=args.precision)
        photos = [(n, np.asarray(Image.open(args.data / "images" / n).convert("RGB"))) for n in names]
        started = time.perf_counter()
        for _ in scan_photos(classifier, photos, DEFAULT_TILE, DEFAULT_TILE, keep_images=False):
            pass
        scan_rate = megapixels / (time.perf_counter() - started)
        print(f"Classifier scan (shipped model, {classifier.describe()}, tile {DEFAULT_TILE}): {scan_rate:.2f} MP/s; "
              f"segmentation runs at {megapixels / seconds / scan_rate:.2f}x its rate")
        report["classifier_scan_mp_per_s"] = scan_rate
    if args.json:
        report["runtime"] = runtime
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
