"""Module paths before 0.3 that saved files name: a run's ``config.yaml`` and a segmenter checkpoint's
``_class_path`` say ``crack_lightning.segmentation_model.CrackSegmenter``. Importing an old path gives the new module,
so those files keep working; the CHANGELOG lists every rename."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# Only modules whose classes appear as class paths in configs and checkpoints.
OLD_TO_NEW = {
    "crack_lightning.model": "crack_lightning.models.classifier",
    "crack_lightning.segmentation_model": "crack_lightning.models.segmenter",
    "crack_lightning.segmentation_data": "crack_lightning.data.segmentation",
    "crack_lightning.callbacks": "crack_lightning.training.callbacks",
    "crack_lightning.prediction_writer": "crack_lightning.training.prediction_writer",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in OLD_TO_NEW else None

    def create_module(self, spec):
        return importlib.import_module(OLD_TO_NEW[spec.name])

    def exec_module(self, module) -> None:
        pass  # the new module ran already


def install() -> None:
    """Let the old module paths import (once per process)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())  # before an editable install's finder, which maps by name
