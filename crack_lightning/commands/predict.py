"""``predict`` without torch: the exported graph in ONNX Runtime or OpenVINO, images decoded with PIL in threads.

A Trainer option (``--trainer.*``, ``--config``, ``--model.*``) hands ``predict`` to Lightning instead
(:mod:`crack_lightning.commands.train`: several devices, DDP); both write the same CSV.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional

from crack_lightning.commands.options import CommandParser
from crack_lightning.errors import require_writable
from crack_lightning.images import MAX_PIXELS
from crack_lightning.inference.backends import BACKENDS, PRECISIONS, cpu_threads
from crack_lightning.inference.cuda import DEVICES
from crack_lightning.inference.exported import TTA
from crack_lightning.inference.models import DEFAULT_MODEL, load_model
from crack_lightning.prediction_csv import PREDICTIONS_CSV, predict_to_csv

TRAINER_OPTIONS = ("--trainer", "--config", "--model.", "--seed_everything", "--prediction.", "--data.root", "--data.num_workers")
CPU_BATCH, GPU_BATCH = 32, 256  # a GPU needs large batches to be busy
MODEL_HELP = f"A shipped model's name, a checkpoint of fit, or an .onnx written by export (default: the shipped {DEFAULT_MODEL})."


def needs_trainer(argv: list[str]) -> bool:
    """True when an option only Lightning's predict has is given: the run goes to the Trainer."""
    return any(arg.startswith(TRAINER_OPTIONS) for arg in argv if arg.startswith("--"))


def model_options(parser: CommandParser) -> None:
    """``--ckpt_path``, ``--backend``, ``--precision``, ``--device``, ``--tta``: which model runs, and how (predict and scan)."""
    parser.add_argument("--ckpt_path", type=Optional[str], default=None, help=MODEL_HELP)
    parser.add_argument("--backend", type=Literal[BACKENDS], default="auto",
                        help="What runs the network: auto (OpenVINO for bf16 on CPUs with bf16 units, else ONNX Runtime), onnxruntime, openvino.")
    parser.add_argument("--precision", type=Literal[PRECISIONS], default="auto",
                        help="auto: bf16 where the CPU computes it natively (AMX, AVX512-BF16; OpenVINO), about 1.5x faster, "
                             "probabilities within about 0.01; else 32. 32: float32 everywhere, as PyTorch computes it.")
    parser.add_argument("--device", type=Literal[DEVICES], default="auto",
                        help="auto: the GPU where PyTorch sees one (the checkpoint beside the model, in bf16), else the CPU "
                             "runtimes without torch; cpu; cuda.")
    parser.add_argument("--tta", type=Literal[TTA], default="none", help="hflip: average each image's (or window's) probabilities with its mirror image's (2x the compute); flips: with its three mirror images (4x).")


def parser() -> CommandParser:
    p = CommandParser("predict", "Classify images into a CSV: path, label, crack_probability, one probability per class, error. "
                      "Runs without torch; a --trainer.* or --config option runs it in Lightning instead (several devices, DDP).",
                      config=False)
    model_options(p)
    p.add_argument("--data.predict_dir", type=str, required=True, help="A folder of images (searched recursively), an image, or a .txt list of paths.")
    p.add_argument("--output", type=str, default=PREDICTIONS_CSV, help="The CSV file to write.")
    p.add_argument("--threshold", type=float, default=0.5, help="Crack probability from which an image is labelled crack.")
    p.add_argument("--overwrite", type=bool, default=False, help="Replace an existing --output file.")
    p.add_argument("--data.batch_size", type=Optional[int], default=None, help=f"Images per batch (default {CPU_BATCH}; {GPU_BATCH} on a GPU).")
    p.add_argument("--data.max_pixels", type=int, default=MAX_PIXELS, help="Largest image accepted, in pixels, checked from its header.")
    return p


def run(argv: list[str]) -> None:
    options = parser().parse_args(argv)
    require_writable(Path(options.output).expanduser().absolute().parent, "--output")  # before the model loads
    classifier = load_model(options.ckpt_path, "--ckpt_path", options.device, backend=options.backend,
                            precision=options.precision, tta=options.tta)
    gpu = classifier.device == "cuda"
    batch_size = options.data.batch_size or (GPU_BATCH if gpu else CPU_BATCH)
    print(f"Model: {classifier.source}", file=sys.stderr)
    print(f"Inference: {classifier.describe()}", file=sys.stderr)
    counts = predict_to_csv(
        classifier, options.data.predict_dir, options.output, options.threshold, options.overwrite,
        batch_size, options.data.max_pixels, workers=cpu_threads() if gpu else 2,  # a GPU waits for decoding otherwise
    )
    read = counts["images"] - counts["errors"]
    print(f"Predicted {read} images: {counts['cracks']} {classifier.crack_class} (crack probability >= {options.threshold:g}).", file=sys.stderr)
    if counts["errors"]:
        print(f"{counts['errors']} files could not be read as images (see the error column).", file=sys.stderr)
    print(f"Predictions written to {options.output}", file=sys.stderr)
