"""Checkpoint files of ``fit``: loaded as tensors and plain data only, with a one-line error for each way a file can
be wrong, and which kind of model one holds (its ``task`` hyperparameter: classification or segmentation)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from crack_lightning.errors import CrackLightningError

CLASSIFICATION, SEGMENTATION = "classification", "segmentation"
FIT_HINT = "pass a .ckpt written by `python -m crack_lightning fit`"


def read_checkpoint_file(path: str | os.PathLike, option: str = "--ckpt_path") -> dict[str, Any]:
    """A checkpoint's dictionary (``weights_only=True``): one line for a missing, damaged or foreign file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CrackLightningError(f"{option}: no file {path}; {FIT_HINT}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for files that are not checkpoints (KeyError for text)
        with open(path, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
        what = "is cut short or damaged (an interrupted copy?)" if zipped else "is not a PyTorch checkpoint"
        raise CrackLightningError(f"{option}: {path} {what}; pass a .ckpt written by fit") from err
    if not isinstance(checkpoint, dict) or not all(
        isinstance(checkpoint.get(key), dict) for key in ("state_dict", "hyper_parameters")
    ):
        raise CrackLightningError(f"{option}: {path} is not a crack_lightning checkpoint (another program's file?); {FIT_HINT}")
    return checkpoint


def task_of(checkpoint: dict[str, Any]) -> str:
    """``segmentation`` for a :class:`~crack_lightning.segmentation_model.CrackSegmenter`'s checkpoint, else
    ``classification`` (the classifier's hyperparameters name no task)."""
    return str(checkpoint["hyper_parameters"].get("task", CLASSIFICATION))


def checkpoint_task(path: str | os.PathLike) -> str | None:
    """The task of the checkpoint at ``path``; None when it is not a readable checkpoint (the command says why)."""
    try:
        return task_of(read_checkpoint_file(path))
    except CrackLightningError:
        return None


def read_segmentation_checkpoint(path: str | os.PathLike, option: str = "--ckpt_path") -> dict[str, Any]:
    """A crack segmenter's checkpoint, checked: a one-line error for any other file."""
    checkpoint = read_checkpoint_file(path, option)
    if task_of(checkpoint) != SEGMENTATION or not any(key.startswith("net.") for key in checkpoint["state_dict"]):
        raise CrackLightningError(f"{option}: {Path(path).expanduser()} is not a crack segmenter's checkpoint; "
                                  "pass one written by `fit --config configs/segment.yaml`")
    return checkpoint


def load_segmenter(path: str | os.PathLike, option: str = "--ckpt_path"):
    """A trained :class:`~crack_lightning.segmentation_model.CrackSegmenter` from its checkpoint, on the CPU, in eval
    mode (checked first by :func:`read_segmentation_checkpoint`)."""
    from crack_lightning.segmentation_model import CrackSegmenter

    read_segmentation_checkpoint(path, option)
    return CrackSegmenter.load_from_checkpoint(Path(path).expanduser(), map_location="cpu", weights_only=True).eval()
