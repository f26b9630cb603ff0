"""Callbacks: two-phase fine-tuning, early stopping that respects it, and a TensorBoard grid of training images."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning, Callback, EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer
from torchvision.utils import make_grid

from crack_lightning.errors import CrackLightningError, require
from crack_lightning.model import BACKBONE_BLOCKS


class TwoPhaseFinetuning(BaseFinetuning):
    """Train the head on a frozen backbone, then unfreeze ``backbone[unfreeze_from:]`` at a lower learning rate.

    Frozen BatchNorm layers run in eval mode: they normalise with their pretrained running statistics and
    never update them, as Keras' ``training=False``.

    Args:
        unfreeze_at_epoch: Epoch (0-based) at which the fine-tune phase starts at the latest. It starts
            earlier when ``early_stopping`` sees ``val_loss`` plateau in the frozen phase.
        unfreeze_from: First ``features`` block to unfreeze (12 ≈ the original's "all but the first 100
            Keras layers"); 0 unfreezes the whole backbone.
        backbone_lr: Learning rate of the unfrozen backbone blocks.
        train_bn: Let the unfrozen BatchNorm layers use batch statistics and update their running ones
            (Keras would not). Their scale and shift train in either case.
    """

    def __init__(
        self, unfreeze_at_epoch: int = 2, unfreeze_from: int = 12, backbone_lr: float = 1e-4, train_bn: bool = False
    ) -> None:
        super().__init__()
        blocks = BACKBONE_BLOCKS
        require(unfreeze_at_epoch >= 0, f"--finetuning.unfreeze_at_epoch: {unfreeze_at_epoch}; pass an epoch of 0 or more")
        require(
            0 <= unfreeze_from < blocks,
            f"--finetuning.unfreeze_from: {unfreeze_from} is not a block of the backbone; pass 0 to {blocks - 1} "
            "(12 = the original's choice, 0 = the whole backbone)",
        )
        require(backbone_lr > 0, f"--finetuning.backbone_lr: {backbone_lr}; pass a learning rate above 0 (default 1e-4)")
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.unfreeze_from = unfreeze_from
        self.backbone_lr = backbone_lr
        self.train_bn = train_bn
        self.unfrozen_epoch: int | None = None
        self.unfreeze_requested = False

    @property
    def unfrozen(self) -> bool:
        return self.unfrozen_epoch is not None

    def request_unfreeze(self) -> None:
        """Start the fine-tune phase at the next epoch instead of waiting for ``unfreeze_at_epoch``."""
        self.unfreeze_requested = True

    def _unfrozen_part(self, pl_module: L.LightningModule) -> torch.nn.Module:
        return pl_module.backbone[self.unfreeze_from :]

    def check_schedule(self, max_epochs: int | None) -> None:
        """Refuse a schedule whose fine-tune phase could only start after the last epoch."""
        if max_epochs is not None and max_epochs >= 0 and self.unfreeze_at_epoch >= max_epochs:
            raise CrackLightningError(
                f"--finetuning.unfreeze_at_epoch {self.unfreeze_at_epoch} is not below --trainer.max_epochs {max_epochs}: "
                "the backbone would never be fine-tuned; pass a smaller unfreeze_at_epoch or a larger max_epochs"
            )

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit":
            self.check_schedule(trainer.max_epochs)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.freeze(pl_module.backbone, train_bn=False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if self.unfrozen or not (epoch >= self.unfreeze_at_epoch or self.unfreeze_requested):
            return
        self.unfreeze_and_add_param_group(
            self._unfrozen_part(pl_module), optimizer, lr=self.backbone_lr, train_bn=True
        )
        optimizer.param_groups[-1]["name"] = "backbone"  # LearningRateMonitor logs it as lr-<Optimizer>/backbone
        self.unfrozen_epoch = epoch
        why = "val_loss plateaued" if epoch < self.unfreeze_at_epoch else f"unfreeze_at_epoch={self.unfreeze_at_epoch}"
        rank_zero_info(f"Epoch {epoch}: unfreezing backbone[{self.unfreeze_from}:] at lr {self.backbone_lr:g} ({why})")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)  # restores the backbone param group when resuming
        if self.unfrozen:
            self.make_trainable(self._unfrozen_part(pl_module))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        for module in pl_module.backbone.modules():
            if isinstance(module, _BatchNorm):
                module.train(self.train_bn and module.weight.requires_grad)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "unfrozen_epoch": self.unfrozen_epoch, "requested": self.unfreeze_requested}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.unfrozen_epoch = state_dict.get("unfrozen_epoch")
        self.unfreeze_requested = state_dict.get("requested", False)


class PhaseAwareEarlyStopping(EarlyStopping):
    """``EarlyStopping`` that never ends the run before the fine-tune phase has had its chance.

    While the backbone is frozen, running out of patience starts the fine-tune phase instead of stopping.
    When the fine-tune phase starts, by plateau or by schedule, the patience count starts again, so the
    fine-tuned model gets ``patience`` epochs to beat the best ``val_loss`` of the frozen phase.
    """

    _finetuning: TwoPhaseFinetuning | None = None
    _phase_seen: int | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._finetuning = next((c for c in trainer.callbacks if isinstance(c, TwoPhaseFinetuning)), None)

    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        finetuning = self._finetuning
        if finetuning is not None and finetuning.unfrozen_epoch != self._phase_seen:
            self._phase_seen = finetuning.unfrozen_epoch
            self.wait_count = 0
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if (
            should_stop
            and self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED
            and finetuning is not None
            and not finetuning.unfrozen
        ):
            finetuning.request_unfreeze()
            self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
            return False, (
                f"{self.monitor} did not improve in {self.wait_count} epochs with a frozen backbone: "
                "starting the fine-tune phase instead of stopping."
            )
        return should_stop, reason

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "phase_seen": self._phase_seen}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._phase_seen = state_dict.get("phase_seen")


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


class FitSummary(Callback):
    """At the end of ``fit``, one block: the best checkpoint, its epoch and validation metrics, and what to run next."""

    METRICS = ("val_loss", "val_acc", "val_precision", "val_recall", "val_f1", "val_auroc")

    def __init__(self) -> None:
        self.history: dict[int, dict[str, float]] = {}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            self.history[trainer.current_epoch] = {k: float(metrics[k]) for k in self.METRICS if k in metrics}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every process must ask
        if not trainer.is_global_zero:
            return
        best = next((c for c in trainer.checkpoint_callbacks if c.monitor and c.best_model_path), None)
        finetuning = next((c for c in trainer.callbacks if isinstance(c, TwoPhaseFinetuning)), None)
        lines = [f"Training finished after {trainer.current_epoch} epoch(s)."]
        if finetuning is not None:
            lines.append(
                f"  fine-tune phase: from epoch {finetuning.unfrozen_epoch}" if finetuning.unfrozen
                else "  fine-tune phase: not reached (the backbone stayed frozen)"
            )
        if best is not None:
            epoch = next((e for e, m in self.history.items() if m.get(best.monitor) == float(best.best_model_score)), None)
            lines.append(f"  best checkpoint: {best.best_model_path}")
            if epoch is not None:
                scores = ", ".join(f"{k} {v:.4f}" for k, v in self.history[epoch].items())
                lines.append(f"  best epoch: {epoch} ({scores})")
        if log_dir:
            lines.append(f"  run folder: {log_dir}")
        lines.append("Next:")
        save_dir = getattr(trainer.logger, "save_dir", None) if trainer.logger else None
        if save_dir:
            lines.append(f"  tensorboard --logdir {save_dir}")
        if best is not None:
            roots = [str(r) for r in getattr(trainer.datamodule, "roots", [])]
            data = f" --data.root {roots[0]}" if len(roots) == 1 else f" --data.root '[{','.join(roots)}]'" if roots else ""
            lines.append(f"  python -m crack_lightning test --ckpt_path {best.best_model_path}{data}")
            lines.append(f"  python -m crack_lightning predict --ckpt_path {best.best_model_path} --data.predict_dir IMAGES")
            lines.append(f"  python -m crack_lightning scan --ckpt_path {best.best_model_path} --input PHOTOS --output SCAN_DIR")
        print("\n".join(lines), flush=True)
