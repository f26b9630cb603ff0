"""Datasets, splits, transforms and the LightningDataModules (torch)."""

from typing import Any


def __getattr__(name: str) -> Any:
    # `crack_lightning.data.CrackDataModule`, the class path before 0.3 (data.py), in saved configs; lazy: torch.
    if name == "CrackDataModule":
        from crack_lightning.data.classification import CrackDataModule

        return CrackDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
