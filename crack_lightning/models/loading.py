"""A trained LightningModule from its checkpoint: the classifier or the segmenter, as the checkpoint's ``task`` says."""

from __future__ import annotations

import importlib
import os

from crack_lightning.models.checkpoints import (
    SEGMENTATION,
    checkpoint_path,
    read_checkpoint,
    read_checkpoint_file,
    task_of,
)
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.models.segmenter import CrackSegmenter


def load_checkpoint(path: str | os.PathLike, option: str = "--ckpt_path") -> CrackClassifier | CrackSegmenter:
    """A trained :class:`~crack_lightning.models.classifier.CrackClassifier`, or a
    :class:`~crack_lightning.models.segmenter.CrackSegmenter` in eval mode, from its checkpoint (or a shipped
    model's, by name), on the CPU, checked first by :func:`~crack_lightning.models.checkpoints.read_checkpoint`."""
    path = checkpoint_path(path)
    # Lightning loads a checkpoint's class path only from a module already imported: a checkpoint saved before the
    # layout by concept names the old paths (crack_lightning.renamed maps them onto the modules imported above).
    for old in ("crack_lightning.model", "crack_lightning.segmentation_model"):
        importlib.import_module(old)
    task = task_of(read_checkpoint_file(path, option))
    read_checkpoint(path, option, task)
    if task == SEGMENTATION:
        return CrackSegmenter.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
    return CrackClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
