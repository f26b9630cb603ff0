"""crack-lightning: tell cracked concrete from sound concrete, and find and measure the cracks in whole photos.

Without torch: ``load_model()`` (the shipped segmenter, the shipped classifier ``concrete-v1``, a checkpoint or an
``.onnx``), its
``predict(images)`` and ``scan(photo)``, and ``scan(source, output, model=...)`` for a folder of photos
(:mod:`crack_lightning.api`). With torch and Lightning: ``CrackClassifier`` and ``CrackDataModule`` train one.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0.dev0"

from crack_lightning.api import evaluate, load_model, scan

__all__ = ["CrackClassifier", "CrackDataModule", "evaluate", "load_model", "scan"]


def __getattr__(name: str) -> Any:
    # Lazy: the torch-free API and commands must not import torch through the package.
    if name == "CrackClassifier":
        from crack_lightning.models.classifier import CrackClassifier

        return CrackClassifier
    if name == "CrackDataModule":
        from crack_lightning.data.classification import CrackDataModule

        return CrackDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
