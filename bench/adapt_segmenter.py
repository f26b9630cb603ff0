"""Adapt a shipped segmenter to new photos with masks: its figures on photos of other groups, zero-shot and after
fine-tuning on N masked photos.

    python bench/adapt_segmenter.py --photos ../shared/data/crack-photos --counts 10 30 100 [--model concrete-seg-v2]

Photo groups (the name before '-', e.g. 7Q3A9064 for 7Q3A9064-3.jpg) are dealt alternately to an adaptation half
and an evaluation half, so that no photo of an evaluated group was trained on. For each count N, N photos of the
adaptation half (seeded) are trained on with ``configs/segment.yaml`` + the model's config and ``--model.init_from
MODEL``, the teacher off, the encoder frozen, for a fixed number of crops (the last epoch is the model: a few
photos give too few to choose an epoch by); every photo of the evaluation half is then scored by
``crack_lightning.evaluate``. Prints a Markdown table; ``--json`` writes it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import crack_lightning

REPO = Path(__file__).resolve().parents[1]


def group(name: str) -> str:
    return name.split("-")[0].split(".")[0]


def halves(photos: Path) -> tuple[list[str], list[str]]:
    """Photo names of the adaptation and the evaluation half, groups dealt alternately in sorted order."""
    names = sorted(p.name for p in (photos / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    groups = sorted({group(n) for n in names})
    adapt = {g for i, g in enumerate(groups) if i % 2 == 0}
    return [n for n in names if group(n) in adapt], [n for n in names if group(n) not in adapt]


def link_folder(photos: Path, names: list[str], target: Path) -> Path:
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        os.symlink(photos / "images" / name, target / "images" / name)
        mask = Path(name).stem + ".png"
        os.symlink(photos / "masks" / mask, target / "masks" / mask)
    return target


def scores(model: str, folder: Path) -> dict:
    result = crack_lightning.evaluate(folder, model=model, backend="onnxruntime", precision="32").to_dict()
    row = result["sets"]["all"]
    keys = ("precision", "recall", "f1", "ods_f1", "length_error", "width_error")
    return {k: row[k] for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="images/ and masks/ (255 = crack)")
    parser.add_argument(
        "--model", default="concrete-seg-v2", help="a shipped segmenter, whose config is configs/NAME.yaml"
    )
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--crops", type=int, default=400, help="training crops per run, whatever N")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4, help="the decoder's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.photos = args.photos.resolve()  # the links below point at it from another folder
    adapt, evaluation = halves(args.photos)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        held_out = link_folder(args.photos, evaluation, Path(tmp) / "evaluation")
        rows.append({"photos": 0, **scores(args.model, held_out)})
        print(f"{len(adapt)} adaptation / {len(evaluation)} evaluation photos; zero-shot: {rows[-1]}", flush=True)
        for count in args.counts:
            chosen = sorted(random.Random(args.seed).sample(adapt, count))
            root = link_folder(args.photos, chosen, Path(tmp) / f"train-{count}")
            per_photo = max(1, math.ceil(args.crops / (args.epochs * max(1, round(count * 0.8)))))
            runs = Path(tmp) / "runs"
            command = [
                sys.executable,
                "-m",
                "crack_lightning",
                "fit",
                "--config",
                str(REPO / "configs" / "segment.yaml"),
                "--config",
                str(REPO / "configs" / f"{args.model}.yaml"),
                "--model.init_args.init_from",
                args.model,
                "--model.init_args.distill_from",
                "null",
                "--model.init_args.encoder_lr",
                "0",
                "--model.init_args.lr",
                str(args.lr),
                "--model.init_args.warmup_steps",
                "0",
                "--data.root",
                str(root),
                "--data.init_args.crop_size",
                "256",
                "--data.init_args.batch_size",
                "4",
                "--data.init_args.crops_per_photo",
                str(per_photo),
                "--data.init_args.val_fraction",
                "0.2",
                "--data.init_args.group_pattern",
                "^([^-.]+)",
                "--trainer.max_epochs",
                str(args.epochs),
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.logger.init_args.save_dir",
                str(runs),
                "--trainer.logger.init_args.name",
                f"n{count}",
            ]
            subprocess.run(command, check=True)
            last = next((runs / f"n{count}").glob("version_*/checkpoints/last.ckpt"))
            rows.append({"photos": count, **scores(str(last), held_out)})
            print(rows[-1], flush=True)
    print(f"\n{args.model} on {len(evaluation)} photos of other groups; {args.crops} crops of 256 px, lr {args.lr}\n")
    print("| trained on | precision | recall | F1 at its threshold | ODS F1 | length error | width error |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        label = "zero-shot" if r["photos"] == 0 else f"{r['photos']} photos"
        print(
            f"| {label} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['ods_f1']:.3f} | "
            f"{r['length_error']:.1%} | {r['width_error']:.2f} px |"
        )
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "rows": rows, "args": vars(args)}, default=str, indent=2))


if __name__ == "__main__":
    main()
