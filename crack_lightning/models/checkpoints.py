"""Checkpoint files of ``fit``: loaded as tensors and plain data only, with a one-line error for each way a file can
be wrong, and which kind of model one holds (its ``task`` hyperparameter: a registered task's name,
:mod:`crack_lightning.tasks`)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import torch

from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.runtime.models import shipped_model
from crack_lightning.tasks.registry import DEFAULT_TASK, task_named
from crack_lightning.tasks.segmentation import SEGMENTATION as SEGMENTATION_TASK

CLASSIFICATION, SEGMENTATION = DEFAULT_TASK, SEGMENTATION_TASK.name
FIT_HINT = "pass a .ckpt written by `python -m crack_lightning fit`"
# Module paths before 0.3 that checkpoints of fit name, for the hint that says where their classes are now.
MOVED = {
    "crack_lightning.model": "crack_lightning.models.classifier",
    "crack_lightning.segmentation_model": "crack_lightning.models.segmenter",
}


def read_checkpoint_file(path: str | os.PathLike, option: str = "checkpoint") -> dict[str, Any]:
    """A checkpoint's dictionary (``weights_only=True``): one line for a missing, damaged or foreign file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise OptionError(option, f"no file {path}; {FIT_HINT}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for files that are not checkpoints (KeyError for text)
        with open(path, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
        what = "is cut short or damaged (an interrupted copy?)" if zipped else "is not a PyTorch checkpoint"
        raise OptionError(option, f"{path} {what}; pass a .ckpt written by fit") from err
    if not isinstance(checkpoint, dict) or not all(
        isinstance(checkpoint.get(key), dict) for key in ("state_dict", "hyper_parameters")
    ):
        raise OptionError(option, f"{path} is not a crack_lightning checkpoint (another program's file?); {FIT_HINT}")
    class_path = checkpoint["hyper_parameters"].get("_class_path", "")
    module, _, name = class_path.rpartition(".")
    if module in MOVED:
        raise OptionError(
            option,
            f"{path} names the class {class_path} of crack_lightning before 0.3; re-save it naming {MOVED[module]}.{name} "
            "(torch.load it, set checkpoint['hyper_parameters']['_class_path'], torch.save it)",
        )
    return checkpoint


def task_of(checkpoint: dict[str, Any]) -> str:
    """The task a checkpoint's hyperparameters name (``segmentation`` for a
    :class:`~crack_lightning.models.segmenter.CrackSegmenter`'s); the classifier's name none: ``classification``."""
    return str(checkpoint["hyper_parameters"].get("task", CLASSIFICATION))


def checkpoint_task(path: str | os.PathLike) -> str | None:
    """The task of the checkpoint at ``path``; None when it is not a readable checkpoint (the command says why)."""
    try:
        return task_of(read_checkpoint_file(path))
    except CrackLightningError:
        return None


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The file of a checkpoint: the shipped model's, when ``path`` is its name (``concrete-v1``)."""
    shipped = shipped_model(str(path))
    return shipped.checkpoint if shipped is not None else Path(path).expanduser()


def read_checkpoint(path: str | os.PathLike, option: str = "checkpoint", task: str = CLASSIFICATION) -> dict[str, Any]:
    """The one checkpoint reader: a ``task`` model's checkpoint (or a shipped model's, by name) loaded with
    ``weights_only=True``, with a one-line error for each way a file can be wrong (the task's ``check_checkpoint``)."""
    path = checkpoint_path(path)
    checkpoint = read_checkpoint_file(path, option)
    task_named(task).part("check_checkpoint")(checkpoint, path, option)
    return checkpoint


def check_segmenter(checkpoint: dict[str, Any], path: Path, option: str) -> None:
    """A one-line error unless ``checkpoint`` is a crack segmenter's."""
    if task_of(checkpoint) != SEGMENTATION or not any(key.startswith("net.") for key in checkpoint["state_dict"]):
        raise OptionError(
            option,
            f"{path} is not a crack segmenter's checkpoint; pass one written by `fit --config configs/segment.yaml`",
        )


def check_classifier(checkpoint: dict[str, Any], path: Path, option: str) -> None:
    """A one-line error unless ``checkpoint`` is a trained crack classifier's."""
    state, hparams = checkpoint["state_dict"], checkpoint["hyper_parameters"]
    if task_of(checkpoint) != CLASSIFICATION:
        raise OptionError(
            option,
            f"{path} holds a crack {task_of(checkpoint)} model, not a classifier; pass a classifier's checkpoint",
        )
    if "crack_class" not in hparams or not any(key.startswith("backbone.") for key in state):
        raise OptionError(option, f"{path} is not a crack_lightning checkpoint (another program's file?); {FIT_HINT}")
    if not hparams.get("class_names") or not any(key.startswith("head.") for key in state):
        raise OptionError(option, f"{path} holds an untrained model (no classes); pass a checkpoint of a fit run")


def import_saved_class(checkpoint: dict[str, Any]) -> None:
    """Import the module of the class a checkpoint names, before Lightning loads it: Lightning loads a class only from
    a module already imported."""
    class_path = checkpoint["hyper_parameters"].get("_class_path", "")
    if class_path.startswith("crack_lightning."):
        importlib.import_module(class_path.rpartition(".")[0])
