"""Callbacks: two-phase fine-tuning, early stopping that respects it, and a TensorBoard grid of training images (the
summary at the end of fit: fit_summary)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning, Callback, EarlyStopping
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer
from torchvision.utils import make_grid

from crack_lightning.errors import require_option
from crack_lightning.models.classifier import BACKBONE_BLOCKS


class TwoPhaseFinetuning(BaseFinetuning):
    """Train the head on a frozen backbone, then unfreeze ``backbone[unfreeze_from:]`` at a lower learning rate.

    Frozen BatchNorm layers run in eval mode: they normalise with their pretrained running statistics and
    never update them, as Keras' ``training=False``.

    Args:
        unfreeze_at_epoch: Epoch (0-based) at which the fine-tune phase starts at the latest. It starts
            earlier when ``val_loss`` plateaus in the frozen phase (see ``patience``). A run whose
            ``trainer.max_epochs`` ends before it (a quick smoke run) trains the head only, with a warning.
        unfreeze_from: First ``features`` block to unfreeze (12 ≈ the original's "all but the first 100
            Keras layers"); 0 unfreezes the whole backbone.
        backbone_lr: Learning rate of the unfrozen backbone blocks.
        train_bn: Let the unfrozen BatchNorm layers use batch statistics and update their running ones
            (Keras would not). Their scale and shift train in either case.
        patience: Frozen-phase epochs without a lower ``val_loss`` after which the fine-tune phase starts at the
            next epoch instead of waiting for ``unfreeze_at_epoch``; ``null``: ``early_stopping.patience`` (no early
            start when there is no early stopping).
        warmup_steps: Optimiser steps over which the backbone's learning rate rises linearly to ``backbone_lr`` after
            the unfreeze; 0: the full rate from the first step. The backbone's parameter group starts with an empty
            Adam state, so its first step moves every weight by about the full rate whatever its gradient's size, and
            BatchNorm in eval mode does not absorb the shift: at 2e-4 (configs/gpu.yaml) one step took the training
            loss from 0.03 to 8.2 (issue 31; ``bench/unfreeze_jump.py``).
    """

    monitor = "val_loss"

    def __init__(
        self,
        unfreeze_at_epoch: int = 2,
        unfreeze_from: int = 12,
        backbone_lr: float = 1e-4,
        train_bn: bool = False,
        patience: int | None = None,
        warmup_steps: int = 20,
    ) -> None:
        super().__init__()
        blocks = BACKBONE_BLOCKS
        require_option(unfreeze_at_epoch >= 0, "unfreeze_at_epoch", f"{unfreeze_at_epoch}; pass an epoch of 0 or more")
        require_option(
            0 <= unfreeze_from < blocks,
            "unfreeze_from",
            f"{unfreeze_from} is not a block of the backbone; pass 0 to {blocks - 1} "
            "(12 = the original's choice, 0 = the whole backbone)",
        )
        require_option(backbone_lr > 0, "backbone_lr", f"{backbone_lr}; pass a learning rate above 0")
        require_option(patience is None or patience >= 0, "patience", f"{patience}; pass 0 or more, or null")
        require_option(warmup_steps >= 0, "warmup_steps", f"{warmup_steps}; pass 0 (none) or more steps")
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.unfreeze_from = unfreeze_from
        self.backbone_lr = backbone_lr
        self.train_bn = train_bn
        self.patience = patience
        self.warmup_steps = warmup_steps
        self.unfrozen_epoch: int | None = None
        self.unfrozen_step: int | None = None  # the optimiser step at the unfreeze: the warm-up counts from it
        self.unfreeze_requested = False
        # The frozen phase's plateau watch: the lowest val_loss so far and the epochs since it.
        self.best_frozen_loss: float | None = None
        self.epochs_without_improvement = 0

    @property
    def unfrozen(self) -> bool:
        return self.unfrozen_epoch is not None

    def request_unfreeze(self) -> None:
        """Start the fine-tune phase at the next epoch instead of waiting for ``unfreeze_at_epoch``."""
        self.unfreeze_requested = True

    def unfrozen_part(self, pl_module: L.LightningModule) -> torch.nn.Module:
        return pl_module.backbone[self.unfreeze_from :]

    def plateau_patience(self, trainer: L.Trainer) -> int | None:
        """``patience``, else the early-stopping callback's; None: the frozen phase lasts until ``unfreeze_at_epoch``."""
        if self.patience is not None:
            return self.patience
        return next((c.patience for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)

    def check_schedule(self, max_epochs: int | None, patience: int | None = None) -> str | None:
        """A one-line warning when the fine-tune phase cannot start on schedule before the run ends (its
        ``unfreeze_at_epoch`` is not below ``max_epochs``), else None."""
        if max_epochs is None or max_epochs < 0 or self.unfreeze_at_epoch < max_epochs:
            return None
        # A plateau of `patience` epochs after the first can still start it, at epoch patience + 1.
        unless = (
            f" unless val_loss stops improving for {patience} epochs first"
            if patience is not None and patience + 1 < max_epochs
            else ""
        )
        return (
            f"finetuning's unfreeze_at_epoch {self.unfreeze_at_epoch} is not below the trainer's max_epochs {max_epochs}: "
            f"the fine-tune phase will not run{unless}, only the head trains; for a full run pass a larger "
            "max_epochs or a smaller unfreeze_at_epoch"
        )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit" and not self.unfrozen:
            warning = self.check_schedule(trainer.max_epochs, self.plateau_patience(trainer))
            if warning:
                rank_zero_warn(warning)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.freeze(pl_module.backbone, train_bn=False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if self.unfrozen or not (epoch >= self.unfreeze_at_epoch or self.unfreeze_requested):
            return
        self.unfreeze_and_add_param_group(self.unfrozen_part(pl_module), optimizer, lr=self.backbone_lr, train_bn=True)
        optimizer.param_groups[-1]["name"] = "backbone"  # LearningRateMonitor logs it as lr-<Optimizer>/backbone
        self.unfrozen_epoch = epoch
        self.unfrozen_step = pl_module.trainer.global_step
        why = "val_loss plateaued" if epoch < self.unfreeze_at_epoch else f"unfreeze_at_epoch={self.unfreeze_at_epoch}"
        rank_zero_info(f"Epoch {epoch}: unfreezing backbone[{self.unfreeze_from}:] at lr {self.backbone_lr:g} ({why})")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)  # restores the backbone param group when resuming
        if self.unfrozen:
            self.make_trainable(self.unfrozen_part(pl_module))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        for module in pl_module.backbone.modules():
            if isinstance(module, _BatchNorm):
                module.train(self.train_bn and module.weight.requires_grad)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """The backbone's warm-up: its rate is ``backbone_lr * k / warmup_steps`` at the k-th step after the unfreeze."""
        if self.unfrozen_step is None or self.warmup_steps <= 0:
            return
        done = trainer.global_step - self.unfrozen_step
        if done > self.warmup_steps:
            return
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                if group.get("name") == "backbone":
                    group["lr"] = self.backbone_lr * min(1.0, (done + 1) / self.warmup_steps)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The frozen phase's plateau watch: ``patience`` epochs without a lower ``val_loss`` start the fine-tune phase
        at the next epoch. ``val_loss`` is the mean over every process, so each one decides the same."""
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING or self.unfrozen or self.unfreeze_requested:
            return
        patience, current = self.plateau_patience(trainer), trainer.callback_metrics.get(self.monitor)
        if patience is None or current is None:
            return
        loss = float(current)
        if self.best_frozen_loss is None or loss < self.best_frozen_loss:
            self.best_frozen_loss, self.epochs_without_improvement = loss, 0
            return
        self.epochs_without_improvement += 1
        if self.epochs_without_improvement >= patience:
            self.request_unfreeze()
            rank_zero_info(
                f"Epoch {trainer.current_epoch}: {self.monitor} did not improve in {self.epochs_without_improvement} "
                "epochs with a frozen backbone: the fine-tune phase starts at the next epoch"
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "unfrozen_epoch": self.unfrozen_epoch,
            "unfrozen_step": self.unfrozen_step,
            "requested": self.unfreeze_requested,
            "best_frozen_loss": self.best_frozen_loss,
            "epochs_without_improvement": self.epochs_without_improvement,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.unfrozen_epoch = state_dict.get("unfrozen_epoch")
        self.unfrozen_step = state_dict.get("unfrozen_step")
        self.unfreeze_requested = state_dict.get("requested", False)
        self.best_frozen_loss = state_dict.get("best_frozen_loss")
        self.epochs_without_improvement = state_dict.get("epochs_without_improvement", 0)


class PhaseAwareEarlyStopping(EarlyStopping):
    """Lightning's ``EarlyStopping`` that never ends the run before the fine-tune phase has had its chance.

    While the backbone is frozen it does not count at all: running out of patience there starts the fine-tune
    phase instead (:class:`TwoPhaseFinetuning`'s ``patience``). It starts counting at the first fine-tune epoch,
    by plateau or by schedule, so the fine-tuned model gets at least ``patience`` epochs to beat the best
    ``val_loss`` of the frozen phase; after that it stops as Lightning's does. A ``val_loss`` that is not finite
    ends the run in either phase. Without a :class:`TwoPhaseFinetuning` callback it is Lightning's ``EarlyStopping``.
    """

    def counting(self, trainer: L.Trainer) -> bool:
        """Whether this epoch's check runs: the fine-tune phase has started, or the monitored value is not finite."""
        finetuning = next((c for c in trainer.callbacks if isinstance(c, TwoPhaseFinetuning)), None)
        if finetuning is None or finetuning.unfrozen:
            return True
        current = trainer.callback_metrics.get(self.monitor)
        return self.check_finite and current is not None and not bool(torch.isfinite(current).all())

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.counting(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.counting(trainer):
            super().on_validation_end(trainer, pl_module)


class AugmentedSamplesGrid(Callback):
    """Log a grid of augmented training images per class to TensorBoard, so users see what the network sees.

    Args:
        images_per_class: Images in each class's grid; 0 turns the grids off.
    """

    def __init__(self, images_per_class: int = 16) -> None:
        self.images_per_class = images_per_class

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        datamodule = trainer.datamodule
        dataset = getattr(datamodule, "datasets", {}).get("train")
        if not trainer.is_global_zero or not loggers or dataset is None or self.images_per_class <= 0:
            return
        _, mean, std = pl_module.preprocessing
        mean, std = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
        # A fixed generator picks the same images every run without touching the global RNG's sequence of indices.
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()
        for label, name in enumerate(pl_module.class_names):
            picked = [i for i in order if dataset.samples[i][1] == label][: self.images_per_class]
            if not picked:
                continue
            images = torch.stack([dataset[i][0] for i in picked])
            if images.dtype == torch.uint8:  # the loader's half of the augmentation: the batch's half follows
                images = datamodule.augment(images)
            images = images * std + mean
            grid = make_grid(images.clamp(0, 1), nrow=8, padding=2, pad_value=1.0)
            for logger in loggers:
                logger.experiment.add_image(f"augmented_train_images/{name}", grid, trainer.global_step)
