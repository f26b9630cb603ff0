"""A model written as one ONNX file, checked against PyTorch: what the ``export`` command runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crack_lightning.data.classification import sample_root
from crack_lightning.errors import OptionError
from crack_lightning.io.atomic import write_atomically
from crack_lightning.io.images import read_rgb
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.runtime.models import DEFAULT_MODEL, shipped_model
from crack_lightning.scanning.models import model_from_graph
from crack_lightning.tasks.registry import task_of

CHECK_IMAGES = 8  # sample images of each class the check runs


@dataclass(frozen=True)
class Exported:
    """An exported file, and the largest difference of probabilities between it in ONNX Runtime and the model in
    PyTorch on ``checked`` sample images (``None``: not checked)."""

    path: Path
    difference: float | None = None
    checked: int = 0


def check_graph(model: Any, graph: bytes, count: int = CHECK_IMAGES) -> tuple[float, int]:
    """``(difference, images)``: the largest absolute difference of probabilities between ``graph`` in ONNX Runtime
    and ``model`` (a classifier's or a segmenter's LightningModule) in PyTorch, on ``count`` shipped sample images of
    each class."""
    paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[:count]]
    exported = model_from_graph(graph, "the exported graph", backend="onnxruntime")
    # the network's input: a classifier's images at its size, a segmenter's as they are
    prepare = getattr(exported, "prepare", lambda path: read_rgb(path).transpose(2, 0, 1))
    batch = np.stack([prepare(path) for path in paths])
    with torch.no_grad():
        expected = model.eval().predict_step(torch.from_numpy(batch), 0).numpy()
    return float(np.abs(exported.probabilities(batch) - expected).max()), len(paths)


def export_model(
    model: str | os.PathLike = DEFAULT_MODEL,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    check: bool = True,
) -> Exported:
    """Write ``model`` (a checkpoint of ``fit``, or a shipped model's name) as one ONNX file with its metadata:
    ``output`` (default: the checkpoint's path with ``.onnx``, or ``<name>.onnx``), kept where it exists unless
    ``overwrite``; with ``check``, its probabilities compared with PyTorch's (:func:`check_graph`)."""
    name = os.fspath(model)
    shipped = shipped_model(name)
    path = Path(output or (f"{name}.onnx" if shipped else Path(name).with_suffix(".onnx"))).expanduser()
    if path.exists() and not overwrite:
        raise OptionError("output", f"{path} exists; pass another file, or overwrite it")
    network = load_checkpoint(name, "model")
    if shipped is not None:
        graph = shipped.graph.read_bytes()
    else:
        graph = task_of(network).part("export")(network)
    try:
        write_atomically(path, graph)
    except OSError as err:
        raise OptionError("output", f"cannot write {path} ({err.strerror}); pass a writable path") from err
    return Exported(path, *check_graph(network, graph)) if check else Exported(path)
