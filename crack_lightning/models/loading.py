"""A trained LightningModule from its checkpoint: the classifier or the segmenter, as the checkpoint's ``task`` says."""

from __future__ import annotations

import os

from crack_lightning.models.checkpoints import (
    SEGMENTATION,
    checkpoint_path,
    import_saved_class,
    read_checkpoint,
    read_checkpoint_file,
    task_of,
)
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.models.segmenter import CrackSegmenter


def load_checkpoint(path: str | os.PathLike, option: str = "checkpoint") -> CrackClassifier | CrackSegmenter:
    """A trained :class:`~crack_lightning.models.classifier.CrackClassifier`, or a
    :class:`~crack_lightning.models.segmenter.CrackSegmenter` in eval mode, from its checkpoint (or a shipped
    model's, by name), on the CPU, checked first by :func:`~crack_lightning.models.checkpoints.read_checkpoint`."""
    path = checkpoint_path(path)
    checkpoint = read_checkpoint_file(path, option)
    task = task_of(checkpoint)
    read_checkpoint(path, option, task)
    import_saved_class(checkpoint)
    if task == SEGMENTATION:
        return CrackSegmenter.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
    return CrackClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
