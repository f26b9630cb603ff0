from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.nn.modules.batchnorm import _BatchNorm

from crack_lightning.callbacks import PhaseAwareEarlyStopping, TwoPhaseFinetuning
from crack_lightning.data import CrackDataModule
from crack_lightning.model import CrackClassifier


class Probe(Callback):
    """Records, at the first batch of each epoch, what trains and how BatchNorm runs."""

    def __init__(self):
        self.epochs: dict[int, dict] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx:
            return
        backbone = pl_module.backbone
        self.epochs[trainer.current_epoch] = {
            "trainable_blocks": [i for i, b in enumerate(backbone) if any(p.requires_grad for p in b.parameters())],
            "frozen_blocks_fully_frozen": [
                i for i, b in enumerate(backbone) if not any(p.requires_grad for p in b.parameters())
            ],
            "head_trains": all(p.requires_grad for p in pl_module.head.parameters()),
            "bn_training": {
                i: [m.training for m in b.modules() if isinstance(m, _BatchNorm)] for i, b in enumerate(backbone)
            },
            "groups": [
                (g.get("name"), g["lr"], {id(p) for p in g["params"]}) for g in trainer.optimizers[0].param_groups
            ],
            "running_mean": backbone[0][1].running_mean.clone(),
            "running_mean_late": backbone[15].conv[1][1].running_mean.clone(),
        }


def fit(root, tmp_path, finetuning, max_epochs=2, **trainer_kwargs):
    L.seed_everything(0)
    model = CrackClassifier(weights="none")
    data = CrackDataModule(root=str(root), batch_size=8, num_workers=0, image_size=64)
    probe = Probe()
    options = dict(
        max_epochs=max_epochs, limit_train_batches=2, limit_val_batches=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[finetuning, probe], default_root_dir=tmp_path,
    )
    trainer = L.Trainer(**{**options, **trainer_kwargs})
    trainer.fit(model, data)
    return model, probe, trainer


def test_backbone_frozen_then_unfrozen_from_block_12(image_root, tmp_path):
    model, probe, _ = fit(image_root, tmp_path, TwoPhaseFinetuning(unfreeze_at_epoch=1, unfreeze_from=12))
    frozen, tuned = probe.epochs[0], probe.epochs[1]

    assert frozen["trainable_blocks"] == [] and frozen["head_trains"]
    assert [(name, lr) for name, lr, _ in frozen["groups"]] == [("head", 1e-3)]
    assert frozen["groups"][0][2] == {id(p) for p in model.head.parameters()}

    assert tuned["trainable_blocks"] == list(range(12, 19))
    assert tuned["frozen_blocks_fully_frozen"] == list(range(12))
    assert [(name, lr) for name, lr, _ in tuned["groups"]] == [("head", 1e-3), ("backbone", 1e-4)]
    assert tuned["groups"][1][2] == {id(p) for p in model.backbone[12:].parameters()}

    # Keras' training=False: every backbone BatchNorm normalises with running statistics and never updates them.
    for state in (frozen, tuned):
        assert not any(any(modes) for modes in state["bn_training"].values())
    assert torch.equal(frozen["running_mean"], tuned["running_mean"])
    assert torch.equal(frozen["running_mean_late"], model.backbone[15].conv[1][1].running_mean)


def test_train_bn_lets_only_unfrozen_batchnorm_train(image_root, tmp_path):
    model, probe, _ = fit(image_root, tmp_path, TwoPhaseFinetuning(unfreeze_at_epoch=1, train_bn=True))
    bn = probe.epochs[1]["bn_training"]
    assert all(all(bn[i]) for i in range(12, 19)) and not any(any(bn[i]) for i in range(12))
    assert not torch.equal(probe.epochs[1]["running_mean_late"], model.backbone[15].conv[1][1].running_mean)


