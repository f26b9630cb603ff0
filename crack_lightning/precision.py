"""Precision: bf16-mixed where the hardware computes bf16 natively, float32 elsewhere."""

from __future__ import annotations

import torch


def cpu_has_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where bf16 matrix multiplies run natively."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    if any(getattr(torch.cpu, name, lambda: False)() for name in checks):
        return True
    try:  # older PyTorch without the checks: the kernel's CPU flags (Linux)
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
        return "amx_bf16" in flags or "avx512_bf16" in flags
    except OSError:
        return False


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
