"""The segmentation network: MobileNetV2 features as encoder, a U-Net decoder, one crack logit per pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2

# Blocks of mobilenet_v2().features that end at strides 2, 4, 8, 16 and 32, and their output channels. Block 18
# (320 -> 1280 channels, 1x1) is left out: it serves the classifier's pooled features, not a decoder.
STAGE_ENDS = (2, 4, 7, 14, 18)
STAGE_CHANNELS = (16, 24, 32, 96, 320)
MULTIPLE = 32  # the encoder's total stride: inputs are padded to a multiple of it


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def separable_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """A depthwise 3x3 then a pointwise 1x1 convolution: about 9x fewer multiply-adds than a full 3x3 where
    ``cout`` is small, which is where a decoder spends its time (the full-resolution stages)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    """Upsample x2 (bilinear), concatenate the skip connection, ``convs`` convolutions (full or separable 3x3)."""

    def __init__(self, cin: int, skip: int, cout: int, convs: int = 1, separable: bool = False) -> None:
        super().__init__()
        block = separable_bn_relu if separable else conv_bn_relu
        layers = list(block(cin + skip, cout))
        for _ in range(convs - 1):
            layers += list(block(cout, cout))
        self.conv = nn.Sequential(*layers)  # one flat Sequential: one convolution keeps the original state-dict keys

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


class CrackUNet(nn.Module):
    """The network: normalised images ``(N, 3, H, W)`` -> crack logits ``(N, 1, H, W)``, any H and W.

    ``decoder_channels`` are the decoder's channels at strides 16, 8, 4, 2 and 1; the last is also the channels the
    full-resolution stem takes from the image. ``separable`` makes the decoder's 3x3 convolutions depthwise-separable.
    ``context_scale`` 2: the encoder sees the image at half size (a quarter of its work) and every decoder stage is
    one stride coarser (32 to 2); the stem sees the full-size image as its 2x2 blocks (12 channels at half size), and
    the head predicts each block's four pixels (a learned upsampling), so nothing runs at full resolution.
    """

    def __init__(
        self,
        decoder_channels: tuple[int, int, int, int, int] = (96, 64, 32, 24, 16),
        decoder_convs: int = 1,
        separable: bool = False,
        context_scale: int = 1,
    ) -> None:
        super().__init__()
        if context_scale not in (1, 2):
            raise ValueError(f"context_scale is 1 or 2, not {context_scale}")
        self.context_scale = context_scale
        self.encoder = nn.Sequential(*mobilenet_v2(weights=None).features[: STAGE_ENDS[-1]])
        # Full resolution gets a few channels of its own from the image: cracks are 1-10 px wide, finer than the
        # encoder's first stride-2 map. The stem stays a full 3x3: on 3 input channels it is cheap either way.
        # At context_scale 2 it is the path that still sees one-pixel cracks whole (the encoder's image is halved).
        stem_in = 3 * context_scale**2
        self.stem = conv_bn_relu(stem_in, decoder_channels[-1])
        if context_scale > 1:
            self.stem.extend(separable_bn_relu(decoder_channels[-1], decoder_channels[-1]))
        ups, cin = [], STAGE_CHANNELS[-1]
        for skip, cout in zip((*STAGE_CHANNELS[-2::-1], decoder_channels[-1]), decoder_channels):
            ups.append(UpBlock(cin, skip, cout, decoder_convs, separable))
            cin = cout
        self.decoder = nn.ModuleList(ups)
        self.head = nn.Conv2d(cin, context_scale**2, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        # Always padded (maybe by 0) and without a Python branch on the size, so that an ONNX trace keeps the
        # padding dynamic; replicate works for any size (reflect needs a pad smaller than the side).
        multiple, scale = MULTIPLE * self.context_scale, self.context_scale
        pad_h, pad_w = (multiple - height % multiple) % multiple, (multiple - width % multiple) % multiple
        x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate")
        if scale > 1:
            skips, x = [self.stem(F.pixel_unshuffle(x, scale))], F.avg_pool2d(x, scale)
        else:
            skips = [self.stem(x)]
        start = 0
        for end in STAGE_ENDS:
            x = self.encoder[start:end](x)
            skips.append(x)
            start = end
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        logits = self.head(x)
        return (F.pixel_shuffle(logits, scale) if scale > 1 else logits)[..., :height, :width]


def multiply_adds(net: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of one forward pass on a ``height`` x ``width`` image (convolutions and linear layers)."""
    total = 0

    def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.weight.shape[1] * module.weight[0, 0].numel()  # input channels per group x kernel area
        total += output.numel() * kernel

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    return total
