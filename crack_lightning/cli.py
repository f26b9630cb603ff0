"""Command line: ``python -m crack_lightning {fit,validate,test,predict} --config configs/default.yaml``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from crack_lightning.callbacks import AugmentedSamplesGrid, FitSummary, PhaseAwareEarlyStopping, TwoPhaseFinetuning
from crack_lightning.data import MAX_PIXELS, CrackDataModule, sample_root
from crack_lightning.errors import CrackLightningError, require_writable
from crack_lightning.evaluate import TestReport
from crack_lightning.export import compare_with_onnxruntime, export_onnx, onnx_input
from crack_lightning.model import CrackClassifier, load_checkpoint, read_checkpoint
from crack_lightning.precision import auto_precision
from crack_lightning.predict import CSVPredictionWriter
from crack_lightning.runtime import BACKENDS, TTA
from crack_lightning.tiles import GROUP_PATTERN, cut_tiles
from crack_lightning.scan import DEFAULT_CONTEXT, DEFAULT_TILE, MASKS, OVERLAYS, PHOTOS_CSV, TILES_CSV, scan_to_folder

SEED = 42
DESCRIPTION = (
    "Train, test and predict with a MobileNetV2 concrete-crack classifier. "
    "Also: `python -m crack_lightning scan --help` (crack maps of whole photos) and "
    "`python -m crack_lightning export --help` (checkpoint to ONNX), "
    "`python -m crack_lightning tiles --help` (labelled tiles from photos with crack masks)."
)
TRAINING_CALLBACKS = {
    "finetuning": TwoPhaseFinetuning,
    "early_stopping": PhaseAwareEarlyStopping,
    "checkpoint": ModelCheckpoint,
    "last_checkpoint": ModelCheckpoint,
    "lr_monitor": LearningRateMonitor,
    "sample_grid": AugmentedSamplesGrid,
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
    "trainer.precision": None,  # chosen for the hardware: see crack_lightning.precision
    "trainer.deterministic": True,
    "trainer.log_every_n_steps": 10,
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": "runs", "name": "crack", "default_hp_metric": False},
    },
}


class CrackArgumentParser(LightningArgumentParser):
    """LightningCLI's parser whose usage errors end as one line too, instead of the usage text."""

    def error(self, message: str, ex: Exception | None = None) -> None:  # type: ignore[override]
        text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
        raise CrackLightningError(f"{text} (see --help)") from ex


