"""The one ONNX exporter: a trained network, BatchNorm folded, as a graph that takes ``uint8`` images.

The graph normalises its input itself (one multiply-add, nearly free inside the graph) and returns float32
probabilities: a classifier's per class, a segmenter's per pixel. Its metadata holds what a deployment needs
(``task``; classes, crack class and input size, or threshold and window; normalisation). This module needs torch;
running the graph (:mod:`crack_lightning.runtime.classifier`, :mod:`crack_lightning.runtime.segmenter`) does not.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from copy import deepcopy
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from crack_lightning import __version__
from crack_lightning.data.transforms import normalisation
from crack_lightning.runtime.onnx_file import with_metadata
from crack_lightning.runtime.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW
from crack_lightning.tasks.classification import CLASSIFICATION
from crack_lightning.tasks.segmentation import SEGMENTATION

INPUT_NAME, OUTPUT_NAME = "images", "probabilities"
OPSET = 17


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm into the convolution before it, in place; returns ``module``.

    Folding uses the running statistics, exactly what eval mode computes, and saves the BatchNorm passes (about a
    third of MobileNetV2's CPU time).
    """
    for sequence in module.modules():
        if isinstance(sequence, nn.Sequential):
            layers = list(sequence)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                    sequence[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                    sequence[i + 1] = nn.Identity()
    return module


class Normalised(nn.Module):
    """``uint8`` images in, ``network``'s output of the normalised float32 images out, through ``activation``
    (softmax over dim 1: class probabilities; sigmoid: pixel probabilities): normalising whole batches is 2.5x
    cheaper than image by image in a loader."""

    def __init__(
        self,
        network: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        activation: Literal["softmax", "sigmoid", "none"] = "softmax",
    ) -> None:
        super().__init__()
        self.network = network
        self.activation = activation
        scale, shift = normalisation(mean, std)  # (x / 255 - mean) / std in one multiply-add
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.network(images.float() * self.scale - self.shift).float()
        if self.activation == "softmax":
            return out.softmax(dim=1)
        return torch.sigmoid(out) if self.activation == "sigmoid" else out


def onnx_graph(
    network: nn.Module, shape: Sequence[int], dtype: torch.dtype = torch.float32, dynamic_sides: bool = False
) -> bytes:
    """``network`` exported to ONNX in memory (float32 compute), with a dynamic batch (and sides if asked)."""
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    if dynamic_sides:  # a fixed image size lets the runtime plan every layer: 6-9% faster
        axes[INPUT_NAME].update({2: "height", 3: "width"})
        axes[OUTPUT_NAME].update({2: "height", 3: "width"})
    buffer = io.BytesIO()
    # no autocast: built inside a bf16-mixed training step, the graph must still be float32
    with warnings.catch_warnings(), torch.no_grad(), torch.autocast("cpu", enabled=False):
        # The TorchScript exporter: 0.4 s against 13 s for the dynamo one, which a first start cannot afford.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network.cpu().eval(),
            (torch.zeros(*shape, dtype=dtype),),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def folded_copy(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` with its BatchNorms folded, gradients off; ``module`` is untouched."""
    return fold_batchnorm(deepcopy(module).cpu().eval()).requires_grad_(False)


def classifier_metadata(model: Any) -> dict[str, Any]:
    """The metadata of a :class:`~crack_lightning.models.classifier.CrackClassifier`'s graph."""
    size, mean, std = model.preprocessing
    return {
        "task": CLASSIFICATION.name,
        "class_names": list(model.class_names),
        "crack_class": model.hparams.crack_class,
        "image_size": int(size),
        "mean": list(mean),
        "std": list(std),
        "input": f"{INPUT_NAME}: uint8 (batch, 3, {size}, {size}), RGB, resized to {size}x{size}; normalisation is inside",
        "output": f"{OUTPUT_NAME}: float32 (batch, {len(model.class_names)}), softmax over class_names",
        "producer": f"crack-lightning {__version__}",
    }


def export_classifier(model: Any, extra_metadata: dict[str, Any] | None = None) -> bytes:
    """A trained :class:`~crack_lightning.models.classifier.CrackClassifier` as ONNX bytes with its metadata."""
    if model.preprocessing is None or not model.class_names:
        raise ValueError("the model has no classes or preprocessing: export a checkpoint of a fit run")
    size, mean, std = model.preprocessing
    network = Normalised(folded_copy(model.network()), mean, std)
    graph = onnx_graph(network, (2, 3, size, size), torch.uint8)
    return with_metadata(graph, {**classifier_metadata(model), **(extra_metadata or {})})


def segmenter_network(model: Any) -> nn.Module:
    """A :class:`~crack_lightning.models.segmenter.CrackSegmenter`'s network for inference, BatchNorm folded:
    ``uint8`` images ``(N, 3, H, W)`` -> crack probabilities ``(N, 1, H, W)`` float32, any H and W."""
    hparams = model.hparams
    return Normalised(folded_copy(model.net).float(), hparams.mean, hparams.std, activation="sigmoid").eval()


def torch_runner(network: nn.Module):
    """``run(uint8 batch (N, 3, h, w) numpy) -> numpy``: ``network`` in PyTorch, for
    :func:`crack_lightning.runtime.windows.segment_photo` where no exported graph is wanted (tests, benchmarks)."""

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)).numpy()

    return run


def segmenter_metadata(model: Any) -> dict[str, Any]:
    """The metadata of a :class:`~crack_lightning.models.segmenter.CrackSegmenter`'s graph: the mask threshold, the
    normalisation, and the window size that the windowed inference (:mod:`crack_lightning.runtime.windows`) uses."""
    hparams = model.hparams
    return {
        "task": SEGMENTATION.name,
        "threshold": float(model.threshold),  # fixed, or chosen on validation
        "mean": [float(v) for v in hparams.mean],
        "std": [float(v) for v in hparams.std],
        "window": DEFAULT_WINDOW,
        "overlap": DEFAULT_OVERLAP,
        "input": f"{INPUT_NAME}: uint8 (batch, 3, height, width), RGB, any size (photos run in windows of "
        f"{DEFAULT_WINDOW} px); normalisation is inside",
        "output": f"{OUTPUT_NAME}: float32 (batch, 1, height, width), the crack probability of each pixel",
        "producer": f"crack-lightning {__version__}",
    }


def export_segmenter(model: Any, extra_metadata: dict[str, Any] | None = None) -> bytes:
    """A trained :class:`~crack_lightning.models.segmenter.CrackSegmenter` as ONNX bytes with its metadata: its own
    inference network (BatchNorm folded, ``uint8`` in, sigmoid out), dynamic batch, height and width."""
    graph = onnx_graph(segmenter_network(model), (1, 3, 64, 64), torch.uint8, dynamic_sides=True)
    return with_metadata(graph, {**segmenter_metadata(model), **(extra_metadata or {})})


def export_checkpoint(path: Any, option: str = "checkpoint") -> bytes:
    """A checkpoint of ``fit``, a classifier's, a segmenter's or another task's (checked first, one line for each way
    it can be wrong), as ONNX bytes by its task's ``export``."""
    from crack_lightning.models.loading import load_checkpoint
    from crack_lightning.tasks.registry import task_of

    model = load_checkpoint(path, option)
    return task_of(model).part("export")(model)
