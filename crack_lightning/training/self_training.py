"""Self-training: real crack photos without masks become training data, labelled by a segmenter.

A segmenter trained on synthetic cracks labels each photo of a crack (e.g. Özgenel's ``Positive`` patches):
pixels it is sure of become crack (``>= high``) or background (``<= low``); the pixels in between go to
``ignore/`` and the loss leaves them out. A photo where it finds no crack of at least ``min_area`` sure pixels is
skipped: its crack is too faint for the segmenter, and labelling it all background would teach it to miss such
cracks. The output folder has the layout :class:`~crack_lightning.data.segmentation.SegmentationDataModule` reads.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.io import ImageReadMode, decode_image

from crack_lightning.models.checkpoints import SEGMENTATION, read_checkpoint
from crack_lightning.models.loading import load_checkpoint


def mirrored_probability(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Crack probabilities of ``uint8`` ``(N, 3, H, W)`` images, averaged over the four mirror images (sharper
    labels than one view). H and W are padded to a multiple of 32 and cropped back."""
    h, w = images.shape[-2:]
    ph, pw = -h % 32, -w % 32
    x = F.pad(model.normalise(images), (0, pw, 0, ph), mode="reflect")
    total = torch.zeros_like(x[:, :1])
    for dims in ((), (-1,), (-2,), (-2, -1)):
        view = x.flip(dims) if dims else x
        p = torch.sigmoid(model(view).float())
        total += p.flip(dims) if dims else p
    return (total / 4)[..., :h, :w]


def pseudo_label(
    checkpoint: str,
    folders: Sequence[str | Path],
    output: str | Path,
    high: float = 0.7,
    low: float = 0.3,
    min_area: int = 40,
    batch_size: int = 64,
    device: str | None = None,
) -> dict[str, int]:
    """Label every image in ``folders`` with the segmenter ``checkpoint``; write ``output/images``, ``masks`` and
    ``ignore`` (names ``pseudo-<folder index>-<stem>``). Returns counts of labelled and skipped photos."""
    if not 0 <= low < high <= 1:
        raise ValueError(f"pseudo_label: need 0 <= low < high <= 1, got low={low}, high={high}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    read_checkpoint(checkpoint, "checkpoint", SEGMENTATION)  # a classifier's is a one-line error, not a crash later
    model = load_checkpoint(checkpoint, "checkpoint").eval().to(device)
    output = Path(output)
    for sub in ("images", "masks", "ignore"):
        (output / sub).mkdir(parents=True, exist_ok=True)
    files = [
        (k, p)
        for k, folder in enumerate(folders)
        for p in sorted(Path(folder).iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    counts = {"labelled": 0, "skipped": 0}
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        images = [decode_image(str(p), mode=ImageReadMode.RGB) for _, p in chunk]
        sizes = {tuple(i.shape) for i in images}
        batches = [torch.stack(images)] if len(sizes) == 1 else [i[None] for i in images]
        with torch.inference_mode(), torch.autocast(device.split(":")[0], torch.bfloat16, enabled=device != "cpu"):
            probabilities = (
                torch.cat([mirrored_probability(model, b.to(device)) for b in batches]).float().cpu().numpy()
            )
        for (k, path), p in zip(chunk, probabilities[:, 0]):
            crack, background = p >= high, p <= low
            if crack.sum() < min_area:
                counts["skipped"] += 1
                continue
            name = f"pseudo-{k}-{path.stem}"
            shutil.copyfile(path, output / "images" / (name + path.suffix.lower()))
            Image.fromarray(crack.astype(np.uint8) * 255).save(output / "masks" / (name + ".png"))
            Image.fromarray((~crack & ~background).astype(np.uint8) * 255).save(output / "ignore" / (name + ".png"))
            counts["labelled"] += 1
    return counts
