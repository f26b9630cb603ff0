from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, TensorDataset

from crack_lightning.data.classification import CrackDataModule
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.training.callbacks import PhaseAwareEarlyStopping, TwoPhaseFinetuning


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
        max_epochs=max_epochs,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[finetuning, probe],
        default_root_dir=tmp_path,
    )
    trainer = L.Trainer(**{**options, **trainer_kwargs})
    trainer.fit(model, data)
    return model, probe, trainer


def test_backbone_frozen_then_unfrozen_from_block_12(image_root, tmp_path):
    # warmup_steps=0: the group's own rate at once (the warm-up is tested in test_unfreeze_jump.py)
    model, probe, _ = fit(
        image_root, tmp_path, TwoPhaseFinetuning(unfreeze_at_epoch=1, unfreeze_from=12, warmup_steps=0)
    )
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
    fit(image_root, tmp_path, TwoPhaseFinetuning(unfreeze_at_epoch=1, warmup_steps=0), enable_checkpointing=True)
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))

    model = CrackClassifier(weights="none")
    data = CrackDataModule(root=str(image_root), batch_size=8, num_workers=0, image_size=64)
    probe = Probe()
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=1, warmup_steps=0), probe],
        default_root_dir=tmp_path / "resumed",
    )
    trainer.fit(model, data, ckpt_path=ckpt)
    resumed = probe.epochs[2]
    assert resumed["trainable_blocks"] == list(range(12, 19))
    assert [(name, lr) for name, lr, _ in resumed["groups"]] == [("head", 1e-3), ("backbone", 1e-4)]
    assert resumed["groups"][1][2] == {id(p) for p in model.backbone[12:].parameters()}


class ScriptedLosses(L.LightningModule):
    """A model whose ``val_loss`` at each epoch is given: the schedule's decisions on known sequences, in a real Trainer.

    Its ``backbone`` has the 19 blocks of MobileNetV2's features (one-weight layers), so the callbacks treat it as
    they treat the real model.
    """

    def __init__(self, losses):
        super().__init__()
        self.losses = list(losses)
        self.backbone = nn.Sequential(*(nn.Linear(1, 1) for _ in range(19)))
        self.head = nn.Linear(1, 1)
        self.validated: list[int] = []

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.head(self.backbone(x)).square().mean()

    def validation_step(self, batch, batch_idx):
        if not self.trainer.sanity_checking:
            self.validated.append(self.current_epoch)
        self.log("val_loss", torch.tensor(self.losses[self.current_epoch]))

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=1e-3)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=2)

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=2)


def scripted_run(losses, *callbacks, tmp_path, max_epochs=None, ckpt_path=None, model=None):
    """Fit on ``losses``; returns the model (``validated``: the epochs that ran) and the trainer."""
    model = model or ScriptedLosses(losses)
    trainer = L.Trainer(
        max_epochs=max_epochs or len(losses),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on workers and log intervals
        trainer.fit(model, ckpt_path=ckpt_path)
    return model, trainer


def test_plateau_in_frozen_phase_starts_fine_tuning_instead_of_stopping(tmp_path):
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=100)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=2)
    losses = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.1, 1.2]
    model, _ = scripted_run(losses, finetuning, stopping, tmp_path=tmp_path)
    # Patience runs out at epoch 3 with a frozen backbone: no stop, the fine-tune phase starts at epoch 4, and
    # early stopping counts from there: 2 epochs without beating epoch 4's val_loss end the run at epoch 6.
    assert finetuning.unfrozen_epoch == 4
    assert model.validated == list(range(7)) and stopping.stopped_epoch == 6
    assert stopping.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED


def test_scheduled_unfreeze_gives_the_fine_tune_phase_its_patience(tmp_path):
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=2)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=2)
    model, _ = scripted_run([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7], finetuning, stopping, tmp_path=tmp_path)
    # Epoch 1 waits 1 of 2 while frozen; the count does not carry over: the fine-tune epochs 2, 3 and 4 all run.
    assert finetuning.unfrozen_epoch == 2
    assert model.validated == [0, 1, 2, 3, 4] and stopping.stopped_epoch == 4


def test_the_fine_tune_phase_must_improve_on_its_best_to_go_on(tmp_path):
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=1)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=2)
    model, _ = scripted_run([1.0, 0.8, 0.7, 0.75, 0.6, 0.65, 0.66, 0.5, 0.4], finetuning, stopping, tmp_path=tmp_path)
    assert finetuning.unfrozen_epoch == 1
    assert model.validated == list(range(7)) and stopping.stopped_epoch == 6  # best 0.6 at epoch 4


