"""Adapt a shipped segmenter to new photos with masks: its figures on photos of other groups, zero-shot and after
fine-tuning on N masked photos.

    python bench/adapt_segmenter.py --photos ../shared/data/crack-photos --counts 10 30 100 [--model concrete-seg-v2]

Photo groups (the name before '-', e.g. 7Q3A9064 for 7Q3A9064-3.jpg) are dealt alternately to an adaptation half
and an evaluation half, so that no photo of an evaluated group was trained on. For each count N, N photos of the
adaptation half (drawn with each ``--seeds``) are trained on as users adapt (``configs/segment.yaml`` + the model's
config + ``configs/adapt-segmenter.yaml``, ``--model.init_from MODEL``), with the options given here instead of the
recipe's (rates, epochs, crops, the teacher, a threshold chosen on the photos); every photo of the evaluation half is then scored by
``crack_lightning.evaluate``. Prints a Markdown table (means over seeds, and each seed's F1); ``--json`` writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import crack_lightning

REPO = Path(__file__).resolve().parents[1]
KEYS = ("precision", "recall", "f1", "ods_f1", "length_error", "width_error")


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
    return {k: row[k] for k in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="images/ and masks/ (255 = crack)")
    parser.add_argument(
        "--model", default="concrete-seg-v2", help="a shipped segmenter, whose config is configs/NAME.yaml"
    )
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("--crops_per_photo", type=int, default=None, help="default: the config's")
    parser.add_argument("--lr", type=float, default=None, help="the decoder's learning rate (default: the config's)")
    parser.add_argument(
        "--encoder_lr", type=float, default=None, help="the encoder's learning rate, 0: frozen (default: the config's)"
    )
    parser.add_argument(
        "--distill_from",
        default=None,
        help="the teacher whose probabilities the run also learns; null: none (default: the config's, the model itself)",
    )
    parser.add_argument(
        "--choose_threshold",
        action="store_true",
        help="choose the threshold on the adaptation photos' validation split instead of keeping the config's",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="draws of the N photos (and fit seeds)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    args.photos = args.photos.resolve()  # the links below point at it from another folder
    adapt, evaluation = halves(args.photos)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        held_out = link_folder(args.photos, evaluation, Path(tmp) / "evaluation")
        rows.append({"photos": 0, "seed": None, **scores(args.model, held_out)})
        print(f"{len(adapt)} adaptation / {len(evaluation)} evaluation photos; zero-shot: {rows[-1]}", flush=True)
        for count in args.counts:
            for seed in args.seeds:
                chosen = sorted(random.Random(seed).sample(adapt, count))
                root = link_folder(args.photos, chosen, Path(tmp) / f"train-{count}-{seed}")
                last = adapted(args, root, count, seed, Path(tmp) / "runs")
                rows.append({"photos": count, "seed": seed, **scores(str(last), held_out)})
                print(rows[-1], flush=True)
    given = {
        k: getattr(args, k) for k in ("lr", "encoder_lr", "epochs", "crops_per_photo") if getattr(args, k) is not None
    }
    recipe = (
        "configs/adapt-segmenter.yaml"
        + "".join(f", {k} {v:g}" for k, v in given.items())
        + (f", taught by {args.distill_from}" if args.distill_from else "")
        + (", threshold chosen on the photos" if args.choose_threshold else ", the config's threshold")
    )
    print(f"\n{args.model} on {len(evaluation)} photos of other groups; {recipe}; seeds {args.seeds}\n")
    print("| trained on | precision | recall | F1 at its threshold (each seed) | ODS F1 | length error | width error |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for count in [0, *args.counts]:
        group = [r for r in rows if r["photos"] == count]
        mean = {k: sum(r[k] for r in group) / len(group) for k in KEYS}
        each = " / ".join(f"{r['f1']:.3f}" for r in group) if len(group) > 1 else ""
        label = "zero-shot" if count == 0 else f"{count} photos"
        print(
            f"| {label} | {mean['precision']:.3f} | {mean['recall']:.3f} | {mean['f1']:.3f}"
            + (f" ({each})" if each else "")
            + f" | {mean['ods_f1']:.3f} | {mean['length_error']:.1%} | {mean['width_error']:.2f} px |"
        )
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "rows": rows, "args": vars(args)}, default=str, indent=2))


def adapted(args: argparse.Namespace, root: Path, count: int, seed: int, runs: Path) -> Path:
    """Fine-tune ``args.model`` on the photos of ``root`` with configs/adapt-segmenter.yaml and the study's options;
    its last checkpoint."""
    name = f"n{count}-s{seed}"
    command = [
        sys.executable,
        "-m",
        "crack_lightning",
        "fit",
        *("--config", str(REPO / "configs" / "segment.yaml")),
        *("--config", str(REPO / "configs" / f"{args.model}.yaml")),
        *("--config", str(REPO / "configs" / "adapt-segmenter.yaml")),
        *("--seed_everything", str(seed)),
        *("--model.init_args.init_from", args.model),
        *("--data.root", str(root)),
        *("--data.init_args.group_pattern", "^([^-.]+)"),  # the research photos' groups
        *("--trainer.enable_progress_bar", "false"),
        *("--trainer.logger.init_args.save_dir", str(runs)),
        *("--trainer.logger.init_args.name", name),
    ]
    for option, value in (
        ("model.init_args.lr", args.lr),
        ("model.init_args.encoder_lr", args.encoder_lr),
        ("trainer.max_epochs", args.epochs),
        ("data.init_args.crops_per_photo", args.crops_per_photo),
        ("model.init_args.distill_from", args.distill_from),
    ):
        if value is not None:  # else the config's
            command += [f"--{option}", str(value)]
    if args.choose_threshold:
        command += ["--model.init_args.threshold", "null"]
    subprocess.run(command, check=True)
    return next((runs / name).glob("version_*/checkpoints/last.ckpt"))


if __name__ == "__main__":
    main()
