"""``predict`` without torch: the exported graph in ONNX Runtime or OpenVINO, images decoded with PIL in threads.

``--engine lightning`` runs Lightning's predict instead (:mod:`crack_lightning.cli.train`: the Trainer's devices and
strategies, DDP); both write the same CSV. The engine is chosen by that flag only: a Lightning option without it
ends with a one-line hint.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional

from crack_lightning.api import load_model
from crack_lightning.cli.options import CommandParser
from crack_lightning.errors import CrackLightningError, require_writable
from crack_lightning.io.images import MAX_PIXELS
from crack_lightning.runtime.backends import BACKENDS, PRECISIONS, cpu_count
from crack_lightning.runtime.cuda import DEVICES
from crack_lightning.runtime.exported import TTA
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD
from crack_lightning.runtime.models import DEFAULT_MODEL
from crack_lightning.runtime.options import RunOptions
from crack_lightning.scanning.options import DEFAULT_BATCH as CPU_BATCH
from crack_lightning.scanning.options import GPU_BATCH
from crack_lightning.scanning.predictions import PREDICTIONS_CSV, predict_to_csv
from crack_lightning.tasks.classification import CLASSIFICATION

TRAINER_OPTIONS = (
    "--trainer",
    "--config",
    "--model.",
    "--seed_everything",
    "--prediction.",
    "--data.root",
    "--data.num_workers",
)
ENGINES = ("exported", "lightning")
FLAGS = {"batch_size": "--data.batch_size", "max_pixels": "--data.max_pixels", "model": "--ckpt_path"}  # cli.main
MODEL_HELP = f"A shipped model's name, a checkpoint of fit, or an .onnx written by export (default: the shipped {DEFAULT_MODEL})."


def engine(argv: list[str]) -> str:
    """The engine ``--engine`` names (default ``exported``), checked."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--engine"]
    values += [a.split("=", 1)[1] for a in argv if a.startswith("--engine=")]
    chosen = values[-1] if values else "exported"
    if chosen not in ENGINES:
        raise CrackLightningError(f"predict: --engine {chosen}; pass exported (the default, no torch) or lightning")
    return chosen


def lightning_argv(argv: list[str]) -> list[str]:
    """``predict`` options for Lightning's predict: ``--engine`` dropped, ``--input`` as ``--data.predict_dir``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--engine":
            skip = True
        elif arg.startswith("--engine="):
            continue
        elif arg == "--input":
            out.append("--data.predict_dir")
        elif arg.startswith("--input="):
            out.append("--data.predict_dir=" + arg.split("=", 1)[1])
        else:
            out.append(arg)
    return out


def refuse_trainer_options(argv: list[str]) -> None:
    """One line for an option only Lightning's predict has, given without ``--engine lightning``."""
    given = [arg.split("=", 1)[0] for arg in argv if arg.startswith(TRAINER_OPTIONS)]
    if given:
        raise CrackLightningError(
            f"predict: {given[0]} is an option of Lightning's predict; add --engine lightning "
            "(PyTorch, the Trainer's devices), or leave it out"
        )


def model_options(parser: CommandParser, default: str = DEFAULT_MODEL) -> None:
    """``--ckpt_path``, ``--backend``, ``--precision``, ``--device``, ``--tta``: which model runs, and how (predict and scan)."""
    parser.add_argument(
        "--ckpt_path", type=Optional[str], default=None, help=MODEL_HELP.replace(DEFAULT_MODEL, default)
    )
    parser.add_argument(
        "--backend",
        type=Literal[BACKENDS],
        default=RunOptions.backend,
        help="What runs the network: auto (OpenVINO for bf16 on CPUs with bf16 units, else ONNX Runtime), onnxruntime, openvino.",
    )
    parser.add_argument(
        "--precision",
        type=Literal[PRECISIONS],
        default="auto",
        help="auto: bf16 where the CPU computes it natively (AMX, AVX512-BF16; OpenVINO), about 1.5x faster, "
        "probabilities within about 0.01; else 32. 32: float32 everywhere, as PyTorch computes it.",
    )
    parser.add_argument(
        "--device",
        type=Literal[DEVICES],
        default="auto",
        help="auto: the GPU where PyTorch sees one (the checkpoint beside the model, in bf16), else the CPU "
        "runtimes without torch; cpu; cuda.",
    )
    parser.add_argument(
        "--tta",
        type=Literal[TTA],
        default=RunOptions.tta,
        help="hflip: average each image's (or window's) probabilities with its mirror image's (2x the compute); flips: with its three mirror images (4x).",
    )


