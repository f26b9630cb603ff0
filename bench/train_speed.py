"""Training speed on this machine: channels-last vs contiguous, and the time of a frozen and a fine-tune epoch.

    python bench/train_speed.py                      # step throughput, channels_last on/off (about 1 minute)
    python bench/train_speed.py --epochs DATA_ROOT   # plus one frozen and one fine-tune epoch on DATA_ROOT

Every figure is measured in this run; ratios compare runs made one after the other on the same machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.nn.modules.batchnorm import _BatchNorm

from crack_lightning.callbacks import TwoPhaseFinetuning
from crack_lightning.data import CrackDataModule, eval_transform, read_rgb, sample_root
from crack_lightning.model import CrackClassifier
from crack_lightning.pretrained import BUNDLED_BACKBONE


def real_batch(size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[: batch // 2]]
    transform = eval_transform(size)
    return torch.stack([transform(read_rgb(p)) for p in paths]), torch.tensor([0, 1]).repeat_interleave(batch // 2)


def step_throughput(channels_last: bool, unfreeze_from: int | None, images, labels, steps: int) -> float:
    """Images per second of optimiser steps with the backbone frozen (None) or unfrozen from a block."""
    model = CrackClassifier(class_names=["Negative", "Positive"], weights=str(BUNDLED_BACKBONE), channels_last=channels_last)
    model.load_pretrained()
    for p in model.backbone.parameters():
        p.requires_grad = False
    if unfreeze_from is not None:
        for p in model.backbone[unfreeze_from:].parameters():
            p.requires_grad = True
    model.train()
    for m in model.backbone.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * len(images) / (time.perf_counter() - start)


class EpochTimer(Callback):
    def __init__(self) -> None:
        self.train: dict[int, float] = {}
        self.val: dict[int, float] = {}

    def on_train_epoch_start(self, trainer, pl_module):
        self._train = time.perf_counter()

    def on_validation_epoch_start(self, trainer, pl_module):
        self._val = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.val[trainer.current_epoch] = time.perf_counter() - self._val

    def on_train_epoch_end(self, trainer, pl_module):
        self.train[trainer.current_epoch] = time.perf_counter() - self._train - self.val.get(trainer.current_epoch, 0)


def epoch_times(root: Path, weights: str) -> None:
    L.seed_everything(42)
    timer = EpochTimer()
    data = CrackDataModule(root=str(root))
    trainer = L.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=1), timer], deterministic=True, num_sanity_val_steps=0,
    )
    trainer.fit(CrackClassifier(weights=weights), data)
    n_train, n_val = len(data.datasets["train"]), len(data.datasets["val"])
    for epoch, phase in ((0, "frozen"), (1, "fine-tune")):
        train, val = timer.train[epoch], timer.val[epoch]
        print(f"{phase:>9} epoch: {train + val:6.1f} s  (train {train:6.1f} s = {n_train / train:5.1f} img/s on {n_train} "
              f"images; validation {val:5.1f} s = {n_val / val:5.1f} img/s on {n_val} images)")
    print(f"fine-tune / frozen epoch time: {(timer.train[1] + timer.val[1]) / (timer.train[0] + timer.val[0]):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", metavar="DATA_ROOT", help="also time one frozen and one fine-tune epoch on this data")
    parser.add_argument("--weights", default=str(BUNDLED_BACKBONE), help="backbone weights for --epochs")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.size}x{args.size}")
    images, labels = real_batch(args.size, args.batch)
    for phase, unfreeze_from in (("frozen", None), ("fine-tune features[12:]", 12)):
        rates = {cl: step_throughput(cl, unfreeze_from, images, labels, args.steps) for cl in (False, True)}
        print(f"{phase:>24} step: contiguous {rates[False]:6.1f} img/s, channels_last {rates[True]:6.1f} img/s, "
              f"ratio {rates[True] / rates[False]:.2f}")
    if args.epochs:
        epoch_times(Path(args.epochs), args.weights)


if __name__ == "__main__":
    main()
