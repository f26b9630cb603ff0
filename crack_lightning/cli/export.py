"""``export``: a model (a classifier or a segmenter) as one ONNX file with its metadata, checked against PyTorch on
the shipped sample images: :func:`crack_lightning.export.checked.export_model`."""

from __future__ import annotations

from typing import Optional

from crack_lightning.cli.options import CommandParser
from crack_lightning.runtime.models import DEFAULT_MODEL

FLAGS = {"model": "--ckpt_path"}  # the library's names that are not the flag's (cli.main)


def parser() -> CommandParser:
    p = CommandParser(
        "export",
        "Write a model as ONNX: input uint8 RGB images (N, 3, S, S) resized to the model's size S, output float32 class "
        "probabilities; normalisation inside, BatchNorm folded, class names, size and normalisation in the metadata. "
        "A segmenter's checkpoint: input uint8 RGB photos (N, 3, H, W) of any size, output float32 crack probabilities "
        "(N, 1, H, W); threshold, window size and normalisation in the metadata.",
    )
    p.add_argument(
        "--ckpt_path",
        type=Optional[str],
        default=None,
        help=f"A checkpoint of fit, or a shipped model's name (default: {DEFAULT_MODEL}).",
    )
    p.add_argument(
        "--output",
        type=Optional[str],
        default=None,
        help="The ONNX file (default: the checkpoint's path with .onnx, or <name>.onnx).",
    )
    p.add_argument("--overwrite", type=bool, default=False, help="Replace an existing --output file.")
    p.add_argument(
        "--check", type=bool, default=True, help="Compare ONNX Runtime with PyTorch on the shipped sample images."
    )
    return p


def run(argv: list[str]) -> None:
    options = parser().parse_args(argv)
    from crack_lightning.export.checked import export_model  # torch from here on

    exported = export_model(options.ckpt_path or DEFAULT_MODEL, options.output, options.overwrite, options.check)
    print(f"Exported {options.ckpt_path or DEFAULT_MODEL} to {exported.path}")
    if exported.difference is not None:
        print(
            f"ONNX Runtime vs PyTorch, {exported.checked} sample images: max abs difference of probabilities "
            f"{exported.difference:.2e}"
        )
