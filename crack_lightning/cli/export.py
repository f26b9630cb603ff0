"""``export``: a model (a classifier or a segmenter) as one ONNX file with its metadata, checked against PyTorch on
the shipped sample images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from crack_lightning.cli.options import CommandParser
from crack_lightning.errors import CrackLightningError
from crack_lightning.runtime.models import DEFAULT_MODEL, shipped_model
from crack_lightning.io.atomic import write_atomically


def parser() -> CommandParser:
    p = CommandParser(
        "export",
        "Write a model as ONNX: input uint8 RGB images (N, 3, S, S) resized to the model's size S, output float32 class "
        "probabilities; normalisation inside, BatchNorm folded, class names, size and normalisation in the metadata. "
        "A segmenter's checkpoint: input uint8 RGB photos (N, 3, H, W) of any size, output float32 crack probabilities "
        "(N, 1, H, W); threshold, window size and normalisation in the metadata.",
    )
    p.add_argument("--ckpt_path", type=Optional[str], default=None, help=f"A checkpoint of fit, or a shipped model's name (default: {DEFAULT_MODEL}).")
    p.add_argument("--output", type=Optional[str], default=None, help="The ONNX file (default: the checkpoint's path with .onnx, or <name>.onnx).")
    p.add_argument("--overwrite", type=bool, default=False, help="Replace an existing --output file.")
    p.add_argument("--check", type=bool, default=True, help="Compare ONNX Runtime with PyTorch on the shipped sample images.")
    return p


def run(argv: list[str]) -> None:
    options = parser().parse_args(argv)
    name = options.ckpt_path or DEFAULT_MODEL
    shipped = shipped_model(name)
    output = Path(options.output or (f"{name}.onnx" if shipped else Path(name).with_suffix(".onnx"))).expanduser()
    if output.exists() and not options.overwrite:
        raise CrackLightningError(f"--output: {output} exists; pass another --output or --overwrite true")
    from crack_lightning.export.onnx import export_classifier  # torch from here on
    from crack_lightning.models.loading import load_checkpoint
    from crack_lightning.models.segmenter import CrackSegmenter

    model = load_checkpoint(name)
    if isinstance(model, CrackSegmenter):
        return export_segmenter_checkpoint(model, output, options.check)
    graph = shipped.graph.read_bytes() if shipped else export_classifier(model)
    try:
        write_atomically(output, graph)
    except OSError as err:
        raise CrackLightningError(f"--output: cannot write {output} ({err.strerror}); pass a writable path") from err
    print(f"Exported {name} to {output}")
    if options.check:
        difference, count = compare_with_torch(model, output)
        print(f"ONNX Runtime vs PyTorch, {count} sample images: max abs difference of probabilities {difference:.2e}")


def export_segmenter_checkpoint(model, output: Path, check: bool) -> None:
    """Write a segmenter's graph; with ``check``, compare it in ONNX Runtime with PyTorch on a few sample images."""
    import numpy as np
    import torch
    from PIL import Image

    from crack_lightning.data.classification import sample_root
    from crack_lightning.export.onnx import export_segmenter
    from crack_lightning.runtime.segmenter import Segmenter

    try:
        write_atomically(output, export_segmenter(model))
    except OSError as err:
        raise CrackLightningError(f"--output: cannot write {output} ({err.strerror}); pass a writable path") from err
    print(f"Exported the segmenter to {output}")
    if check:
        segmenter = Segmenter.from_file(output, backend="onnxruntime")
        paths = sorted((sample_root() / "Positive").glob("*.jpg"))[:4]
        batch = np.stack([np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in paths])
        with torch.no_grad():
            expected = model.predict_step(torch.from_numpy(batch), 0).numpy()
        difference = float(np.abs(segmenter.probabilities(batch) - expected).max())
        print(f"ONNX Runtime vs PyTorch, {len(paths)} sample images: max abs difference of probabilities {difference:.2e}")


def compare_with_torch(model, path: str | os.PathLike) -> tuple[float, int]:
    """Max absolute difference of probabilities between the ONNX file in ONNX Runtime and the PyTorch model."""
    import numpy as np
    import torch

    from crack_lightning.data.classification import sample_root
    from crack_lightning.runtime.classifier import Classifier

    paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[:8]]
    classifier = Classifier.from_file(path, backend="onnxruntime")
    batch = np.stack([classifier.prepare(p) for p in paths])
    with torch.no_grad():
        expected = model.eval().predict_step(torch.from_numpy(batch), 0).numpy()
    return float(np.abs(classifier.probabilities(batch) - expected).max()), len(paths)
