"""Scale augmentation for segmentation: a training photo shrunk, so that a network learns cracks a pixel or two wide
(drone photos, distant walls) from photos whose cracks were drawn wider."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

CRACK_COVERAGE = 0.5  # the synthesiser's own rule (half-covered pixels); a quarter made widths read 0.5 px wider


def shrink_mask(mask: torch.Tensor, height: int, width: int, ignore: int) -> torch.Tensor:
    """A ``uint8`` mask ``(1, H, W)`` (0 sound, 1 crack, ``ignore`` left out) at ``height`` x ``width``: crack where a
    crack covered at least :data:`CRACK_COVERAGE` of the new pixel, left out where any of it was left out."""
    planes = torch.stack([mask[0] == 1, mask[0] == ignore]).float()[None]
    crack, unsure = F.interpolate(planes, size=(height, width), mode="area")[0]
    out = (crack >= CRACK_COVERAGE).to(torch.uint8)
    out[unsure > 0] = ignore
    return out[None]


class RandomDownscale(nn.Module):
    """With probability ``p``, shrink image and mask by a factor drawn log-uniformly from 1 to ``max_factor``, but
    never below ``min_side`` pixels a side (the crop that follows must fit without padding)."""

    def __init__(self, max_factor: float, min_side: int, ignore: int, p: float = 0.5) -> None:
        super().__init__()
        self.max_factor, self.min_side, self.ignore, self.p = max_factor, min_side, ignore, p

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        most = min(self.max_factor, min(height, width) / self.min_side)
        if most <= 1 or torch.rand(()) >= self.p:
            return image, mask
        factor = math.exp(torch.rand(()).item() * math.log(most))
        size = [max(self.min_side, round(height / factor)), max(self.min_side, round(width / factor))]
        small = TF.resize(image, size, antialias=True)
        return small, tv_tensors.Mask(shrink_mask(mask.as_subclass(torch.Tensor), *size, self.ignore))
