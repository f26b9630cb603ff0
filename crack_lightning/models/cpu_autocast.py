"""Layers that keep float32 where CPU autocast's bf16 is slow; checkpoints are unchanged by them."""

from __future__ import annotations

import torch
from torch import nn


class Float32Conv2d(nn.Conv2d):
    """A convolution computed in float32 under CPU autocast; the same parameters and checkpoint keys as ``nn.Conv2d``.

    PyTorch's bf16 backward of stride-2 depthwise convolutions on the CPU is about 25x slower than its float32 one
    (``features[14]`` at 160 px, batch 32: 28.9 against 1.2 ms a step on an AMX Xeon, a quarter of the fine-tune
    step); in float32 the trainable blocks train 1.38x faster (446 against 322 img/s).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(input.float())
        return super().forward(input)


def strided_depthwise_in_float32(module: nn.Module) -> None:
    """Make each stride-2 depthwise convolution of ``module`` a ``Float32Conv2d``, in place."""
    for conv in module.modules():
        if type(conv) is nn.Conv2d and conv.groups == conv.in_channels > 1 and conv.stride != (1, 1):
            conv.__class__ = Float32Conv2d  # same attributes: weights, state_dict keys and checkpoints unchanged
