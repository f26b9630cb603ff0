"""Train the shipped segmenter concrete-seg-v1 from shippable data only, in one command.

    python bench/train_concrete_seg.py --data DATA --output work/concrete-seg [-- extra fit options]

1. ``synth``: ``--count`` synthetic samples (seed ``--seed``) on the sound patches ``DATA/concrete-crack-extra/Negative``;
2. ``fit`` round 1 on them (configs/segment.yaml + configs/concrete-seg-v1.yaml);
3. self-training: round 1's best checkpoint labels the crack patches ``DATA/concrete-crack-extra/Positive``
   (sure pixels only, :mod:`crack_lightning.training.self_training`);
4. ``fit`` round 2 on the first ``--round2_count`` synthetic samples plus those labelled patches, starting from
   round 1's network (``--model.init_from``) at a tenth of its learning rates.
``--stage round2 --round1_ckpt CKPT`` runs steps 3-4 only (after a round 1 run elsewhere). DATA/concrete-crack (Negative and Positive) is never used, so that it stays a held-out surface. Options after
``--`` go to both ``fit`` runs (e.g. ``--trainer.precision bf16-mixed --data.num_workers 14`` on a GPU machine).

``--recipe distill`` trains concrete-seg-v2 instead (configs/concrete-seg-v2.yaml), one ``fit`` taught by the shipped
concrete-seg-v1: ``--count`` (3,000) synthetic samples with exact masks, every 4th crack patch with every pixel left
to the teacher (an ``ignore/`` mask of the whole patch) and every 8th sound patch (from the 2nd) as all background.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CONFIGS = ["--config", "configs/segment.yaml", "--config", "configs/concrete-seg-v1.yaml"]
DISTILL_CONFIGS = ["--config", "configs/segment.yaml", "--config", "configs/concrete-seg-v2.yaml"]


ROUND2 = [
    "--model.init_args.lr",
    "3.0e-4",
    "--model.init_args.encoder_lr",
    "1.0e-4",
    "--model.init_args.warmup_steps",
    "0",
]


def fit(root: Path, runs: Path, name: str, extra: list[str], configs: list[str] = CONFIGS) -> Path:
    """Run ``fit``; return the best checkpoint by validation ODS F1."""
    command = [
        sys.executable,
        "-m",
        "crack_lightning",
        "fit",
        *configs,
        "--data.root",
        str(root),
        "--trainer.logger.init_args.save_dir",
        str(runs),
        "--trainer.logger.init_args.name",
        name,
        *extra,
    ]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    version = max((runs / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    best = sorted((version / "checkpoints").glob("best-*.ckpt"))
    if not best:
        raise SystemExit(f"no best-*.ckpt in {version}/checkpoints")
    return max(best, key=lambda p: float(p.stem.rsplit("ods", 1)[1]))


def link_tree(source: Path, target: Path, limit: int) -> None:
    """``target`` sees the first ``limit`` samples of ``source`` (hard links: no copies, no symlinks to resolve)."""
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted((source / sub).iterdir())[:limit]:
            link = target / sub / path.name
            if not link.exists():
                os.link(path, link)


def every_nth(folder: Path, n: int, target: Path) -> str:
    """A folder of every ``n``-th image of ``folder`` (sorted by name), as hard links; ``folder`` itself for 1."""
    if n == 1:
        return str(folder)
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[::n]:
        if not (target / path.name).exists():
            try:
                os.link(path, target / path.name)
            except OSError:  # another file system
                (target / path.name).symlink_to(path.resolve())
    return str(target)


def teacher_folder(synth: Path, extra: Path, target: Path, count: int) -> int:
    """The distillation recipe's training folder (links and masks only): ``count`` synthetic samples, every 4th crack
    patch with all its pixels ignored by the mask loss (the teacher labels them), every 8th sound patch (from the 2nd)
    with an empty mask. Returns the number of samples."""
    import numpy as np
    from PIL import Image

    link_tree(synth, target, limit=count)
    (target / "ignore").mkdir(exist_ok=True)
    for kind, folder, start, step in (("pos", "Positive", 0, 4), ("neg", "Negative", 1, 8)):
        files = sorted(p for p in (extra / folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for path in files[start::step]:
            name = f"{kind}-{path.stem}"
            image = target / "images" / (name + path.suffix.lower())
            if not image.exists():
                os.link(path, image)
            width, height = Image.open(path).size
            Image.fromarray(np.zeros((height, width), np.uint8)).save(target / "masks" / (name + ".png"))
            if kind == "pos":
                Image.fromarray(np.full((height, width), 255, np.uint8)).save(target / "ignore" / (name + ".png"))
    return len(list((target / "images").iterdir()))


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the folder holding concrete-crack-extra/ (Negative/, Positive/)")
    p.add_argument("--output", required=True, help="working folder: synthetic data, labelled patches, runs")
    p.add_argument("--count", type=int, default=5000, help="synthetic samples (round 1)")
    p.add_argument("--seed", type=int, default=0, help="the synthesiser's seed")
    p.add_argument("--backgrounds", default=None, help="sound patches (default DATA/concrete-crack-extra/Negative)")
    p.add_argument("--positives", default=None, help="crack patches (default DATA/concrete-crack-extra/Positive)")
    p.add_argument(
        "--every_negative", type=int, default=3, help="use every Nth sound patch (sorted names; 3: 2,000 of 6,000)"
    )
    p.add_argument("--every_positive", type=int, default=6, help="use every Nth crack patch (6: 1,000 of 6,000)")
    p.add_argument("--stage", default="all", choices=("all", "round1", "round2"), help="round1: synthetic only")
    p.add_argument("--round1_ckpt", default=None, help="with --stage round2: round 1's checkpoint")
    p.add_argument("--round2_count", type=int, default=2000, help="synthetic samples in round 2's mix")
    p.add_argument(
        "--recipe",
        default="rounds",
        choices=("rounds", "distill"),
        help="rounds: concrete-seg-v1's two rounds; distill: concrete-seg-v2, taught by concrete-seg-v1",
    )
    o = p.parse_args(argv)
    if o.stage == "round2" and not o.round1_ckpt:
        p.error("--stage round2 needs --round1_ckpt")
    data, out = Path(o.data), Path(o.output)
    # The shipped model's GPU session could carry only part of the patches (64 MiB): every 3rd sound one and every
    # 6th crack one, in sorted order. The same subsets are taken here, so that this command rebuilds its data.
    backgrounds = every_nth(
        Path(o.backgrounds or data / "concrete-crack-extra" / "Negative"), o.every_negative, out / "backgrounds"
    )
    positives = every_nth(
        Path(o.positives or data / "concrete-crack-extra" / "Positive"), o.every_positive, out / "positives"
    )
    synth = out / "synthetic"
    count = o.count if o.stage != "round2" else o.round2_count  # sample i is the same in any count
    if o.recipe == "distill":
        count = 3000 if o.count == p.get_default("count") else o.count
    subprocess.run(
        [
            sys.executable,
            "-m",
            "crack_lightning",
            "synth",
            "--backgrounds",
            backgrounds,
            "--output",
            str(synth),
            "--count",
            str(count),
            "--seed",
            str(o.seed),
        ],
        check=True,
    )
    if o.recipe == "distill":
        samples = teacher_folder(synth, data / "concrete-crack-extra", out / "distill", count)
        print(f"Distillation folder: {samples} samples", flush=True)
        best = {"distill": str(fit(out / "distill", out / "runs", "concrete-seg-v2", extra, DISTILL_CONFIGS))}
        (out / "best.json").write_text(json.dumps(best, indent=2) + "\n")
        print(json.dumps(best, indent=2))
        return
    if o.stage == "round2":
        best = {"round1": o.round1_ckpt}
    else:
        best = {"round1": str(fit(synth, out / "runs", "round1", extra))}
        print(f"Round 1 best: {best['round1']}", flush=True)
    if o.stage != "round1":
        from crack_lightning.training.self_training import pseudo_label

        mixed = out / "self-trained"
        link_tree(synth, mixed, limit=o.round2_count)
        counts = pseudo_label(best["round1"], [positives], mixed)
        print(f"Self-training labels: {counts}", flush=True)
        round2 = ROUND2 + ["--model.init_args.init_from", best["round1"]]
        best["round2"] = str(fit(mixed, out / "runs", "round2", round2 + extra))
        best["pseudo_labels"] = counts
    (out / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
