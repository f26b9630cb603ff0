"""The unfreeze jump (issue 31): with a fresh Adam state, the backbone's first steps after the unfreeze moved every
weight by the full rate and multiplied the training loss. The default schedule's warm-up keeps the unfreeze epoch's
loss within 1.5x of the epoch before; without it, on the same data and seed, the jump is there (on the shipped sample
at 64 px, 8 steps an epoch, configs/gpu.yaml's rates: 2.4x, one step at 5.8, against 0.37x with the warm-up)."""

from __future__ import annotations

import inspect

import lightning as L
import pytest
from lightning.pytorch.callbacks import Callback

from crack_lightning.data.classification import CrackDataModule
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.models.pretrained import BUNDLED_BACKBONE
from crack_lightning.training.callbacks import TwoPhaseFinetuning


class EpochLoss(Callback):
    def __init__(self) -> None:
        self.sums: dict[int, list[float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.sums.setdefault(trainer.current_epoch, [0.0, 0])
        self.sums[trainer.current_epoch][0] += float(outputs["loss"]) * len(batch[1])
        self.sums[trainer.current_epoch][1] += len(batch[1])

    def mean(self, epoch: int) -> float:
        total, n = self.sums[epoch]
        return total / n


def unfreeze_ratio(tmp_path, **finetuning) -> float:
    """Train loss of the unfreeze epoch over the epoch before: the shipped sample at 64 px, 8 steps an epoch, the rates
    of configs/gpu.yaml (head 2e-3, backbone 2e-4), float32."""
    L.seed_everything(0)
    data = CrackDataModule(batch_size=32, num_workers=0, image_size=64)  # the 600-image sample in the package
    model = CrackClassifier(weights=str(BUNDLED_BACKBONE), lr=2e-3)
    losses = EpochLoss()
    trainer = L.Trainer(
        max_epochs=2,
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        limit_train_batches=8,
        default_root_dir=tmp_path,
        callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=1, backbone_lr=2e-4, **finetuning), losses],
    )
    trainer.fit(model, data)
    return losses.mean(1) / losses.mean(0)


def test_default_schedule_warms_the_backbone_up():
    default = inspect.signature(TwoPhaseFinetuning).parameters["warmup_steps"].default
    assert default > 0


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_unfreeze_epoch_loss_stays_within_1_5x_and_jumps_without_the_warm_up(tmp_path):
    assert unfreeze_ratio(tmp_path / "warm") <= 1.5
    assert unfreeze_ratio(tmp_path / "cold", warmup_steps=0) > 1.5


class BackboneRates(Callback):
    """The backbone group's rate at each training step (after the fine-tuning callback has set it)."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        groups = [g for g in trainer.optimizers[0].param_groups if g.get("name") == "backbone"]
        if groups:
            self.rates.append(groups[0]["lr"])


def test_backbone_rate_rises_linearly_over_the_warm_up_and_resumes_in_it(tmp_path):
    def run(max_epochs: int, ckpt_path=None, checkpoints: bool = False) -> list[float]:
        L.seed_everything(0)
        rates = BackboneRates()
        trainer = L.Trainer(
            max_epochs=max_epochs,
            limit_train_batches=3,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=checkpoints,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
            callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=1, backbone_lr=1e-4, warmup_steps=5), rates],
        )
        trainer.fit(
            CrackClassifier(weights="none"),
            CrackDataModule(batch_size=8, num_workers=0, image_size=64),
            ckpt_path=ckpt_path,
        )
        return rates.rates

    assert run(2, checkpoints=True) == pytest.approx([2e-5, 4e-5, 6e-5])  # the unfreeze epoch: 3 of 5 steps
    # resumed after it, the warm-up carries on where it was
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    assert run(3, ckpt_path=ckpt) == pytest.approx([8e-5, 1e-4, 1e-4])
