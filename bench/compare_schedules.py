"""Compare training schedules by k-fold cross-validation: every image is tested once, by a model that never saw it.

    python bench/compare_schedules.py DATA_ROOT --configs default configs/fast.yaml --folds 5 --workdir cv/
    python bench/compare_schedules.py DATA_ROOT --configs default configs/fast.yaml --max_per_class 300   # a quick look

Each config is laid over configs/default.yaml (``default`` = that file alone). Folds are seeded and stratified by
class (grouped by ``--group_pattern`` when given: a group's images share a fold); for fold k the other folds give
the training and validation images (``--val_fraction`` of them, seeded). Each fold is one ``fit`` and one
``predict`` of the held-out images through the product's own CLI, in a process of its own. Results are kept in
``--workdir`` after every fold: run the same command again to go on where it stopped, or add ``--report`` to print
the folds done so far without running anything. ``--tta`` also predicts
each fold's checkpoint with ``predict --tta hflip`` (rows ``NAME+hflip``; added to finished folds without refitting).

Prints per config: folds done, mean epochs and minutes per fold, accuracy over all held-out images with its 95%
Wilson interval, errors, pooled AUROC and mean log loss (held-out cross-entropy); then an exact McNemar test for each pair of configs on the images both
have tested (the errors one makes and the other does not).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from crack_lightning.evaluation.intervals import wilson

REPO = Path(__file__).resolve().parents[1]


def folds_of(
    samples: list[tuple[str, int]], k: int, seed: int, group_pattern: str | None
) -> list[list[tuple[str, int]]]:
    """``k`` folds: stratified by class, or whole groups dealt in turn (seeded) when ``group_pattern`` is given."""
    # fit's own grouping (--data.group_pattern), so that a group's images share a fold as they share a split there
    from crack_lightning.data.splits import sample_group

    folds: list[list[tuple[str, int]]] = [[] for _ in range(k)]
    if group_pattern:
        groups: dict[str, list] = {}
        for sample in samples:
            groups.setdefault(sample_group(sample[0], group_pattern), []).append(sample)
        names = sorted(groups)
        random.Random(f"{seed}/folds").shuffle(names)
        for name in sorted(names, key=lambda n: -len(groups[n])):  # big groups first, each to the smallest fold
            min(folds, key=len).extend(groups[name])
        return [sorted(f) for f in folds]
    for label in sorted({y for _, y in samples}):
        items = sorted(p for p, y in samples if y == label)
        random.Random(f"{seed}/folds/{label}").shuffle(items)
        for i, path in enumerate(items):
            folds[i % k].append((path, label))
    return [sorted(f) for f in folds]


def write_split(path: Path, train_val: list, test: list, classes: list[str], val_fraction: float, seed: int) -> None:
    rng = random.Random(f"{seed}/val")
    rows = [(p, "test", y) for p, y in test]
    for label in range(len(classes)):
        items = sorted(p for p, y in train_val if y == label)
        rng.shuffle(items)
        n_val = round(len(items) * val_fraction)
        rows += [(p, "val", label) for p in items[:n_val]] + [(p, "train", label) for p in items[n_val:]]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "split", "class"])
        writer.writerows((p, s, classes[y]) for p, s, y in rows)


def cli(*args: str, log: Path) -> None:
    with open(log, "a") as out:
        result = subprocess.run([sys.executable, "-m", "crack_lightning", *args], cwd=REPO, stdout=out, stderr=out)
    if result.returncode:
        raise SystemExit(f"failed: python -m crack_lightning {' '.join(args)} (see {log})")


def run_fold(root: Path, config: str, fold: int, folds: list, classes: list[str], args, out: Path) -> dict:
    """Fit on the other folds, predict this one; returns the fold's per-image results."""
    out.mkdir(parents=True, exist_ok=True)
    split = out / "split.csv"
    train_val = [s for i, f in enumerate(folds) if i != fold for s in f]
    write_split(split, train_val, folds[fold], classes, args.val_fraction, args.seed + fold)
    configs = ["--config", str(REPO / "configs" / "default.yaml")]
    if config != "default":
        configs += ["--config", str(Path(config).resolve())]
    log = out / "log.txt"
    start = time.perf_counter()
    cli(
        "fit",
        *configs,
        "--data.root",
        str(root),
        "--data.split_file",
        str(split),
        "--model.weights",
        args.weights,
        "--trainer.logger.init_args.save_dir",
        str(out / "runs"),
        "--trainer.enable_progress_bar",
        "false",
        *args.fit_args,
        log=log,
    )
    minutes = (time.perf_counter() - start) / 60
    run_dir = max((out / "runs" / "crack").iterdir(), key=lambda p: int(p.name.split("_")[1]))
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    epochs = torch_epochs(run_dir / "checkpoints" / "last.ckpt")
    images = predict_fold(root, str(best), folds[fold], classes, args, out)
    return {"fold": fold, "epochs": epochs, "minutes": minutes, "checkpoint": str(best), "images": images}


def predict_fold(
    root: Path, checkpoint: str, held_out: list, classes: list[str], args, out: Path, *flags: str
) -> list[dict]:
    """Per-image results of predicting the held-out images with ``checkpoint`` (and extra predict ``flags``)."""
    listing = out / "test.txt"
    listing.write_text("".join(f"{root / p}\n" for p, _ in held_out))
    cli(
        "predict",
        "--ckpt_path",
        checkpoint,
        "--data.predict_dir",
        str(listing),
        "--output",
        str(out / "test.csv"),
        "--overwrite",
        "true",
        *flags,
        log=out / "log.txt",
    )
    with open(out / "test.csv", newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    crack = classes.index(args.crack_class)
    return [
        {
            "path": p,
            "crack": y == crack,
            "p": float(rows[str(root / p)]["crack_probability"]),
            "correct": (rows[str(root / p)]["label"] == classes[y]),
        }
        for p, y in held_out
    ]


def torch_epochs(ckpt: Path) -> int:
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]) + 1


