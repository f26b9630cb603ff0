"""``fit``, ``validate``, ``test`` and Lightning's ``predict``: LightningCLI over the model and data module, with the
fine-tuning, early-stopping, checkpoint and logging callbacks always present."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.utilities import rank_zero_info

from crack_lightning.cli.lightning_cli import CheckedCLI, run_cli
from crack_lightning.data.classification import CrackDataModule
from crack_lightning.errors import require_writable
from crack_lightning.models.checkpoints import read_checkpoint
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.runtime.exported import TTA
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD
from crack_lightning.runtime.models import DEFAULT_MODEL, shipped_model
from crack_lightning.training.callbacks import AugmentedSamplesGrid, PhaseAwareEarlyStopping, TwoPhaseFinetuning
from crack_lightning.training.evaluate import TestReport
from crack_lightning.training.fit_summary import FitSummary
from crack_lightning.training.frozen_blocks import FrozenBlocksRuntime
from crack_lightning.training.prediction_writer import CSVPredictionWriter

DESCRIPTION = "Train, validate and test a MobileNetV2 concrete-crack classifier (python -m crack_lightning --help lists every command)."
TRAINING_CALLBACKS = {
    "finetuning": TwoPhaseFinetuning,
    "early_stopping": PhaseAwareEarlyStopping,
    "checkpoint": ModelCheckpoint,
    "last_checkpoint": ModelCheckpoint,
    "lr_monitor": LearningRateMonitor,
    "sample_grid": AugmentedSamplesGrid,
    "frozen_blocks": FrozenBlocksRuntime,
}

# The defaults this project sets on Lightning's own classes (the README's config table lists them with ours).
FIT_DEFAULTS = {
    "early_stopping.monitor": "val_loss",
    "early_stopping.patience": 3,
    "checkpoint.monitor": "val_loss",
    # ModelCheckpoint's own save_last only follows the best one: a second callback keeps the last epoch.
    "last_checkpoint.filename": "last",
    "last_checkpoint.monitor": None,
    "last_checkpoint.save_top_k": 1,
    "last_checkpoint.enable_version_counter": False,
    "checkpoint.filename": "best-epoch{epoch:02d}-val_loss{val_loss:.4f}",
    "checkpoint.auto_insert_metric_name": False,
    "lr_monitor.logging_interval": "epoch",
    "trainer.max_epochs": 6,
    "trainer.precision": None,  # chosen for the hardware: see crack_lightning.training.precision
    "trainer.deterministic": True,
    "trainer.log_every_n_steps": 10,
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "crack", "default_hp_metric": False},
    },
}


class CrackLightningCLI(CheckedCLI):
    """LightningCLI with the fine-tuning, early-stopping, checkpoint and logging callbacks always present,
    a CSV writer for ``predict`` and a report for ``test``."""

    # the config keys of the callbacks, for the flags of their errors (the writer's options are predict's own)
    CALLBACK_KEYS = {
        **{cls: key for key, cls in TRAINING_CALLBACKS.items()},
        TestReport: "report",
        CSVPredictionWriter: "",
    }

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # Before Lightning reads the checkpoint's hyperparameters: a shipped model by name, the shipped model when
        # test/validate/predict get none, and one line for each way a file can be wrong.
        subcommand = self.config.get("subcommand")
        if subcommand in (None, "fit"):
            return
        config = self.config[subcommand]
        name = config.get("ckpt_path") or DEFAULT_MODEL
        shipped = shipped_model(name)
        if shipped is not None:
            config["ckpt_path"] = str(shipped.checkpoint)
            rank_zero_info(f"Model: {shipped.describe()}")
        read_checkpoint(config["ckpt_path"], "--ckpt_path")
        config["weights_only"] = True  # checkpoints hold tensors and plain data only
        if subcommand == "predict":
            config["return_predictions"] = False  # rows stream to the CSV; keep none in memory

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        config = self.config[self.subcommand]
        if self.subcommand == "predict" and config.get("output"):
            require_writable(Path(config["output"]).expanduser().absolute().parent, "--output")
        if self.subcommand == "test" and config.get("report.output_dir"):
            require_writable(config["report.output_dir"], "--report.output_dir")

    def before_fit(self) -> None:
        self.trainer.callbacks.append(FitSummary())  # no options: not in the config

    def before_test(self) -> None:
        self.model.test_tta = self.config["test"]["tta"]

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        if self.asked == "test":
            parser.add_lightning_class_args(TestReport, "report")
            parser.add_argument(
                "--tta",
                type=Literal[TTA],
                default="none",
                help="hflip: average each image's probabilities with its mirror image's; flips: with its three mirror images (as predict's --tta).",
            )
        if self.asked == "predict":
            parser.add_lightning_class_args(CSVPredictionWriter, "prediction")
            parser.add_argument(
                "--output",
                type=Optional[str],
                default=None,
                help="CSV file for the predictions; default: predictions.csv in the run's log directory.",
            )
            parser.add_argument(
                "--threshold",
                type=float,
                default=DEFAULT_THRESHOLD,
                help="Crack probability from which an image is labelled crack.",
            )
            parser.add_argument("--overwrite", type=bool, default=False, help="Replace an existing --output file.")
            for key in ("output", "threshold", "overwrite"):
                parser.link_arguments(key, f"prediction.{key}")
        for key, callback in TRAINING_CALLBACKS.items():
            if self.asked == "fit":
                parser.add_lightning_class_args(callback, key)
            else:  # accepted, so that one config file serves every subcommand, but only fit uses them
                parser.add_class_arguments(callback, key)
        parser.set_defaults(FIT_DEFAULTS)


def run(args: list[str], cli_class: type[CrackLightningCLI] = CrackLightningCLI) -> None:
    """Run LightningCLI (``cli_class``: a subclass, for benchmarks)."""
    run_cli(cli_class, args, DESCRIPTION, CrackClassifier, CrackDataModule)