def parser() -> CommandParser:
    p = CommandParser(
        "predict",
        "Classify images into a CSV: path, label, crack_probability, one probability per class, error. "
        "Runs without torch; --engine lightning runs Lightning's predict instead (--trainer.* options, several devices, DDP).",
        config=False,
    )
    model_options(p)
    p.add_argument(
        "--input",
        type=Optional[str],
        default=None,
        help="A folder of images (searched recursively), an image, or a .txt list of paths.",
    )
    p.add_argument(
        "--data.predict_dir",
        type=Optional[str],
        default=None,
        help="The same as --input (its name before 0.3; Lightning's predict's).",
    )
    p.add_argument(
        "--engine",
        type=Literal[ENGINES],
        default="exported",
        help="exported: the exported graph in ONNX Runtime or OpenVINO, without torch; lightning: Lightning's predict (PyTorch, --trainer.* options).",
    )
    p.add_argument("--output", type=str, default=PREDICTIONS_CSV, help="The CSV file to write.")
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="Crack probability from which an image is labelled crack.",
    )
    p.add_argument("--overwrite", type=bool, default=False, help="Replace an existing --output file.")
    p.add_argument(
        "--data.batch_size",
        type=Optional[int],
        default=None,
        help=f"Images per batch (default {CPU_BATCH}; {GPU_BATCH} on a GPU).",
    )
    p.add_argument(
        "--data.max_pixels",
        type=int,
        default=MAX_PIXELS,
        help="Largest image accepted, in pixels, checked from its header.",
    )
    return p


def run(argv: list[str]) -> None:
    refuse_trainer_options(argv)
    options = parser().parse_args(argv)
    source = options.input or options.data.predict_dir
    if source is None or (options.input and options.data.predict_dir):
        raise CrackLightningError(
            "predict: pass --input, a folder of images, an image or a .txt list of paths (see --help)"
        )
    option = "--input" if options.input else "--data.predict_dir"
    require_writable(Path(options.output).expanduser().absolute().parent, "--output")  # before the model loads
    classifier = load_model(
        options.ckpt_path or DEFAULT_MODEL,
        device=options.device,
        backend=options.backend,
        precision=options.precision,
        tta=options.tta,
    )
    if classifier.task != CLASSIFICATION.name:  # a segmenter's answer is a mask, not a label per image
        raise CrackLightningError(
            f"--ckpt_path: {options.ckpt_path} is a crack {classifier.task} model; predict labels "
            "patches with a classifier (concrete-v1), scan measures cracks with a segmenter"
        )
    gpu = classifier.device == "cuda"
    batch_size = options.data.batch_size or (GPU_BATCH if gpu else CPU_BATCH)
    print(f"Model: {classifier.source}", file=sys.stderr)
    print(f"Inference: {classifier.describe()} (--engine exported)", file=sys.stderr)
    counts = predict_to_csv(
        classifier,
        source,
        options.output,
        options.threshold,
        options.overwrite,
        batch_size,
        options.data.max_pixels,
        option,
        workers=cpu_count() if gpu else 2,  # a GPU waits for decoding otherwise
    )
    read = counts["images"] - counts["errors"]
    print(
        f"Predicted {read} images: {counts['cracks']} {classifier.crack_class} (crack probability >= {options.threshold:g}).",
        file=sys.stderr,
    )
    if counts["errors"]:
        print(f"{counts['errors']} files could not be read as images (see the error column).", file=sys.stderr)
    print(f"Predictions written to {options.output}", file=sys.stderr)
