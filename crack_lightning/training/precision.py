"""Precision: bf16-mixed where the hardware computes bf16 natively, float32 elsewhere."""

from __future__ import annotations

import torch

from crack_lightning.runtime.backends import cpu_has_bf16


def auto_precision(accelerator: str) -> tuple[str, str]:
    """``(precision, why)`` for an accelerator (``auto``, ``cpu``, ``cuda``/``gpu``, ...): the Trainer's precision."""
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator in ("cuda", "gpu"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16-mixed", f"{torch.cuda.get_device_name()} computes bf16 natively"
        return "32-true", "this GPU has no native bf16"
    if accelerator == "cpu":
        if cpu_has_bf16():
            return "bf16-mixed", "this CPU has AMX / AVX512-BF16"
        return "32-true", "this CPU has no AMX or AVX512-BF16: bf16 would be slower here"
    return "32-true", f"accelerator {accelerator}"