class CrackLightningCLI(LightningCLI):
    """LightningCLI with the fine-tuning, early-stopping, checkpoint and logging callbacks always present,
    a CSV writer for ``predict`` and a report for ``test``."""

    _subcommand: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        argv = kwargs.get("args")
        argv = sys.argv[1:] if argv is None else list(argv)
        self._asked = argv[:1]
        # The --model.KEY flags typed on the command line: they must win over a checkpoint's hyperparameters.
        self._model_flags = {a.split("=", 1)[0].removeprefix("--model.") for a in argv if a.startswith("--model.")}
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        # Build the parser of the subcommand asked for only: each takes about half a second to build.
        every = LightningCLI.subcommands()
        return {self._asked[0]: every[self._asked[0]]} if self._asked and self._asked[0] in every else every

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        # Remember which subcommand's parser is being built, so that each gets only the options it uses.
        self._subcommand = subcommand
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":
            parser.set_defaults({"return_predictions": False})  # rows stream to the CSV; keep none in memory
        parser.set_defaults({"weights_only": True})  # checkpoints hold tensors and plain data only
        return parser

    def _parse_ckpt_path(self) -> None:
        # The checkpoint is checked first (one line for each way it can be wrong), then read for its hyperparameters.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path:
            return
        hparams = dict(read_checkpoint(ckpt_path)["hyper_parameters"])
        hparams.pop("_instantiator", None)
        # As Lightning's own _parse_ckpt_path, from the checkpoint read once, except that the --model flags typed
        # win: Lightning lays every saved hyperparameter over the command line (`predict --model.tta hflip` lost).
        for key in self._model_flags:
            hparams.pop(key, None)
        self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def before_instantiate_classes(self) -> None:
        # Where the run will write, checked before any model is built or data read.
        config = self.config[self.subcommand]
        logger = config.get("trainer.logger")
        save_dir = logger.get("init_args.save_dir") if hasattr(logger, "get") else None
        if save_dir:
            require_writable(save_dir, "--trainer.logger.init_args.save_dir")
        if config.get("trainer.default_root_dir"):
            require_writable(config["trainer.default_root_dir"], "--trainer.default_root_dir")
        if self.subcommand == "predict" and config.get("output"):
            require_writable(Path(config["output"]).expanduser().absolute().parent, "--output")
        if self.subcommand == "test" and config.get("report.output_dir"):
            require_writable(config["report.output_dir"], "--report.output_dir")
        if config.get("trainer.precision") is None:
            precision, why = auto_precision(str(config.get("trainer.accelerator") or "auto"))
            config["trainer.precision"] = precision
            rank_zero_info(f"Precision: {precision} ({why}); --trainer.precision 32-true or bf16-mixed chooses")

    def before_fit(self) -> None:
        self.trainer.callbacks.append(FitSummary())  # no options: not in the config

    def after_instantiate_classes(self) -> None:
        super().after_instantiate_classes()
        # The callbacks exist now, the data has not been read: refuse a schedule that never fine-tunes.
        if self.subcommand == "fit":
            for callback in self.trainer.callbacks:
                if isinstance(callback, TwoPhaseFinetuning):
                    callback.check_schedule(self.trainer.max_epochs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        if self._subcommand == "test":
            parser.add_lightning_class_args(TestReport, "report")
        if self._subcommand == "predict":
            parser.add_lightning_class_args(CSVPredictionWriter, "prediction")
            parser.add_argument("--output", type=Optional[str], default=None, help="CSV file for the predictions; default: predictions.csv in the run's log directory.")
            parser.add_argument("--threshold", type=float, default=0.5, help="Crack probability from which an image is labelled crack.")
            parser.add_argument("--overwrite", type=bool, default=False, help="Replace an existing --output file.")
            for key in ("output", "threshold", "overwrite"):
                parser.link_arguments(key, f"prediction.{key}")
        for key, callback in TRAINING_CALLBACKS.items():
            if self._subcommand == "fit":
                parser.add_lightning_class_args(callback, key)
            else:  # accepted, so that one config file serves every subcommand, but only fit uses them
                parser.add_class_arguments(callback, key)
        parser.set_defaults(FIT_DEFAULTS)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors end as the CLI's other input errors: one line, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CrackLightningError(f"{self.prog.split()[-1]}: {message}; see --help")


def checkpoint_command_parser(name: str, description: str) -> OneLineParser:
    """The parser of a subcommand that works from a trained checkpoint, outside the Trainer."""
    parser = OneLineParser(prog=f"python -m crack_lightning {name}", description=description)
    parser.add_argument("--ckpt_path", required=True, help="checkpoint written by fit")
    return parser


def export_command(argv: list[str]) -> None:
    """``export --ckpt_path CKPT --output model.onnx``: ONNX export, checked with ONNX Runtime on sample images."""
    parser = checkpoint_command_parser(
        "export",
        "Export a checkpoint to ONNX (dynamic batch, normalisation and softmax inside, class names in "
        "the metadata). Input: float32 RGB (N, 3, S, S) in [0, 1]; output: class probabilities.",
    )
    parser.add_argument("--output", help="ONNX file to write (default: the checkpoint's path with .onnx)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--no-check", dest="check", action="store_false", help="skip the ONNX Runtime comparison")
    options = parser.parse_args(argv)
    ckpt = Path(options.ckpt_path)
    model = load_checkpoint(options.ckpt_path)
    output = export_onnx(model, options.output or ckpt.with_suffix(".onnx"), overwrite=options.overwrite)
    print(f"Exported {ckpt} to {output}")
    if options.check:
        paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[:8]]
        difference = compare_with_onnxruntime(model, output, onnx_input(paths, model.preprocessing[0]))
        print(f"ONNX Runtime vs PyTorch, {len(paths)} sample images: max abs difference of probabilities {difference:.2e}")


