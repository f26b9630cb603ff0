"""The GPU backend: a checkpoint's network on a CUDA GPU through PyTorch (bf16), for ``predict`` and ``scan`` with
``device="cuda"``.

A GPU session is a drop-in for a CPU runtime's: ``uint8`` NumPy batch in, float32 NumPy out, the same network as the
exported graph (the checkpoint's LightningModule, normalisation and softmax or sigmoid included), so the probabilities
match the CPU path's within bf16's rounding. The checkpoint is loaded once: :func:`open_checkpoint` gives both the
session and the metadata its exported graph would carry. :func:`crack_lightning.load_model` imports this (and torch)
only for ``device: cuda``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from crack_lightning.export.onnx import Normalised
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.runtime.backends import Session
from crack_lightning.tasks.registry import task_of


def segmenter_network(model: Any) -> torch.nn.Module:
    """A segmenter's network as its graph runs: ``uint8`` images in, crack probabilities out (the segmentation
    task's ``gpu_network``)."""
    return Normalised(model.net, model.hparams.mean, model.hparams.std, activation="sigmoid")


def classifier_network(model: Any) -> torch.nn.Module:
    """A classifier's network as its graph runs: ``uint8`` images in, class probabilities out."""
    _, mean, std = model.preprocessing
    return Normalised(model.network(), mean, std)


def gpu() -> torch.device:
    """The GPU a session runs on: the current CUDA device."""
    return torch.device("cuda", torch.cuda.current_device())


def open_checkpoint(
    checkpoint: str | os.PathLike, precision: str = "bf16", option: str = "checkpoint"
) -> tuple[dict[str, Any], Session, str]:
    """``(metadata, run, why)`` of a checkpoint, loaded once: the metadata its exported graph carries (``task``,
    classes or threshold, normalisation), and :func:`session`'s ``run`` and ``why`` on the GPU."""
    model = load_checkpoint(checkpoint, option)
    return task_of(model).part("metadata")(model), *session(model, gpu(), precision)


def session(model: Any, device: torch.device, precision: str = "bf16") -> tuple[Session, str]:
    """``(run, why)``: ``run(uint8 (N, 3, H, W)) -> float32`` probabilities of a loaded classifier's or segmenter's
    network on ``device``, as its exported graph answers (class probabilities, or pixel probabilities
    ``(N, 1, H, W)``); ``why`` names the precision and the device, for the log.

    ``precision``: ``bf16`` (CUDA autocast; the normalisation and the softmax or sigmoid stay float32) or ``32``.
    """
    network = task_of(model).part("gpu_network")(model)
    cuda = device.type == "cuda"
    network = network.to(device).eval().requires_grad_(False).to(memory_format=torch.channels_last)
    bf16 = cuda and precision != "32" and torch.cuda.is_bf16_supported()
    # No cudnn.benchmark: each new batch shape (a scan's first and last batch, each photo size's windows) would start a
    # kernel search of its own. Not measured: the suspected cause of the H200 run's slow classifier scan (1,200 tiles
    # in 5 batches, 8 s).

    def run(batch: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(np.ascontiguousarray(batch))
        if cuda:  # pinned: the copy to the GPU runs without the CPU waiting on it
            images = images.pin_memory().to(device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = network(images.contiguous(memory_format=torch.channels_last))
        return out.float().cpu().numpy()

    name = torch.cuda.get_device_name(device) if cuda else "the CPU (PyTorch)"
    return run, f"{'bf16' if bf16 else 'float32'} on {name}"


def torch_session(
    checkpoint: str | os.PathLike, device: str = "cuda", precision: str = "bf16", option: str = "checkpoint"
) -> tuple[Session, str]:
    """:func:`session` of the checkpoint at ``checkpoint`` on ``device`` (``cuda``; ``cpu`` for tests)."""
    return session(load_checkpoint(checkpoint, option), gpu() if device == "cuda" else torch.device(device), precision)
