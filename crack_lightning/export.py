"""Export: a checkpoint to ONNX, normalisation and softmax inside the graph, class names in the metadata."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms import v2

from crack_lightning import __version__
from crack_lightning.data import read_rgb
from crack_lightning.errors import CrackLightningError
from crack_lightning.model import CrackClassifier

INPUT_NAME, OUTPUT_NAME = "images", "probabilities"
OPSET = 18  # ONNX Runtime 1.14+ and most other runtimes run it


class NormalizedClassifier(nn.Module):
    """The deployed function: RGB ``float32`` images in [0, 1], ``(N, 3, S, S)`` → class probabilities ``(N, C)``."""

    def __init__(self, model: CrackClassifier) -> None:
        super().__init__()
        if model.preprocessing is None:
            raise CrackLightningError("the model has no preprocessing: export a checkpoint of a fit run")
        _, mean, std = model.preprocessing
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std).softmax(dim=1)


def onnx_input(paths: Sequence[str | os.PathLike], size: int) -> torch.Tensor:
    """Image files as the exported model takes them: float32 RGB ``(N, 3, size, size)`` in [0, 1]."""
    return torch.stack([v2.functional.resize(read_rgb(p), [size, size], antialias=True) for p in paths]) / 255


def metadata(model: CrackClassifier) -> dict[str, str]:
    """What a deployment needs to know, stored as ONNX ``metadata_props``."""
    size, mean, std = model.preprocessing
    return {
        "class_names": json.dumps(model.class_names),
        "crack_class": model.hparams.crack_class,
        "crack_index": str(model.crack_index),
        "image_size": str(size),
        "input": f"{INPUT_NAME}: float32 (batch, 3, {size}, {size}), RGB, values in [0, 1] (pixel / 255), resized "
        f"to {size}x{size}; normalisation is inside the graph",
        "output": f"{OUTPUT_NAME}: float32 (batch, {len(model.class_names)}), softmax over class_names",
        "normalization_mean": json.dumps(list(mean)),
        "normalization_std": json.dumps(list(std)),
        "producer": f"crack-lightning {__version__}",
    }


def export_onnx(model: CrackClassifier, output: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``model`` as ONNX with a dynamic batch dimension; an existing file is kept unless ``overwrite``."""
    try:
        import onnx
    except ImportError as err:
        raise CrackLightningError("export needs ONNX: pip install 'crack-lightning[export]'") from err
    output = Path(output)
    if output.exists() and not overwrite:
        raise CrackLightningError(f"--output: {output} exists; pass another --output or --overwrite")
    wrapper = NormalizedClassifier(model.cpu().inference_copy()).eval()  # BatchNorm folded: a smaller graph
    size = model.preprocessing[0]
    example = torch.rand(2, 3, size, size)
    partial = output.with_name(output.name + ".partial")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        program = torch.onnx.export(
            wrapper, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("batch")}}, opset_version=OPSET, dynamo=True,
            optimize=True, verbose=False,
        )
        proto = program.model_proto
        for key, value in metadata(model).items():
            proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
        onnx.checker.check_model(proto)
        onnx.save(proto, partial)
        os.replace(partial, output)  # the output appears whole or not at all
    finally:
        partial.unlink(missing_ok=True)
    return output


def compare_with_onnxruntime(model: CrackClassifier, path: str | os.PathLike, images: torch.Tensor) -> float:
    """Max absolute difference of probabilities between ONNX Runtime and PyTorch on ``images`` (float, [0, 1])."""
    try:
        import onnxruntime
    except ImportError as err:
        raise CrackLightningError("the check needs ONNX Runtime: pip install 'crack-lightning[export]'") from err
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_probabilities = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
    with torch.no_grad():
        torch_probabilities = NormalizedClassifier(model.cpu().eval())(images).numpy()
    return float(abs(onnx_probabilities - torch_probabilities).max())
