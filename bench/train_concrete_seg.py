"""Train the shipped segmenter concrete-seg-v1 from shippable data only, in one command.

    python bench/train_concrete_seg.py --data DATA --output work/concrete-seg [-- extra fit options]

1. ``synth``: ``--count`` synthetic samples (seed ``--seed``) on the sound patches ``DATA/concrete-crack-extra/Negative``;
2. ``fit`` round 1 on them (configs/segment.yaml + configs/concrete-seg-v1.yaml);
3. self-training: round 1's best checkpoint labels the crack patches ``DATA/concrete-crack-extra/Positive``
   (sure pixels only, :mod:`crack_lightning.self_training`);
4. ``fit`` round 2 on the synthetic samples plus those labelled patches.
DATA/concrete-crack (Negative and Positive) is never used, so that it stays a held-out surface. Options after
``--`` go to both ``fit`` runs (e.g. ``--trainer.precision bf16-mixed --data.num_workers 14`` on a GPU machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CONFIGS = ["--config", "configs/segment.yaml", "--config", "configs/concrete-seg-v1.yaml"]


def fit(root: Path, runs: Path, name: str, extra: list[str]) -> Path:
    """Run ``fit``; return the best checkpoint by validation ODS F1."""
    command = [sys.executable, "-m", "crack_lightning", "fit", *CONFIGS, "--data.root", str(root),
               "--trainer.logger.init_args.save_dir", str(runs), "--trainer.logger.init_args.name", name, *extra]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    version = max((runs / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    best = sorted((version / "checkpoints").glob("best-*.ckpt"))
    if not best:
        raise SystemExit(f"no best-*.ckpt in {version}/checkpoints")
    return max(best, key=lambda p: float(p.stem.rsplit("ods", 1)[1]))


def link_tree(source: Path, target: Path) -> None:
    """``target`` sees every file of ``source`` (hard links: no copies, and no symlink for a loader to resolve)."""
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
        for path in (source / sub).iterdir():
            link = target / sub / path.name
            if not link.exists():
                os.link(path, link)


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the folder holding concrete-crack-extra/ (Negative/, Positive/)")
    p.add_argument("--output", required=True, help="working folder: synthetic data, labelled patches, runs")
    p.add_argument("--count", type=int, default=6000, help="synthetic samples")
    p.add_argument("--seed", type=int, default=0, help="the synthesiser's seed")
    p.add_argument("--backgrounds", default=None, help="sound patches (default DATA/concrete-crack-extra/Negative)")
    p.add_argument("--positives", default=None, help="crack patches (default DATA/concrete-crack-extra/Positive)")
    p.add_argument("--rounds", type=int, default=2, choices=(1, 2), help="1: synthetic only")
    o = p.parse_args(argv)
    data, out = Path(o.data), Path(o.output)
    backgrounds = o.backgrounds or str(data / "concrete-crack-extra" / "Negative")
    positives = o.positives or str(data / "concrete-crack-extra" / "Positive")
    synth = out / "synthetic"
    subprocess.run([sys.executable, "-m", "crack_lightning", "synth", "--backgrounds", backgrounds,
                    "--output", str(synth), "--count", str(o.count), "--seed", str(o.seed)], check=True)
    best = {"round1": str(fit(synth, out / "runs", "round1", extra))}
    print(f"Round 1 best: {best['round1']}", flush=True)
    if o.rounds == 2:
        from crack_lightning.self_training import pseudo_label

        mixed = out / "self-trained"
        link_tree(synth, mixed)
        counts = pseudo_label(best["round1"], [positives], mixed)
        print(f"Self-training labels: {counts}", flush=True)
        best["round2"] = str(fit(mixed, out / "runs", "round2", extra))
        best["pseudo_labels"] = counts
    (out / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    print(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