def boolean(text: str) -> bool:
    """``true``/``false`` (also yes/no, 1/0), as LightningCLI's flags take them."""
    value = text.strip().lower()
    if value not in ("true", "false", "yes", "no", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value in ("true", "yes", "1")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def scan_command(argv: list[str]) -> None:
    """``scan --ckpt_path CKPT --input PHOTOS --output DIR``: crack maps of whole photos."""
    parser = checkpoint_command_parser(
        "scan",
        "Cut each photo into square tiles, classify every tile with a checkpoint, and write tiles.csv, "
        "photos.csv and a crack-probability overlay per photo into --output.",
    )
    parser.add_argument("--input", required=True, help="a photo, a folder of photos (searched recursively), or a .txt list of paths")
    parser.add_argument("--output", required=True, help="folder for tiles.csv, photos.csv, overlays/ and masks/")
    parser.add_argument("--tile", type=positive_int, default=DEFAULT_TILE, help=f"tile side in photo pixels (default {DEFAULT_TILE})")
    parser.add_argument("--stride", type=positive_int, default=None, help="step between tiles in photo pixels (default: the tile, no overlap; tile/2 gives a smoother map)")
    parser.add_argument("--context", type=float, default=DEFAULT_CONTEXT, help=f"photo around each tile the network also sees, as a share of the tile side on each side (default {DEFAULT_CONTEXT})")
    parser.add_argument("--batch_size", type=positive_int, default=32, help="tiles per batch (default 32)")
    parser.add_argument("--threshold", type=float, default=0.5, help="crack probability from which a tile is a crack (default 0.5)")
    parser.add_argument("--masks", type=boolean, default=False, help="also write masks/<photo>.png, the probability map as 8-bit grey")
    parser.add_argument("--overlay_max_side", type=positive_int, default=4096, help="longest side of an overlay; larger photos are drawn smaller (default 4096)")
    parser.add_argument("--overwrite", type=boolean, default=False, help="replace the scan results already in --output")
    parser.add_argument("--resume", type=boolean, default=False, help="skip the photos already in --output's photos.csv")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs (auto: cuda when there is one)")
    parser.add_argument("--precision", default="32", choices=("32", "bf16"), help="32 or bf16: OpenVINO's bf16 on the CPU (about 2x faster where the CPU has AMX), autocast in PyTorch (default 32)")
    parser.add_argument("--inference_backend", default=None, choices=BACKENDS, help="what runs the network: onnxruntime (float32 on the CPU, about 2x faster), openvino (the CPU, at --precision: bf16 about 2x faster again on CPUs with AMX), torch, or auto: OpenVINO for bf16, ONNX Runtime for 32 on the CPU (default: the checkpoint's, auto)")
    parser.add_argument("--tta", default=None, choices=TTA, help="hflip: average each tile's probabilities with its mirror image's (twice the compute); none (default: the checkpoint's, none)")
    parser.add_argument("--max_pixels", type=positive_int, default=MAX_PIXELS, help=f"largest photo accepted, in pixels, checked from its header (default {MAX_PIXELS})")
    parser.add_argument("--progress", type=boolean, default=True, help="show a progress bar")
    options = parser.parse_args(argv)
    if options.overwrite and options.resume:
        raise CrackLightningError("--overwrite and --resume exclude each other; pass one of them")
    model = load_checkpoint(options.ckpt_path)
    if options.tta:
        model.hparams.tta = options.tta
    device = "cuda" if options.device == "auto" and torch.cuda.is_available() else options.device.replace("auto", "cpu")
    model.to(device)
    stride = options.stride or options.tile
    counts = scan_to_folder(
        model, options.input, options.output, options.tile, stride, options.batch_size, options.threshold,
        options.masks, options.overwrite, options.resume, options.overlay_max_side, options.precision, options.progress,
        options.max_pixels, options.context, options.inference_backend,
    )
    skipped = f", {counts['skipped']} already done" if counts["skipped"] else ""
    print(
        f"Scanned {counts['photos'] - counts['errors']} photos ({counts['tiles']} tiles of {options.tile} px, stride "
        f"{stride}){skipped}: {counts['crack_photos']} with cracks, {counts['errors']} unreadable (see photos.csv)."
    )
    print(f"Results in {options.output}: {TILES_CSV}, {PHOTOS_CSV}, {OVERLAYS}/" + (f", {MASKS}/" if options.masks else ""))


def tiles_command(argv: list[str]) -> None:
    """``tiles --photos DIR --masks DIR --output DIR --tile N``: labelled tiles from photos with pixel masks."""
    parser = OneLineParser(
        prog="python -m crack_lightning tiles",
        description="Cut photos with pixel masks (255 = crack) into an ImageFolder of tiles: Positive/ when at least "
        "--crack_fraction of a tile's pixels are crack, Negative/ when none are; tiles in between are left out. "
        f"Tile names carry the photo's name: train with --data.group_pattern '{GROUP_PATTERN}'.",
    )
    parser.add_argument("--photos", required=True, help="folder of photos (searched recursively)")
    parser.add_argument("--masks", required=True, help="folder of masks: the photos' relative paths with .png")
    parser.add_argument("--output", required=True, help="folder for Positive/ and Negative/")
    parser.add_argument("--tile", type=positive_int, required=True, help="tile side in photo pixels")
    parser.add_argument("--stride", type=positive_int, default=None, help="step between tiles (default: the tile)")
    parser.add_argument("--crack_fraction", type=float, default=0.01, help="share of crack pixels that makes a crack tile (default 0.01)")
    parser.add_argument("--context", type=float, default=0.0, help="photo around each tile also written into its image, as a share of the tile side on each side, as scan --context shows it; the label stays the tile's (default 0)")
    parser.add_argument("--overwrite", type=boolean, default=False, help="write into an --output that holds tiles already")
    options = parser.parse_args(argv)
    counts = cut_tiles(options.photos, options.masks, options.output, options.tile, options.stride,
                       options.crack_fraction, options.context, overwrite=options.overwrite)
    print(
        f"Cut {counts['photos']} photos into {counts['Positive']} Positive and {counts['Negative']} Negative tiles in "
        f"{options.output} ({counts['left_out']} tiles with under {options.crack_fraction:.0%} crack pixels left out)."
    )
    print(f"Train on them with: --data.root {options.output} --data.group_pattern '{GROUP_PATTERN}'")


def main(args: list[str] | None = None, cli_class: type[CrackLightningCLI] = CrackLightningCLI) -> None:
    """Run the CLI (``cli_class``: a subclass, for benchmarks); input errors end it with one line and exit status 2."""
    argv = sys.argv[1:] if args is None else list(args)
    try:
        if argv[:1] == ["export"]:
            export_command(argv[1:])
        elif argv[:1] == ["scan"]:
            scan_command(argv[1:])
        elif argv[:1] == ["tiles"]:
            tiles_command(argv[1:])
        else:
            cli_class(
                CrackClassifier,
                CrackDataModule,
                seed_everything_default=SEED,
                auto_configure_optimizers=False,
                parser_class=CrackArgumentParser,
                parser_kwargs={"prog": "python -m crack_lightning", "description": DESCRIPTION},
                args=args,
            )
    except CrackLightningError as err:
        # Errors raised in DataLoader workers arrive wrapped in a traceback: keep the message's last line.
        prefix = f"{CrackLightningError.__module__}.{CrackLightningError.__name__}: "
        message = str(err).strip().splitlines()[-1].removeprefix(prefix)
        print(f"crack_lightning: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