def auroc(scores: list[float], positive: list[bool]) -> float:
    """torchmetrics' binary AUROC of the pooled held-out images; NaN when they hold one class only."""
    if all(positive) or not any(positive):
        return math.nan
    import torch
    from torchmetrics.functional.classification import binary_auroc

    return binary_auroc(torch.tensor(scores, dtype=torch.float64), torch.tensor(positive).long()).item()


def log_loss(images: list[dict]) -> float:
    """Mean held-out cross-entropy: finer than the error count, it also tells how sure the right answers were.
    Probabilities are clipped at 1e-6, the resolution of the predict CSV."""
    return sum(-math.log(max(i["p"] if i["crack"] else 1 - i["p"], 1e-6)) for i in images) / len(images)


def mcnemar(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts (binomial, p = 1/2)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="class-folder data root")
    parser.add_argument("--configs", nargs="+", required=True, help="'default' and/or config files laid over it")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--val_fraction", type=float, default=0.2, help="share of the training folds for validation")
    parser.add_argument("--group_pattern", help="regular expression giving a file's group (as --data.group_pattern)")
    parser.add_argument(
        "--max_per_class", type=int, help="a seeded subset of this many images per class, for a quick look"
    )
    parser.add_argument(
        "--weights", default=str(REPO.parent / "shared" / "weights" / "mobilenet_v2_features_partial_imagenet.pth")
    )
    parser.add_argument("--crack_class", default="Positive")
    parser.add_argument("--workdir", default="compare_schedules", help="results, kept after each fold (resumable)")
    parser.add_argument("--report", action="store_true", help="print the results of the folds done so far; run nothing")
    parser.add_argument(
        "--tta", action="store_true", help="also predict each fold with predict --tta hflip: rows NAME+hflip"
    )
    parser.add_argument("--fit_args", nargs=argparse.REMAINDER, default=[], help="more fit flags for every run (last)")
    args = parser.parse_args()
    # fit's own listing of a class-folder root (torchvision's ImageFolder): the folds hold the images fit would see
    from crack_lightning.data.splits import scan_folder

    root = Path(args.root).resolve()
    classes, samples = scan_folder(root, root)
    if args.max_per_class:
        kept = []
        for label in range(len(classes)):
            items = sorted(p for p, y in samples if y == label)
            random.Random(f"{args.seed}/subset/{label}").shuffle(items)
            kept += [(p, label) for p in items[: args.max_per_class]]
        samples = sorted(kept)
    if args.group_pattern:
        re.compile(args.group_pattern)
    folds = folds_of(samples, args.folds, args.seed, args.group_pattern)
    work = Path(args.workdir)
    results: dict[str, list[dict]] = {}
    for config in args.configs:
        name = Path(config).stem
        results[name] = []
        for fold in range(args.folds):
            done = work / name / f"fold{fold}.json"
            if args.report and not done.exists():
                continue
            if not done.exists():
                print(f"{name}: fold {fold + 1}/{args.folds} ({len(folds[fold])} held-out images) ...", flush=True)
                result = run_fold(root, config, fold, folds, classes, args, work / name / f"fold{fold}")
                done.write_text(json.dumps(result))
            result = json.loads(done.read_text())
            if (
                args.tta and "images_hflip" not in result and not args.report
            ):  # the same checkpoints, predicted with mirror images too
                print(f"{name}: fold {fold + 1}/{args.folds} with predict --tta hflip ...", flush=True)
                result["images_hflip"] = predict_fold(
                    root,
                    result["checkpoint"],
                    folds[fold],
                    classes,
                    args,
                    work / name / f"fold{fold}",
                    "--tta",
                    "hflip",
                )
                done.write_text(json.dumps(result))
            results[name].append(result)
        if args.tta:
            results[f"{name}+hflip"] = [
                {**r, "images": r["images_hflip"]} for r in results[name] if "images_hflip" in r
            ]
    results = {name: done for name, done in results.items() if done}
    print(
        f"\n{len(samples)} images of {root}, {args.folds} folds (seed {args.seed}); each image tested at most once per config\n"
    )
    print("| config | folds | epochs (mean) | minutes per fold | accuracy | 95% interval | errors | AUROC | log loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, folds_done in results.items():
        images = [i for r in folds_done for i in r["images"]]
        right = sum(i["correct"] for i in images)
        low, high = wilson(right, len(images))
        epochs = sum(r["epochs"] for r in folds_done) / len(folds_done)
        minutes = sum(r["minutes"] for r in folds_done) / len(folds_done)
        print(
            f"| {name} | {len(folds_done)} | {epochs:.1f} | {minutes:.1f} | {right / len(images):.4f} | "
            f"{low:.4f}-{high:.4f} | {len(images) - right} | {auroc([i['p'] for i in images], [i['crack'] for i in images]):.5f} | "
            f"{log_loss(images):.4f} |"
        )
    names = list(results)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            ca = {i["path"]: i["correct"] for r in results[names[a]] for i in r["images"]}
            cb = {i["path"]: i["correct"] for r in results[names[b]] for i in r["images"]}
            both = ca.keys() & cb.keys()
            only_a = sum(ca[p] and not cb[p] for p in both)
            only_b = sum(cb[p] and not ca[p] for p in both)
            print(
                f"\nMcNemar {names[a]} vs {names[b]} on {len(both)} images: {only_a} right only by {names[a]}, "
                f"{only_b} right only by {names[b]}; exact p = {mcnemar(only_a, only_b):.4f}"
            )


if __name__ == "__main__":
    main()