def test_finetuning_patience_of_its_own_wins_over_early_stoppings(tmp_path):
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=5, patience=1)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=3)
    model, _ = scripted_run([1.0, 1.0, 0.9, 0.8, 0.7, 0.6], finetuning, stopping, tmp_path=tmp_path)
    assert finetuning.unfrozen_epoch == 2  # equal is no improvement: epoch 1 ends the frozen phase
    assert model.validated == list(range(6)) and stopping.stopped_epoch == 0


def test_without_early_stopping_the_frozen_phase_lasts_until_its_epoch(tmp_path):
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=3)
    model, _ = scripted_run([1.0, 2.0, 3.0, 4.0, 5.0], finetuning, tmp_path=tmp_path)
    assert finetuning.unfrozen_epoch == 3 and model.validated == list(range(5))


def test_plain_early_stopping_without_finetuning_still_stops(tmp_path):
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=1)
    model, _ = scripted_run([1.0, 1.5, 0.5, 0.4], stopping, tmp_path=tmp_path)
    assert model.validated == [0, 1] and stopping.stopped_epoch == 1


def test_a_loss_that_is_not_finite_stops_the_frozen_phase_too(tmp_path):
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=3)
    stopping = PhaseAwareEarlyStopping(monitor="val_loss", patience=3)
    model, _ = scripted_run([1.0, float("nan"), 0.5, 0.4], finetuning, stopping, tmp_path=tmp_path)
    assert model.validated == [0, 1] and not finetuning.unfrozen
    assert stopping.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC


def test_a_resumed_run_keeps_counting_the_frozen_plateau(tmp_path):
    losses = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    checkpoint = tmp_path / "epoch1.ckpt"
    _, trainer = scripted_run(
        losses, TwoPhaseFinetuning(unfreeze_at_epoch=10, patience=2), tmp_path=tmp_path, max_epochs=2
    )
    trainer.save_checkpoint(checkpoint)  # after epoch 1: 1 epoch of 2 without improvement
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=10, patience=2)
    scripted_run(losses, finetuning, tmp_path=tmp_path, max_epochs=4, ckpt_path=checkpoint)
    assert finetuning.unfrozen_epoch == 3  # epoch 2 is the second without improvement, not a new best


@pytest.mark.parametrize(
    "max_epochs, patience, expected",
    [
        (3, 3, None),
        (
            1,
            3,
            "finetuning's unfreeze_at_epoch 2 is not below the trainer's max_epochs 1: the fine-tune phase will not run, "
            "only the head trains",
        ),
        (2, None, "the fine-tune phase will not run, only the head trains"),
        (2, 0, "the fine-tune phase will not run unless val_loss stops improving for 0 epochs first"),
        (-1, 3, None),  # no epoch limit
    ],
)
def test_a_schedule_too_short_to_fine_tune_is_a_warning(max_epochs, patience, expected):
    warning = TwoPhaseFinetuning(unfreeze_at_epoch=2).check_schedule(max_epochs, patience)
    if expected is None:
        assert warning is None
    else:
        assert expected in warning and "\n" not in warning


def test_a_run_too_short_to_fine_tune_trains_the_head_only_with_a_warning(tmp_path):
    model = ScriptedLosses([1.0])
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    finetuning = TwoPhaseFinetuning(unfreeze_at_epoch=2)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[finetuning],
        default_root_dir=tmp_path,
    )
    with pytest.warns(UserWarning, match="the fine-tune phase will not run, only the head trains"):
        trainer.fit(model)
    assert not finetuning.unfrozen and trainer.current_epoch == 1
    assert all(torch.equal(v, backbone[k]) for k, v in model.backbone.state_dict().items())
    assert not all(torch.equal(v, head[k]) for k, v in model.head.state_dict().items())


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
        max_epochs=10,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[finetuning, stopping],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, data)
    # epoch 0 sets the best; epoch 1 exhausts patience while frozen -> unfreeze at epoch 2.
    # Early stopping counts from the fine-tune phase: epoch 2 sets its best, epoch 3 exhausts its patience.
    assert finetuning.unfrozen_epoch == 2
    assert stopping.stopped_epoch == 3 and trainer.current_epoch == 4
