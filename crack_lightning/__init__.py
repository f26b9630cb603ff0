"""crack-lightning: MobileNetV2 transfer learning that tells cracked concrete from sound concrete.

``load_model()`` runs the shipped model (or a checkpoint) without torch; ``CrackClassifier`` and ``CrackDataModule``
train one with Lightning.
"""

from __future__ import annotations

from typing import Any

from crack_lightning import renamed

renamed.install()  # class paths of earlier versions in saved configs and checkpoints

__all__ = ["CrackClassifier", "CrackDataModule", "load_model"]
__version__ = "0.2.0.dev0"


def __getattr__(name: str) -> Any:
    # Lazy: `load_model` and the commands that run without torch must not import it through the package.
    if name == "CrackClassifier":
        from crack_lightning.models.classifier import CrackClassifier

        return CrackClassifier
    if name == "CrackDataModule":
        from crack_lightning.data.classification import CrackDataModule

        return CrackDataModule
    if name == "load_model":
        from crack_lightning.runtime.models import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
