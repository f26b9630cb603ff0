"""Study (not in the product): would joining crack fragments along their direction raise pixel F1 at the operating
point? Each photo's map is computed once; the mask (the model's threshold, with hysteresis from ``--low_thresholds``)
is then bridged: from each end of its skeleton, along the direction of its last few pixels, to the nearest pixel of
another crack within ``reach`` px and a 30-degree cone, where the mean probability along the straight line is at
least ``gap``. Prints P, R, F1 per setting.

    python bench/join_fragments_study.py SYNTH            # our synthetic photos (the ones that may choose)
    python bench/join_fragments_study.py PHOTOS --limit 100
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from scipy import ndimage
from skimage.draw import line as draw_line
from skimage.morphology import skeletonize

import crack_lightning
from crack_lightning.evaluation.masked_photos import masked_photos, read_truth
from crack_lightning.measure.cracks import f1_scores, pixel_counts
from crack_lightning.measure.hysteresis import EIGHT_NEIGHBOURS, crack_mask

CONE = np.deg2rad(30)
BACK = 6  # px: the skeleton pixels this near an end give its direction
SETTINGS = ((10, 0.2), (15, 0.2), (15, 0.1), (25, 0.1))  # (reach px, gap probability)


def bridged(mask: np.ndarray, probability: np.ndarray, reach: int, gap: float) -> np.ndarray:
    skeleton = skeletonize(mask)
    neighbours = ndimage.convolve(skeleton.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    ends = np.argwhere(skeleton & (neighbours == 1))
    labels, _ = ndimage.label(mask, structure=EIGHT_NEIGHBOURS)
    out = mask.copy()
    ys, xs = np.nonzero(mask)
    sy, sx = np.nonzero(skeleton)
    for ey, ex in ends:
        own = labels[ey, ex]
        near = (np.abs(sy - ey) <= BACK) & (np.abs(sx - ex) <= BACK) & (labels[sy, sx] == own)
        direction = np.array([ey - sy[near].mean(), ex - sx[near].mean()]) if near.sum() >= 3 else np.zeros(2)
        if np.hypot(*direction) < 1e-6:
            continue
        direction /= np.hypot(*direction)
        box = (np.abs(ys - ey) <= reach) & (np.abs(xs - ex) <= reach) & (labels[ys, xs] != own)
        ty, tx = ys[box], xs[box]
        offsets = np.stack([ty - ey, tx - ex], 1).astype(float)
        distance = np.hypot(offsets[:, 0], offsets[:, 1])
        ahead = (distance <= reach) & (offsets @ direction >= np.cos(CONE) * distance)
        if not ahead.any():
            continue
        k = np.argmin(np.where(ahead, distance, np.inf))
        rows, cols = draw_line(ey, ex, ty[k], tx[k])
        if probability[rows, cols].mean() >= gap * 255:
            out[rows, cols] = True
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="folder with images/ and masks/")
    parser.add_argument("--model", default="concrete-seg-v1")
    parser.add_argument("--low_thresholds", type=float, nargs="*", default=[0.7], help="hysteresis too (besides none)")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    model = crack_lightning.load_model(args.model)
    level = round(model.threshold * 255)
    started = time.perf_counter()
    maps = []
    for photo in masked_photos(args.input, limit=args.limit):
        probability = model.probability_map(photo.image)
        maps.append((probability, read_truth(photo, probability.shape)))
    print(f"{len(maps)} maps in {time.perf_counter() - started:.0f} s, {model.describe()}", file=sys.stderr)
    print("| low threshold | bridge: reach, gap | P | R | F1 |\n| --- | --- | --- | --- | --- |")
    for low in (None, *args.low_thresholds):
        for setting in (None, *SETTINGS):
            counts = np.zeros((4, 1), np.int64)
            for probability, truth in maps:
                mask = crack_mask(probability, level, None if low is None else round(low * 255))
                mask = bridged(mask, probability, *setting) if setting else mask
                counts += pixel_counts(mask.astype(np.float32), truth, np.array([0.5]))
            f1, precision, recall = (v[0] for v in f1_scores(counts))
            bridge = f"{setting[0]} px, {setting[1]:g}" if setting else "none"
            print(f"| {low or 'off'} | {bridge} | {precision:.3f} | {recall:.3f} | {f1:.3f} |", flush=True)


if __name__ == "__main__":
    main()
