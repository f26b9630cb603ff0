"""``fit``, ``validate`` and ``test`` of a crack segmenter: LightningCLI over
:class:`~crack_lightning.models.segmenter.CrackSegmenter` and
:class:`~crack_lightning.data.segmentation.SegmentationDataModule`.

    python -m crack_lightning fit --config configs/segment.yaml --data.root DIR
    python -m crack_lightning fit --config configs/segment.yaml --data.root DIR --ckpt_path runs/segment/version_0/checkpoints/last.ckpt
    python -m crack_lightning test --ckpt_path SEG.ckpt --data.root DIR --data.test_fraction 0.2

``python -m crack_lightning`` sends a run here when its ``--config`` names the segmenter as ``model.class_path``,
or its ``--ckpt_path`` holds a segmenter (see :func:`crack_lightning.cli.lightning_task`). Without a config
the defaults below apply: the TensorBoard logger, the best checkpoint by ODS F1 and ``last.ckpt``, early stopping
on ODS F1, as ``configs/segment.yaml`` sets them.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from crack_lightning.cli.lightning_cli import CheckedCLI, run_cli
from crack_lightning.data.segmentation import SegmentationDataModule
from crack_lightning.errors import CrackLightningError
from crack_lightning.models.checkpoints import SEGMENTATION, checkpoint_path, read_checkpoint
from crack_lightning.models.segmenter import CrackSegmenter

DESCRIPTION = (
    "Train, validate and test a crack segmenter (a crack probability per pixel): --config configs/segment.yaml."
)
MODEL_CLASS = f"{CrackSegmenter.__module__}.{CrackSegmenter.__name__}"
DATA_CLASS = f"{SegmentationDataModule.__module__}.{SegmentationDataModule.__name__}"
ODS = {"monitor": "val_ods_f1", "mode": "max"}  # the best single threshold's F1 over the validation set


def callback(name: str, **init_args: Any) -> dict[str, Any]:
    return {"class_path": f"lightning.pytorch.callbacks.{name}", "init_args": init_args}


SEGMENT_DEFAULTS = {
    "model": {"class_path": MODEL_CLASS},
    "data": {"class_path": DATA_CLASS},
    "trainer.precision": None,  # chosen for the hardware: see crack_lightning.training.precision
    "trainer.deterministic": "warn",  # bilinear upsampling has no deterministic CUDA backward
    "trainer.log_every_n_steps": 10,
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "segment", "default_hp_metric": False},
    },
    "trainer.callbacks": [
        callback(
            "ModelCheckpoint",
            filename="best-epoch{epoch:02d}-ods{val_ods_f1:.4f}",
            auto_insert_metric_name=False,
            **ODS,
        ),
        callback("ModelCheckpoint", filename="last", monitor=None, enable_version_counter=False),  # to resume from
        callback("EarlyStopping", patience=10, **ODS),
        callback("LearningRateMonitor", logging_interval="epoch"),
    ],
}


class SegmentationCLI(CheckedCLI):
    """LightningCLI for the segmenter: checkpoints are checked first (one line for each way a file can be wrong)
    and loaded as tensors only."""

    SUBCOMMANDS = ("fit", "validate", "test")

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.set_defaults(SEGMENT_DEFAULTS)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        if config.get("ckpt_path"):
            config["ckpt_path"] = str(checkpoint_path(config["ckpt_path"]))  # a shipped segmenter by name
            read_checkpoint(
                config["ckpt_path"], "--ckpt_path", SEGMENTATION
            )  # before Lightning reads its hyperparameters
            config["weights_only"] = True  # checkpoints hold tensors and plain data only
        elif subcommand != "fit":
            raise CrackLightningError(f"{subcommand}: pass --ckpt_path, a segmenter's checkpoint written by fit")


def run(args: list[str]) -> None:
    """Run the segmenter's LightningCLI."""
    run_cli(
        SegmentationCLI,
        args,
        DESCRIPTION,
        CrackSegmenter,
        SegmentationDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
    )
