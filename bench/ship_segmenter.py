"""Package a trained segmenter as a model shipped inside crack_lightning (``concrete-seg-v1``), with its card.

    python bench/train_concrete_seg.py --data DATA --output work/concrete-seg          # trains rounds 1 and 2
    python -m crack_lightning evaluate --ckpt_path CKPT --input PHOTOS --patches DATA/concrete-crack --output quality.json
    python bench/ship_segmenter.py CKPT --quality quality.json --training training.json [--low_threshold 0.6] [--min_area 50]

Writes ``crack_lightning/assets/models/NAME.ckpt`` (weights, hyperparameters, chosen threshold: no optimiser state),
``NAME.onnx`` (the exported graph that scan runs) and ``NAME.json`` (the card: data, synthesiser version and seed,
command and config, the figures of ``--quality`` (``evaluate --output``: the sets' figures and the patches' shares with
their 95% intervals; the per-photo rows are left out), where it fails, sha256 of each file). ``--training`` is a JSON
of how the rounds ran (device, epochs, minutes): the card copies it. ``--low_threshold`` goes into the graph's
metadata and the card: scan's hysteresis default for this model (evaluate it with ``evaluate --low_threshold``);
``--min_area`` likewise its smallest crack, ``--window`` its windows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from crack_lightning.io.atomic import write_atomically
from crack_lightning.runtime.models import MODELS_DIR, file_records
from crack_lightning.synth import SYNTH_VERSION

REPO = Path(__file__).resolve().parents[1]

CARD_QUALITY = ("sets", "patches", "threshold", "low_threshold", "inference", "data", "min_area", "tolerance_px")

CITATION = (
    'Özgenel, Ç.F. (2019). "Concrete Crack Images for Classification". Mendeley Data, v2. DOI 10.17632/5y9wdsg2zt.2'
)


def card_quality(quality: dict) -> dict:
    """The card's part of an ``evaluate --output`` JSON: the figures, not a row per photo."""
    return {k: quality[k] for k in CARD_QUALITY if k in quality}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", type=Path, help="the segmenter's best checkpoint")
    parser.add_argument("--name", default="concrete-seg-v1")
    parser.add_argument("--quality", type=Path, required=True, help="JSON of evaluate --output (with --patches)")
    parser.add_argument(
        "--low_threshold",
        type=float,
        default=None,
        help="the model's hysteresis default, into its metadata (default: none, scan's default)",
    )
    parser.add_argument(
        "--min_area",
        type=int,
        default=None,
        help="the model's smallest crack in px, into its metadata (default: none, scan's default)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="the window the model's scan runs in, into its metadata (default: scan's, 512 px)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=REPO / "configs" / "concrete-seg-v1.yaml",
        help="the training config the card quotes",
    )
    parser.add_argument("--memory", type=Path, default=None, help="JSON of bench/segment_memory.py --json")
    parser.add_argument(
        "--training", type=Path, default=None, help="JSON: how each round ran (required unless --card_only)"
    )
    parser.add_argument("--notes", type=Path, default=None, help="JSON: decisions and where it fails, for the card")
    parser.add_argument(
        "--card_only",
        action="store_true",
        help="rewrite the card's figures only (after a change in measuring): the shipped files stay",
    )
    args = parser.parse_args()
    if args.card_only:
        path = MODELS_DIR / f"{args.name}.json"
        card = json.loads(path.read_text())
        card["quality"] = card_quality(json.loads(args.quality.read_text()))
        if args.training:
            card["training"] = json.loads(args.training.read_text())
        if args.memory:
            card["memory"] = json.loads(args.memory.read_text())
        if args.notes:
            card.update(json.loads(args.notes.read_text()))
        write_atomically(path, (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode())
        print(f"{args.name}: card figures rewritten in {path}")
        return
    if args.training is None:
        parser.error("--training is required to ship a model")
    # torch and the Lightning modules here: --help and --card_only answer without them.
    import torch

    from crack_lightning.export.onnx import export_segmenter
    from crack_lightning.models.checkpoints import SEGMENTATION, read_checkpoint
    from crack_lightning.models.loading import load_checkpoint

    checkpoint = read_checkpoint(args.ckpt, task=SEGMENTATION)
    model = load_checkpoint(args.ckpt)
    own = {"low_threshold": args.low_threshold} if args.low_threshold is not None else {}
    for key in ("min_area", "window"):
        if getattr(args, key) is not None:
            own[key] = getattr(args, key)
    graph = export_segmenter(model, {"name": args.name, **own})
    ckpt_path, onnx_path = MODELS_DIR / f"{args.name}.ckpt", MODELS_DIR / f"{args.name}.onnx"
    keep = ("epoch", "global_step", "pytorch-lightning_version")
    # init_from named a file of the training machine: the shipped network is complete without it.
    # The teacher is named on the card; the shipped checkpoint needs none to load, test or fine-tune.
    hparams = {**checkpoint["hyper_parameters"], "init_from": None, "distill_from": None}
    torch.save(
        {
            **{k: checkpoint[k] for k in keep if k in checkpoint},
            "state_dict": checkpoint["state_dict"],
            "hyper_parameters": hparams,
        },
        ckpt_path,
    )
    write_atomically(onnx_path, graph)
    quality = card_quality(json.loads(args.quality.read_text()))
    card = {
        "name": args.name,
        "summary": "crack segmenter (MobileNetV2 encoder, U-Net decoder) trained on synthetic cracks and self-trained "
        "crack patches: masks, crack lengths and widths",
        "task": "segmentation",
        "architecture": f"torchvision mobilenet_v2 features[:18] as encoder, U-Net decoder {list(model.hparams.decoder_channels)}, "
        f"{model.hparams.decoder_convs} {'depthwise-separable ' if model.hparams.get('separable') else ''}"
        "3x3 convolutions a stage, one crack logit a pixel"
        + (
            "; the encoder sees the photo at half size, the decoder ends at half resolution with a stem over the "
            "photo's 2x2 blocks, and the head predicts each block's four pixels (context_scale 2)"
            if model.hparams.get("context_scale", 1) == 2
            else ""
        ),
        "threshold": round(model.threshold, 4),
        "threshold_note": "chosen on the synthetic validation samples (best F1), carried in the checkpoint and the graph",
        **own,
        "mean": list(model.hparams.mean),
        "std": list(model.hparams.std),
        "training_data": {
            "description": "No hand-drawn masks: cracks drawn with exact masks by crack_lightning.synth on sound "
            "patches (round 1), then also real crack patches labelled by the round-1 model where it "
            "was sure (round 2, crack_lightning.self_training)",
            "synthesiser_version": SYNTH_VERSION,
            "backgrounds": "every 3rd of the 6,000 Negative patches of concrete-crack-extra (2,000, sorted by name)",
            "crack_patches": "every 6th of the 6,000 Positive patches of concrete-crack-extra (1,000, sorted by name)",
            "held_out": "concrete-crack (5,000 patches) was never used in training: it is the card's other surface",
            "citation": CITATION,
            "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
        },
        "backbone": "crack_lightning/assets/weights/mobilenet_v2_features_partial_imagenet.pth (see its README)",
        "command": "python bench/train_concrete_seg.py --data DATA --output work/concrete-seg",
        "config": args.config.read_text(),
        "training": json.loads(args.training.read_text()),
        "checkpoint_epoch": int(checkpoint.get("epoch", -1)),
        "quality": quality,
        "quality_note": "python -m crack_lightning evaluate (each photo scanned as scan scans it). photos: 300 "
        "DeepCrack-style research photos with hand-drawn masks, never trained on, used to compare "
        "runs (a development measure; not shipped, not shown). Lengths and widths: per photo, against "
        "the same measurement on the true mask. patches: a crack of at least min_area px found, per "
        "patch.",
        "files": file_records(ckpt_path, onnx_path),
        "made": time.strftime("%Y-%m-%d"),
    }
    if args.memory:
        card["memory"] = json.loads(args.memory.read_text())
    if args.notes:
        card.update(json.loads(args.notes.read_text()))
    write_atomically(MODELS_DIR / f"{args.name}.json", (json.dumps(card, indent=2, ensure_ascii=False) + "\n").encode())
    print(f"{args.name}: threshold {card['threshold']}, files in {MODELS_DIR}")


if __name__ == "__main__":
    main()
