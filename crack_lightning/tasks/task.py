"""A task: what one kind of model does (classify patches, segment cracks...), and where each of its parts lives.
Every part is named by an import path (``"package.module:attribute"``) and imported when it is first asked for, so
that looking a task up imports nothing: the torch-free commands stay free of torch, the runtime of the scan. A task
defined outside the package (a test's, a plugin's) may give its parts as the objects themselves."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from crack_lightning.errors import CrackLightningError

Ref = Any  # "package.module:attribute", or the object itself


def resolve(ref: Ref) -> Any:
    """The object ``ref`` names (a ``"module:attribute"`` string, imported now), or ``ref`` itself."""
    if not isinstance(ref, str):
        return ref
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Task:
    """One task's parts. Generic code (``load_model``, the scan pipeline, checkpoints, export) finds a model's task by
    the ``task`` its graph's metadata, its checkpoint's hyperparameters or its card names, and asks it for a part
    with :meth:`part`; it never branches on a task's name.

    Torch-free parts, for ``load_model`` and ``scan``:
        predictor: the model ``load_model`` gives for a graph of this task, ``Model(graph, source, **run_options)``:
            a runtime predictor (:mod:`crack_lightning.runtime`) with ``task``, ``source`` and ``graph``, and ``scan``.
        scan: its :class:`~crack_lightning.scanning.tasks.ScanTask` (``ScanTask.of(model, **options)``), which names
            its result type (CSV columns, pictures, ``to_dict``), its second CSV, its report page and its map.
        command: the ``scan`` command's summary of a scan with a model of this task, ``(flags, counts, options)``.
    Torch parts, for training and export:
        module, datamodule: its LightningModule and LightningDataModule.
        lightning_cli: ``run(argv)``: its LightningCLI, which ``fit``, ``validate`` and ``test`` run when a config,
            ``--model`` or ``--ckpt_path`` names its module (the classifier's where none names another task).
        check_checkpoint: ``(checkpoint, path, option)``: a one-line error when a checkpoint's dictionary is not one of
            this task's (``crack_lightning.models.checkpoints.read_checkpoint`` calls it).
        export: ``(module, extra_metadata) -> bytes``: a trained ``module`` as an ONNX graph with its metadata.
        metadata: ``(module) -> dict``: the metadata of that graph (``task`` included).
        gpu_network: ``(module) -> torch.nn.Module``: its network as the graph runs it (``uint8`` in), for the GPU.
    """

    name: str  # as the graph's metadata, the checkpoint and the model card say it
    what: str  # a model of the task in words, for log lines: "crack classifier"
    predictor: Ref
    scan: Ref
    command: Ref | None = None
    module: Ref | None = None
    datamodule: Ref | None = None
    lightning_cli: Ref | None = None
    check_checkpoint: Ref | None = None
    export: Ref | None = None
    metadata: Ref | None = None
    gpu_network: Ref | None = None

    @property
    def module_name(self) -> str:
        """The class name of its LightningModule (as a config names it), without importing it."""
        return self.module.rsplit(":", 1)[-1] if isinstance(self.module, str) else self.module.__name__

    def part(self, name: str) -> Any:
        """The part called ``name`` (``"predictor"``, ``"module"``...), imported on first use."""
        ref = getattr(self, name)
        if ref is None:
            raise CrackLightningError(f"a {self.what} ({self.name!r} model) has no {name}")
        return resolve(ref)
