"""Adapt the concrete model to new photos: accuracy on never-seen photos and on concrete, before and after.

    python -m crack_lightning tiles --photos ../shared/data/crack-photos/images \\
        --masks ../shared/data/crack-photos/masks --output TILES --tile 128
    python bench/adapt.py CKPT TILES ../shared/data/concrete-crack --counts 50 100 200

Photo groups (the name before '-', e.g. 11125 for 11125-1, 11125-2) are dealt alternately to an adaptation half
and an evaluation half. For each count N, N tiles of the adaptation half (half crack, half sound, seeded) are
trained on with ``configs/adapt.yaml`` and ``--model.init_from CKPT``; every tile of the evaluation half and the
concrete test split (the default seeded split of the concrete root) are then classified. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def photo_group(tile: Path) -> str:
    return tile.name.split("_x")[0].split("-")[0]


def scores(model, paths: list[Path], labels: list[int]) -> dict[str, float]:
    import torch
    from torchmetrics.functional.classification import binary_auroc

    result = model.predict(paths, batch_size=64)
    p, t = torch.from_numpy(result.crack_probability), torch.tensor(labels)
    predicted = p >= 0.5
    recall = (predicted & (t == 1)).sum().item() / max(1, (t == 1).sum().item())
    specificity = (~predicted & (t == 0)).sum().item() / max(1, (t == 0).sum().item())
    return {
        "balanced": (recall + specificity) / 2,
        "auroc": binary_auroc(p, t).item(),
        "recall": recall,
        "specificity": specificity,
        "accuracy": (predicted.long() == t).float().mean().item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt")
    parser.add_argument("tiles", type=Path, help="output of `crack_lightning tiles` (Negative/, Positive/)")
    parser.add_argument("concrete", type=Path, help="the concrete root the checkpoint was trained on")
    parser.add_argument("--counts", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="one adaptation per seed and count (the tiles drawn and the training seed, 42 + seed); "
        "with several, a mean row follows each count's rows",
    )
    parser.add_argument("--skip_before", action="store_true", help="do not score the checkpoint itself")
    parser.add_argument(
        "--mix",
        type=int,
        default=0,
        help="also train on this many concrete images per class, from the concrete train split only "
        "(a second --data.root with --data.max_per_root), against forgetting",
    )
    parser.add_argument(
        "--pick",
        choices=("best", "last"),
        default="best",
        help="the checkpoint scored: the best by val_loss (default) or the last epoch's",
    )
    parser.add_argument(
        "--fit",
        nargs=argparse.REMAINDER,
        default=[],
        help="more fit options, after everything else (e.g. --fit --model.lr 1e-3)",
    )
    args = parser.parse_args()
    # After parsing, so that --help answers at once: torch and Lightning take seconds to import.
    from crack_lightning import CrackDataModule, load_model

    tiles = {label: sorted((args.tiles / name).glob("*.jpg")) for label, name in ((0, "Negative"), (1, "Positive"))}
    groups = sorted({photo_group(p) for paths in tiles.values() for p in paths})
    adapt_groups = set(groups[0::2])
    evaluation = [(p, label) for label, paths in tiles.items() for p in paths if photo_group(p) not in adapt_groups]
    pool = {label: [p for p in paths if photo_group(p) in adapt_groups] for label, paths in tiles.items()}
    concrete = CrackDataModule(root=str(args.concrete))
    concrete.setup("test")
    concrete_test = [(concrete.root / p, y) for p, y in concrete.splits["test"]]
    print(
        f"evaluation: {len(evaluation)} tiles of {len(groups) - len(adapt_groups)} photo groups; adaptation pool: "
        f"{sum(map(len, pool.values()))} tiles of {len(adapt_groups)} groups; concrete test: {len(concrete_test)}",
        file=sys.stderr,
    )

    def row(name: str, model) -> tuple[str, list[float]]:
        new = scores(model, [p for p, _ in evaluation], [y for _, y in evaluation])
        old = scores(model, [p for p, _ in concrete_test], [y for _, y in concrete_test])
        values = [new["balanced"], new["auroc"], new["recall"], new["specificity"], old["accuracy"]]
        return f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |", values

    print("| model | new photos: balanced accuracy | AUROC | recall | specificity | concrete test accuracy |")
    print("| --- | --- | --- | --- | --- | --- |")
    before = load_model(args.ckpt)
    size = str(before.image_size)  # adapt at the size the checkpoint was trained at
    if not args.skip_before:
        print(row("before (concrete checkpoint)", before)[0], flush=True)
    for count in args.counts:
        rows = []
        for seed in args.seeds:
            rng = random.Random(f"{seed}/{count}")
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / "tiles"
                for label, name in ((0, "Negative"), (1, "Positive")):
                    (root / name).mkdir(parents=True)
                    for p in rng.sample(pool[label], min(count // 2, len(pool[label]))):
                        (root / name / p.name).symlink_to(p.resolve())
                roots = [str(root)]
                if args.mix:
                    mixed = Path(tmp) / "concrete_train"
                    for p, y in concrete.splits["train"]:
                        (mixed / concrete.classes[y]).mkdir(parents=True, exist_ok=True)
                        (mixed / concrete.classes[y] / Path(p).name).symlink_to((concrete.root / p).resolve())
                    roots.append(str(mixed))
                # The fit command as a user runs it, in its own process.
                fit = [
                    sys.executable,
                    "-m",
                    "crack_lightning",
                    "fit",
                    "--config",
                    str(REPO / "configs" / "adapt.yaml"),
                    "--model.init_from",
                    args.ckpt,
                    "--data.image_size",
                    size,
                    "--data.root",
                    f"[{','.join(roots)}]",
                    "--data.max_per_root",
                    str(max(count // 2, args.mix)),
                    "--trainer.logger.init_args.save_dir",
                    str(Path(tmp) / "runs"),
                    "--trainer.enable_progress_bar",
                    "false",
                    "--sample_grid.images_per_class",
                    "0",
                    "--seed_everything",
                    str(42 + seed),
                    *args.fit,
                ]
                subprocess.run(fit, check=True)
                best = next((Path(tmp) / "runs").rglob("best-*.ckpt" if args.pick == "best" else "last.ckpt"))
                mix = f" + {2 * args.mix} concrete" if args.mix else ""
                picked = " (last epoch)" if args.pick == "last" else ""
                seeded = f", seed {seed}" if len(args.seeds) > 1 else ""
                text, values = row(
                    f"adapted on {count} tiles{mix}{picked}{seeded} {' '.join(args.fit)}".strip(), load_model(best)
                )
                print(text, flush=True)
                rows.append(values)
        if len(rows) > 1:
            mean = [sum(column) / len(rows) for column in zip(*rows)]
            low, high = min(r[0] for r in rows), max(r[0] for r in rows)
            print(
                f"| **mean of {len(rows)} seeds, {count} tiles** (balanced accuracy {low:.4f}-{high:.4f}, range "
                f"{high - low:.4f}) | " + " | ".join(f"{v:.4f}" for v in mean) + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
