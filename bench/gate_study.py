"""Should the classifier gate the segmenter? Pixel scores of a segmenter's masks with and without zeroing the photo's
tiles that the classifier calls sound, on photos with true masks.

    python bench/gate_study.py SEGMENTER --data PHOTOS [--classifier concrete-v1] [--limit N]

Gated: a pixel keeps its crack probability only where the classifier's tile map (scan's default tiles) is at least
``--tile_threshold``. Prints ODS F1, precision and recall at the segmenter's threshold, both ways, by photo halves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from crack_lightning import load_model
from crack_lightning.measure.cracks import ODS_THRESHOLDS, f1_scores, pixel_counts

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("segmenter")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--classifier", default="concrete-v1")
    parser.add_argument("--tile_threshold", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    segmenter, classifier = load_model(args.segmenter), load_model(args.classifier)
    tile = classifier.scan_task().tile  # scan's default tiles
    names = sorted(p.name for p in (args.data / "images").iterdir())[: args.limit]
    counts: dict[str, dict[int, np.ndarray]] = {"plain": {}, "gated": {}}
    for i, name in enumerate(names):
        photo = np.asarray(Image.open(args.data / "images" / name).convert("RGB"))
        truth = np.asarray(Image.open(args.data / "masks" / (Path(name).stem + ".png")).convert("L")) > 127
        probability = segmenter.probability_map(photo)
        tiles = classifier.scan(photo).probability_map()
        gated = np.where(tiles >= args.tile_threshold, probability, 0).astype(probability.dtype)
        counts["plain"][i], counts["gated"][i] = pixel_counts(probability, truth), pixel_counts(gated, truth)
    at = int(np.argmin(np.abs(ODS_THRESHOLDS - segmenter.threshold)))
    print(
        f"{len(names)} photos; segmenter {segmenter.source}, threshold {segmenter.threshold:.2f}; "
        f"classifier {classifier.source}, tiles {tile}, gate at {args.tile_threshold}"
    )
    print("| photos | way | ODS F1 (threshold) | P | R | F1 |\n| --- | --- | --- | --- | --- | --- |")
    for label, subset in (
        ("all", range(len(names))),
        ("half 1", range(0, len(names), 2)),
        ("half 2", range(1, len(names), 2)),
    ):
        for way in ("plain", "gated"):
            f1, precision, recall = f1_scores(sum(counts[way][i] for i in subset))
            print(
                f"| {label} | {way} | {f1.max():.4f} ({ODS_THRESHOLDS[f1.argmax()]:.2f}) | {precision[at]:.4f} "
                f"| {recall[at]:.4f} | {f1[at]:.4f} |"
            )


if __name__ == "__main__":
    main()
