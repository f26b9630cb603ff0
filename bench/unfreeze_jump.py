"""The unfreeze jump (issue 31): the training loss of each step around the fine-tune phase's start, for variants of the
schedule, all resumed from one frozen-phase checkpoint so that only the fine-tune phase's start differs.

    python bench/unfreeze_jump.py DATA/concrete-crack --max_per_root 1000 --config gpu \
        --variant 'before={"warmup_steps": 0}' --variant 'now={}' --variant 'lr/10={"backbone_lr": 2e-5, "warmup_steps": 0}'

``--config cpu``: configs/default.yaml (batch 32, backbone_lr 1e-4); ``gpu``: with configs/gpu.yaml (batch 128,
lr 2e-3, backbone_lr 2e-4), here on whatever device the Trainer finds. Prints, per variant, the mean training loss of
the last frozen epoch and of the unfreeze epoch (and their ratio), the first steps' losses after the unfreeze, and
val_acc after the unfreeze epoch and the next.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from gpu import merged

REPO = Path(__file__).resolve().parents[1]


def step_losses():
    """A callback recording every training step's loss and batch size, by epoch, and val_acc by epoch (Lightning is
    imported here, not at the top: --help answers at once)."""
    from lightning.pytorch.callbacks import Callback

    class StepLosses(Callback):
        def __init__(self) -> None:
            self.steps: dict[int, list[tuple[float, int]]] = {}
            self.val_acc: dict[int, float] = {}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.steps.setdefault(trainer.current_epoch, []).append((float(loss), int(batch[0].shape[0])))

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            if "val_acc" in trainer.callback_metrics:
                self.val_acc[trainer.current_epoch] = float(trainer.callback_metrics["val_acc"])

        def mean(self, epoch: int) -> float:
            steps = self.steps.get(epoch, [])
            return sum(loss * n for loss, n in steps) / max(1, sum(n for _, n in steps))

    return StepLosses()


def build(args, config: dict, finetuning: dict, work: Path, extra: list) -> tuple:
    import lightning as L

    from crack_lightning import CrackClassifier, CrackDataModule
    from crack_lightning.training.callbacks import TwoPhaseFinetuning
    from crack_lightning.training.frozen_blocks import FrozenBlocksRuntime

    data = CrackDataModule(
        root=args.root,
        **{
            **{k: v for k, v in config["data"].items() if k != "root"},
            "max_per_root": args.max_per_root,
            "num_workers": args.workers,
        },
    )
    model = CrackClassifier(**{**config["model"], "weights": "bundled"})
    callbacks = [TwoPhaseFinetuning(**{**config["finetuning"], **finetuning}), *extra]
    if args.frozen_blocks:
        callbacks.append(FrozenBlocksRuntime())
    trainer = L.Trainer(
        max_epochs=config["finetuning"]["unfreeze_at_epoch"] + args.after,
        precision=args.precision,
        deterministic=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(work),
        callbacks=callbacks,
    )
    return data, model, trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--config", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--max_per_root", type=int, default=1000)
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument(
        "--after", type=int, default=2, help="Epochs from the unfreeze on (1: the unfreeze epoch only)."
    )
    parser.add_argument(
        "--frozen_blocks", action="store_true", help="Frozen blocks in ONNX Runtime / OpenVINO (the CPU product path)."
    )
    parser.add_argument("--variant", action="append", default=[], help="NAME=JSON of TwoPhaseFinetuning options.")
    parser.add_argument("--first_steps", type=int, default=6)
    args = parser.parse_args()
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    config = merged("default.yaml", *(("gpu.yaml",) if args.config == "gpu" else ()))
    unfreeze = config["finetuning"]["unfreeze_at_epoch"]
    variants = [v.split("=", 1) for v in args.variant] or [["now", "{}"]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        L.seed_everything(42, verbose=False)
        frozen = step_losses()
        keep = ModelCheckpoint(dirpath=str(work), filename="frozen", save_top_k=-1, every_n_epochs=1, monitor=None)
        data, model, trainer = build(args, {**config, "finetuning": {**config["finetuning"]}}, {}, work, [frozen, keep])
        trainer.fit_loop.max_epochs = unfreeze  # the frozen phase only
        trainer.fit(model, data)
        checkpoint = work / "frozen.ckpt"
        before = frozen.mean(unfreeze - 1)
        print(
            f"frozen phase: train loss by epoch {[round(frozen.mean(e), 4) for e in sorted(frozen.steps)]}, "
            f"val_acc {frozen.val_acc}"
        )
        results = {}
        for name, options in variants:
            L.seed_everything(42, verbose=False)
            steps = step_losses()
            data, model, trainer = build(args, config, json.loads(options), work / name, [steps])
            trainer.fit(model, data, ckpt_path=str(checkpoint))
            at = steps.mean(unfreeze)
            first = [round(loss, 3) for loss, _ in steps.steps.get(unfreeze, [])[: args.first_steps]]
            results[name] = {
                "before": before,
                "unfreeze": at,
                "ratio": at / before,
                "first_steps": first,
                "after": [steps.mean(e) for e in sorted(steps.steps) if e > unfreeze],
                "val_acc": steps.val_acc,
            }
            print(
                f"{name}: epoch {unfreeze - 1} {before:.4f} -> unfreeze epoch {at:.4f} ({at / before:.2f}x); "
                f"first steps {first}; later epochs {[round(v, 4) for v in results[name]['after']]}; "
                f"val_acc {steps.val_acc}",
                flush=True,
            )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
