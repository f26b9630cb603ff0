"""Command line: ``python -m crack_lightning {fit,validate,test,predict} --config configs/default.yaml``."""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from crack_lightning.callbacks import AugmentedSamplesGrid, PhaseAwareEarlyStopping, TwoPhaseFinetuning
from crack_lightning.data import CrackDataModule
from crack_lightning.errors import CrackLightningError
from crack_lightning.model import CrackClassifier

SEED = 42


class CrackLightningCLI(LightningCLI):
    """LightningCLI with the fine-tuning, early-stopping, checkpoint and logging callbacks always present."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(TwoPhaseFinetuning, "finetuning")
        parser.add_lightning_class_args(PhaseAwareEarlyStopping, "early_stopping")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.add_lightning_class_args(AugmentedSamplesGrid, "sample_grid")
        parser.set_defaults(
            {
                "early_stopping.monitor": "val_loss",
                "early_stopping.patience": 3,
                "checkpoint.monitor": "val_loss",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:02d}-val_loss{val_loss:.4f}",
                "checkpoint.auto_insert_metric_name": False,
                "lr_monitor.logging_interval": "epoch",
                "trainer.max_epochs": 20,
                "trainer.deterministic": True,
                "trainer.log_every_n_steps": 10,
                "trainer.logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {"save_dir": "runs", "name": "crack", "default_hp_metric": False},
                },
            }
        )


def main(args: list[str] | None = None) -> None:
    """Run the CLI; input errors end it with a one-line message and exit status 2."""
    try:
        CrackLightningCLI(
            CrackClassifier, CrackDataModule, seed_everything_default=SEED, auto_configure_optimizers=False, args=args
        )
    except CrackLightningError as err:
        # Errors raised in DataLoader workers arrive wrapped in a traceback: keep the message's last line.
        message = str(err).strip().splitlines()[-1].removeprefix(f"{CrackLightningError.__module__}.{CrackLightningError.__name__}: ")
        print(f"crack_lightning: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