def test_resume_after_unfreezing_restores_the_backbone_group(image_root, tmp_path):
    fit(image_root, tmp_path, TwoPhaseFinetuning(unfreeze_at_epoch=1), enable_checkpointing=True)
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))

    model = CrackClassifier(weights="none")
    data = CrackDataModule(root=str(image_root), batch_size=8, num_workers=0, image_size=64)
    probe = Probe()
    trainer = L.Trainer(
        max_epochs=3, limit_train_batches=2, limit_val_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=1), probe],
        default_root_dir=tmp_path / "resumed",
    )
    trainer.fit(model, data, ckpt_path=ckpt)
    resumed = probe.epochs[2]
    assert resumed["trainable_blocks"] == list(range(12, 19))
    assert [(name, lr) for name, lr, _ in resumed["groups"]] == [("head", 1e-3), ("backbone", 1e-4)]
    assert resumed["groups"][1][2] == {id(p) for p in model.backbone[12:].parameters()}


def run_losses(losses, patience=2, unfreeze_at_epoch=100):
    """Feed val_loss values to the early stopping; return (epoch, stop?) and the fine-tuning callback."""
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=unfreeze_at_epoch)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=patience)
    stopping._finetuning = finetuning
    decisions = []
    for epoch, loss in enumerate(losses):
        if finetuning.unfreeze_requested and not finetuning.unfrozen:
            finetuning.unfrozen_epoch = epoch  # what finetune_function does at the start of the next epoch
        stop, _ = stopping._evaluate_stopping_criteria(torch.tensor(loss))
        decisions.append(stop)
        if stop:
            break
    return decisions, finetuning


def test_plateau_in_frozen_phase_starts_fine_tuning_instead_of_stopping():
    decisions, finetuning = run_losses([1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99])
    # Patience runs out at epoch 3 with a frozen backbone: no stop, unfreeze at epoch 4, then 2 more epochs.
    assert decisions == [False, False, False, False, False, True]
    assert finetuning.unfrozen_epoch == 4


def test_scheduled_unfreeze_restarts_patience():
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=2)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=2)
    stopping._finetuning = finetuning
    assert not stopping._evaluate_stopping_criteria(torch.tensor(1.0))[0]
    assert not stopping._evaluate_stopping_criteria(torch.tensor(1.1))[0]  # wait 1 of 2
    finetuning.unfrozen_epoch = 2
    assert not stopping._evaluate_stopping_criteria(torch.tensor(1.2))[0]  # count restarted: wait 1 of 2
    assert stopping._evaluate_stopping_criteria(torch.tensor(1.3))[0]


def test_plain_early_stopping_without_finetuning_still_stops():
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=1)
    assert not stopping._evaluate_stopping_criteria(torch.tensor(1.0))[0]
    assert stopping._evaluate_stopping_criteria(torch.tensor(1.5))[0]


@pytest.mark.parametrize("unfreeze_from", [0, 17])
def test_unfreeze_from_is_configurable(image_root, tmp_path, unfreeze_from):
    _, probe, _ = fit(image_root, tmp_path, TwoPhaseFinetuning(unfreeze_at_epoch=1, unfreeze_from=unfreeze_from))
    assert probe.epochs[1]["trainable_blocks"] == list(range(unfreeze_from, 19))


def test_early_stopping_in_a_real_run_unfreezes_before_stopping(image_root, tmp_path):
    """With nothing learning (lr 1e-12), val_loss never improves: the run fine-tunes before it stops."""
    L.seed_everything(0)
    model = CrackClassifier(weights="none", lr=1e-12)
    data = CrackDataModule(root=str(image_root), batch_size=8, num_workers=0, image_size=64)
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=9, backbone_lr=1e-12)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=1)
    trainer = L.Trainer(
        max_epochs=10, limit_train_batches=1, limit_val_batches=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[finetuning, stopping],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, data)
    # epoch 0 sets the best; epoch 1 exhausts patience while frozen -> unfreeze at epoch 2; epoch 2 exhausts it again.
    assert finetuning.unfrozen_epoch == 2
    assert stopping.stopped_epoch == 2 and trainer.current_epoch == 3
