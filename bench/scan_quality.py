"""Scan quality against real crack masks: tile-level and pixel-level scores for several tile sizes and strides.

    python bench/scan_quality.py CKPT ../shared/data/crack-photos --configs 64:32 96:48 128:64 192:96
    python bench/scan_quality.py CKPT ../shared/data/crack-photos --configs 128:64 --failures failures.png

The photo folder holds ``images/NAME.jpg`` and ``masks/NAME.png`` (255 = crack pixel). A tile is a
crack when at least ``--crack_fraction`` (1%) of its pixels are crack, no crack when none are; tiles in
between are ambiguous and left out. Tile scores use the label at ``--threshold``; "map AUROC" scores
the probability map (every 4th pixel of every 4th row) (overlapping tiles averaged) against the mask. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from crack_lightning import load_model
from crack_lightning.scanning.labelled_tiles import read_mask, tile_truth


def evaluate(classifier, photos: list[Path], masks: Path, tile: int, stride: int, context: float, args) -> dict:
    import torch  # here, not at the top: --help answers without torch
    from torchmetrics.functional.classification import binary_auroc

    probabilities, truths, failures = [], [], []
    map_probabilities, map_truths = [], []
    started, tiles = time.perf_counter(), 0
    named = ((p.name, p) for p in photos)
    # The scan command's own scan of these tiles (batches across photos), its pictures kept for the failures figure.
    for scan in classifier.scan_task(tile=tile, stride=stride, context=context, batch_size=args.batch_size).results(
        named
    ):
        mask = read_mask(masks / (Path(scan.name).stem + ".png"), scan.width, scan.height)
        truth = torch.from_numpy(tile_truth(mask, scan.boxes, args.crack_fraction))
        p = torch.from_numpy(scan.crack_probability.copy())
        probabilities.append(p)
        truths.append(truth)
        tiles += len(scan.boxes)
        # Every 4th pixel of every 4th row: the map is smooth at tile scale, and 1/16 of the pixels keeps it fast.
        map_probabilities.append(torch.from_numpy(scan.probability_map()[::4, ::4].copy()).flatten())
        map_truths.append(torch.from_numpy(mask[::4, ::4].flatten()).long())
        if args.failures:
            for (x, y, w, h), t, q in zip(scan.boxes, truth.tolist(), p.tolist()):
                if t >= 0 and (q >= args.threshold) != bool(t):
                    failures.append((abs(q - t), scan.image[y : y + h, x : x + w].copy(), t, q, scan.name))
            failures = sorted(failures, key=lambda f: -f[0])[:64]
        scan.image = None
    seconds = time.perf_counter() - started
    p, t = torch.cat(probabilities), torch.cat(truths)
    keep = t >= 0
    p, t = p[keep], t[keep].long()
    predicted = p >= args.threshold
    recall = (predicted & (t == 1)).sum().item() / max(1, (t == 1).sum().item())
    specificity = (~predicted & (t == 0)).sum().item() / max(1, (t == 0).sum().item())
    return {
        "tile": tile,
        "stride": stride,
        "context": context,
        "crack": int((t == 1).sum()),
        "sound": int((t == 0).sum()),
        "ambiguous": int((~keep).sum()),
        "auroc": binary_auroc(p, t).item(),
        "balanced": (recall + specificity) / 2,
        "recall": recall,
        "specificity": specificity,
        "map_auroc": binary_auroc(torch.cat(map_probabilities), torch.cat(map_truths)).item(),
        "tiles_per_s": tiles / seconds,
        "failures": failures,
    }


def failure_figure(failures: list, tile: int, stride: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 8
    rows = max(1, -(-len(failures) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, crop, truth, q, name) in zip(axes.flat, failures):
        ax.imshow(crop)
        ax.set_title(f"{name}\n{'crack' if truth else 'sound'}, p={q:.2f}", fontsize=6)
    fig.suptitle(
        f"Most confident tile mistakes, tile {tile} px stride {stride} (title: true class, p(crack))", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="checkpoint written by fit, an .onnx written by export, or a shipped model's name")
    parser.add_argument("photos", type=Path, help="folder with images/ and masks/")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["64:32", "96:48", "128:64", "192:96", "256:128"],
        help="TILE:STRIDE or TILE:STRIDE:CONTEXT (context: share of the tile seen around it, default 0)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (quick looks)")
    parser.add_argument(
        "--half",
        type=int,
        choices=(1, 2),
        default=None,
        help="only the photos of every other group (a group: the name before '-'), 1 or 2: "
        "to check that a setting chosen on all photos holds on each half",
    )
    parser.add_argument("--crack_fraction", type=float, default=0.01)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--precision", default="32", choices=("32", "bf16"))
    parser.add_argument(
        "--failures", type=Path, default=None, help="PNG of the worst tile mistakes of the first config"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also record the rows in this JSON file, under 'all', 'half1' or 'half2' (kept across runs)",
    )
    args = parser.parse_args()
    classifier = load_model(args.ckpt, precision=args.precision)
    photos = sorted((args.photos / "images").glob("*.jpg"))[: args.limit]
    if args.half:
        groups = sorted({p.stem.split("-")[0] for p in photos})
        kept = set(groups[args.half - 1 :: 2])
        photos = [p for p in photos if p.stem.split("-")[0] in kept]
    print(
        f"{len(photos)} photos from {args.photos}, {classifier.source}, {classifier.describe()}, {os.cpu_count()} cores",
        file=sys.stderr,
    )
    print(
        "| tile | stride | context | crack / sound tiles (ambiguous left out) | tile AUROC | balanced accuracy | recall | specificity | map AUROC (pixels) | tiles/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, config in enumerate(args.configs):
        tile, stride, context = (config.split(":") + ["0"])[:3]
        tile, stride, context = int(tile), int(stride), float(context)
        r = evaluate(classifier, photos, args.photos / "masks", tile, stride, context, args)
        print(
            f"| {tile} | {stride} | {context:g} | {r['crack']} / {r['sound']} ({r['ambiguous']}) | {r['auroc']:.4f} | {r['balanced']:.4f} "
            f"| {r['recall']:.4f} | {r['specificity']:.4f} | {r['map_auroc']:.4f} | {r['tiles_per_s']:.0f} |",
            flush=True,
        )
        if args.json:
            record = json.loads(args.json.read_text()) if args.json.is_file() else {}
            key = f"half{args.half}" if args.half else "all"
            row = {
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in r.items()
                if k not in ("failures", "tiles_per_s")
            }
            record.setdefault(key, {"photos": len(photos), "threshold": args.threshold, "configs": []})[
                "configs"
            ].append(row)
            args.json.write_text(json.dumps(record, indent=2) + "\n")
        if args.failures and i == 0:
            failure_figure(r["failures"][:32], tile, stride, args.failures)
            args.failures = None


if __name__ == "__main__":
    main()
