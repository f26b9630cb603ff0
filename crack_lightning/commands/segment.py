"""``fit``, ``validate`` and ``test`` of a crack segmenter: LightningCLI over
:class:`~crack_lightning.segmentation_model.CrackSegmenter` and
:class:`~crack_lightning.segmentation_data.SegmentationDataModule`.

    python -m crack_lightning fit --config configs/segment.yaml --data.root DIR
    python -m crack_lightning fit --config configs/segment.yaml --data.root DIR --ckpt_path runs/segment/version_0/checkpoints/last.ckpt
    python -m crack_lightning test --ckpt_path SEG.ckpt --data.root DIR --data.test_fraction 0.2

``python -m crack_lightning`` sends a run here when its ``--config`` names the segmenter as ``model.class_path``,
or its ``--ckpt_path`` holds a segmenter (see :func:`crack_lightning.commands.wants_segmenter`). Without a config
the defaults below apply: the TensorBoard logger, the best checkpoint by ODS F1 and ``last.ckpt``, early stopping
on ODS F1, as ``configs/segment.yaml`` sets them.
"""

from __future__ import annotations

import sys
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from crack_lightning.checkpoints import read_segmentation_checkpoint
from crack_lightning.commands.train import SEED, CrackArgumentParser
from crack_lightning.errors import CrackLightningError, require_writable
from crack_lightning.precision import auto_precision
from crack_lightning.segmentation_data import SegmentationDataModule
from crack_lightning.segmentation_model import CrackSegmenter

SUBCOMMANDS = ("fit", "validate", "test")
DESCRIPTION = "Train, validate and test a crack segmenter (a crack probability per pixel): --config configs/segment.yaml."
MODEL_CLASS = f"{CrackSegmenter.__module__}.{CrackSegmenter.__name__}"
DATA_CLASS = f"{SegmentationDataModule.__module__}.{SegmentationDataModule.__name__}"
ODS = {"monitor": "val_ods_f1", "mode": "max"}  # the best single threshold's F1 over the validation set


def callback(name: str, **init_args: Any) -> dict[str, Any]:
    return {"class_path": f"lightning.pytorch.callbacks.{name}", "init_args": init_args}


SEGMENT_DEFAULTS = {
    "model": {"class_path": MODEL_CLASS},
    "data": {"class_path": DATA_CLASS},
    "trainer.precision": None,  # chosen for the hardware: see crack_lightning.precision
    "trainer.deterministic": "warn",  # bilinear upsampling has no deterministic CUDA backward
    "trainer.log_every_n_steps": 10,
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "segment", "default_hp_metric": False},
    },
    "trainer.callbacks": [
        callback("ModelCheckpoint", filename="best-epoch{epoch:02d}-ods{val_ods_f1:.4f}", auto_insert_metric_name=False, **ODS),
        callback("ModelCheckpoint", filename="last", monitor=None, enable_version_counter=False),  # to resume from
        callback("EarlyStopping", patience=4, **ODS),
        callback("LearningRateMonitor", logging_interval="epoch"),
    ],
}


class SegmentationCLI(LightningCLI):
    """LightningCLI for the segmenter: only the subcommand asked for is built, checkpoints are checked first (one
    line for each way a file can be wrong) and loaded as tensors only, and the output folders are checked writable
    before anything is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        argv = kwargs.get("args")
        argv = sys.argv[1:] if argv is None else list(argv)
        self.asked = argv[0] if argv and argv[0] in SUBCOMMANDS else None
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        every = LightningCLI.subcommands()
        return {self.asked: every[self.asked]} if self.asked else {name: every[name] for name in SUBCOMMANDS}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.set_defaults(SEGMENT_DEFAULTS)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        if config.get("ckpt_path"):
            read_segmentation_checkpoint(config["ckpt_path"])  # before Lightning reads its hyperparameters
            config["weights_only"] = True  # checkpoints hold tensors and plain data only
        elif subcommand != "fit":
            raise CrackLightningError(f"{subcommand}: pass --ckpt_path, a segmenter's checkpoint written by fit")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        logger = config.get("trainer.logger")
        save_dir = logger.get("init_args.save_dir") if hasattr(logger, "get") else None
        if save_dir:
            require_writable(save_dir, "--trainer.logger.init_args.save_dir")
        if config.get("trainer.default_root_dir"):
            require_writable(config["trainer.default_root_dir"], "--trainer.default_root_dir")
        if config.get("trainer.precision") is None:
            precision, why = auto_precision(str(config.get("trainer.accelerator") or "auto"))
            config["trainer.precision"] = precision
            rank_zero_info(f"Precision: {precision} ({why}); --trainer.precision 32-true or bf16-mixed chooses")


def run(args: list[str]) -> None:
    """Run the segmenter's LightningCLI."""
    try:
        SegmentationCLI(
            CrackSegmenter,
            SegmentationDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=SEED,
            auto_configure_optimizers=False,  # the segmenter's own AdamW and schedule
            parser_class=CrackArgumentParser,
            parser_kwargs={"prog": "python -m crack_lightning", "description": DESCRIPTION},
            # None when they are the command line's: LightningCLI warns when given both
            args=None if list(args) == sys.argv[1:] else args,
        )
    except CrackLightningError as err:
        # Errors raised in DataLoader workers arrive wrapped in a traceback: keep the message's last line.
        prefix = f"{CrackLightningError.__module__}.{CrackLightningError.__name__}: "
        raise CrackLightningError(str(err).strip().splitlines()[-1].removeprefix(prefix)) from None
