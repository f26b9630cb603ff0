"""crack-lightning: MobileNetV2 transfer learning that tells cracked concrete from sound concrete."""

from __future__ import annotations

from typing import Any

__all__ = ["CrackClassifier", "CrackDataModule"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy, so that `python -m crack_lightning` imports torch and Lightning inside __main__, which manages the
    # garbage collector around those imports.
    if name == "CrackClassifier":
        from crack_lightning.model import CrackClassifier

        return CrackClassifier
    if name == "CrackDataModule":
        from crack_lightning.data import CrackDataModule

        return CrackDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
