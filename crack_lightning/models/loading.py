"""A trained LightningModule from its checkpoint, of the task the checkpoint names (:mod:`crack_lightning.tasks`)."""

from __future__ import annotations

import os
from typing import Any

from crack_lightning.models.checkpoints import (
    checkpoint_path,
    import_saved_class,
    read_checkpoint,
    read_checkpoint_file,
    task_of,
)
from crack_lightning.tasks.registry import task_named


def load_checkpoint(path: str | os.PathLike, option: str = "checkpoint") -> Any:
    """A trained LightningModule in eval mode, on the CPU, from its checkpoint (or a shipped model's, by name): a
    :class:`~crack_lightning.models.classifier.CrackClassifier`, a
    :class:`~crack_lightning.models.segmenter.CrackSegmenter`, or the ``module`` of the task its hyperparameters
    name; checked first by :func:`~crack_lightning.models.checkpoints.read_checkpoint`."""
    path = checkpoint_path(path)
    task = task_named(task_of(read_checkpoint_file(path, option)), str(path))
    checkpoint = read_checkpoint(path, option, task.name)
    import_saved_class(checkpoint)
    return task.part("module").load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
