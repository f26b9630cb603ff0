"""The scan's post-processing swept on photos with true masks, through the product: each setting is
``crack_lightning.evaluate`` with the network run once per photo (:class:`RememberedMaps`).

    python bench/postprocess_sweep.py --input /tmp/synth-eval --low_thresholds 0.81 0.7 0.6 0.5 0.4 0.3
    python bench/postprocess_sweep.py --input PHOTOS --thresholds 0.81 --low_thresholds 0.81 0.6 --json sweep.json

A low threshold at or above the threshold is no hysteresis. Prints a Markdown table: per setting, pixel precision,
recall and F1 at the operating point (with both halves' F1), mean IoU over photos, length and width errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import crack_lightning
from crack_lightning.evaluation.remembered import RememberedMaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="folder with images/ and masks/")
    parser.add_argument("--model", default="concrete-seg-v1", help="a shipped name, .ckpt or .onnx")
    parser.add_argument("--thresholds", type=float, nargs="+", default=None, help="default: the model's")
    parser.add_argument("--low_thresholds", type=float, nargs="+", required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model = RememberedMaps(crack_lightning.load_model(args.model))
    print(f"{args.input}, {model.source}, {model.describe()}", file=sys.stderr)
    rows = []
    print(
        "| threshold | low threshold | P | R | F1 | F1 halves | IoU, mean of photos | ODS F1 | length: median abs. "
        "error | mean width: median abs. error | width: median error | seconds |"
    )
    print("| --- " * 12 + "|")
    for threshold in args.thresholds or [model.threshold]:
        for low in args.low_thresholds:
            started = time.perf_counter()
            result = crack_lightning.evaluate(
                args.input, model, limit=args.limit, threshold=threshold, low_threshold=low
            )
            s, halves = result.sets["all"], [result.sets[h]["f1"] for h in ("half 1", "half 2") if h in result.sets]
            print(
                f"| {threshold:g} | {low:g} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | "
                f"{' / '.join(f'{f:.3f}' for f in halves)} | {s['mean_iou']:.3f} | {s['ods_f1']:.3f} | "
                f"{s['length_error']:.1%} | {s['width_error']:.2f} px | {s['width_bias']:+.2f} px | "
                f"{time.perf_counter() - started:.0f} |",
                flush=True,
            )
            rows.append({"threshold": threshold, "low_threshold": low, "sets": result.sets})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
