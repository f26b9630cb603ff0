"""``device``: which device runs the network of ``predict`` and ``scan``, decided without importing torch where no
NVIDIA driver is loaded. The GPU session itself (the checkpoint's network through PyTorch) is
:mod:`crack_lightning.export.gpu`; :func:`crack_lightning.load_model` puts them together.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from crack_lightning.errors import OptionError

DEVICES = ("auto", "cpu", "cuda")


def nvidia_driver() -> bool:
    """Whether an NVIDIA driver is loaded, read without importing torch (Linux: its /proc and /dev entries)."""
    if os.name == "nt":
        return True  # no cheap test there: let torch answer
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()


def cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA device; torch is not imported where no NVIDIA driver is."""
    if importlib.util.find_spec("torch") is None or not nvidia_driver():
        return False
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``: ``auto`` is ``cuda`` where PyTorch sees a CUDA device; one-line errors for the rest."""
    if device not in DEVICES:
        raise OptionError("device", f"{device!r}; pass one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if device == "cuda":
        raise OptionError("device", "'cuda': PyTorch sees no CUDA GPU on this machine; pass cpu or auto")
    return "cpu"


def checkpoint_beside(graph: Path) -> Path | None:
    """The checkpoint an exported graph came from, where it lies beside it (``m.onnx`` -> ``m.ckpt``)."""
    candidate = graph.with_suffix(".ckpt")
    return candidate if candidate.is_file() else None
