"""Datasets of images on disk: training samples with their labels, and images to predict; reading them as tensors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image

from crack_lightning.data.splits import Sample
from crack_lightning.data.transforms import DEFAULT_IMAGE_SIZE
from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.io.images import MAX_PIXELS, image_header
from crack_lightning.io.images import read_rgb as read_rgb_array
from crack_lightning.runtime.backends import cpu_count


def sample_root() -> Path:
    """The 600-image real sample shipped inside the package; the default ``data.root``."""
    return Path(__file__).resolve().parents[1] / "assets" / "sample"


def read_image_tensor(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> torch.Tensor:
    """Decode an image file to a ``uint8`` RGB tensor ``(3, H, W)``, whatever its mode (grey, RGBA, CMYK...).

    The header is checked first: files over ``max_pixels`` pixels are refused before any decoding.
    """
    image_header(path, max_pixels)
    try:
        image = decode_image(str(path), mode=ImageReadMode.RGB, apply_exif_orientation=True)
        if image.dtype == torch.uint8:  # a 16-bit PNG comes as uint16: scaled below, as predict and scan scale it
            return image
    except RuntimeError:
        pass
    # torchvision.io reads 8-bit JPEG, PNG, WebP, GIF; the torch-free reader the rest (BMP, TIFF, HEIC, 16-bit...)
    return torch.from_numpy(np.ascontiguousarray(read_rgb_array(path, max_pixels).transpose(2, 0, 1)))


def default_workers() -> int:
    """DataLoader workers for this machine: 0 on 2 cores or fewer, else one per core but one, at most 8."""
    cores = cpu_count()
    return 0 if cores <= 2 else min(8, cores - 1)


class ImageSamples(Dataset):
    """``(image, label)`` pairs read from ``root / relative_path`` and transformed.

    A file that cannot be decoded (it passed the header check, or went bad during the run) is skipped
    with a warning: the next sample takes its place, so a batch keeps its size and the run goes on.
    """

    def __init__(
        self,
        root: Path,
        samples: Sequence[Sample],
        transform: Callable | None = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> None:
        self.root = root
        self.samples = list(samples)
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for attempt in range(len(self.samples)):
            path, label = self.samples[(index + attempt) % len(self.samples)]
            try:
                image = read_image_tensor(self.root / path, self.max_pixels)
            except CrackLightningError as err:
                warnings.warn(f"skipped {err}", stacklevel=2)
                continue
            return (self.transform(image) if self.transform else image), label
        raise OptionError("root", f"none of the {len(self.samples)} images in {self.root} can be read")


class PredictImages(Dataset):
    """``(image, path, error)`` for each path: the image ``uint8`` ``(3, S, S)``, read and resized as the torch-free
    path does (:mod:`crack_lightning.io.images`); an unreadable file gives a blank image and its error."""

    def __init__(
        self, paths: Sequence[Path], image_size: int = DEFAULT_IMAGE_SIZE, max_pixels: int | None = MAX_PIXELS
    ) -> None:
        self.paths = list(paths)
        self.image_size = image_size
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str, str]:
        path = self.paths[index]
        try:
            image, error = read_rgb_array(path, self.max_pixels, self.image_size), ""
        except CrackLightningError as err:
            image, error = np.zeros((self.image_size, self.image_size, 3), np.uint8), str(err)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), str(path), error
