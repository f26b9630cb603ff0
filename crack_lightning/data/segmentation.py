"""Data for segmentation: photos in ``images/`` and crack masks in ``masks/`` (same stem, ``.png``, 255 = crack),
split by groups of photos, augmented jointly (image and mask) with torchvision's v2 transforms."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

from crack_lightning.data.datasets import default_workers, read_image_tensor
from crack_lightning.data.downscale import RandomDownscale
from crack_lightning.data.splits import SPLITS, read_split_csv, split_samples, write_run_split
from crack_lightning.errors import OptionError, require_option
from crack_lightning.io.images import IMG_EXTENSIONS, MAX_PIXELS

IGNORE = 2  # mask value of pixels the loss leaves out (listed in the optional ignore/NAME.png)
PHOTO_CLASS = ["photo"]  # split.csv's class column: one class, every sample a photo


def mask_path(root: Path, image: str) -> Path:
    """The mask of ``images/NAME.ext``: ``masks/NAME.png``."""
    return root / "masks" / (Path(image).stem + ".png")


def ignore_path(root: Path, image: str) -> Path:
    """Pixels left out of the loss for ``images/NAME.ext`` (optional): ``ignore/NAME.png``, grey values above 127."""
    return root / "ignore" / (Path(image).stem + ".png")


def read_crack_mask(path: Path, height: int, width: int) -> torch.Tensor:
    """A mask file as ``uint8`` ``(1, H, W)``: 1 where the pixel is crack (grey value above 127), else 0."""
    try:
        mask = decode_image(str(path), mode=ImageReadMode.GRAY)
    except RuntimeError as err:
        raise OptionError("root", f"{path} cannot be read as an image ({err}); replace it") from err
    require_option(
        tuple(mask.shape[1:]) == (height, width),
        "root",
        f"{path} is {mask.shape[2]}x{mask.shape[1]} but its photo is {width}x{height}; "
        "give each photo a mask of its own size",
    )
    return (mask > 127).to(torch.uint8)


def find_photos(root: Path) -> list[str]:
    """``images/NAME.ext`` paths (relative to ``root``) of every photo, after checking that each has a mask."""
    images, masks = root / "images", root / "masks"
    for folder in (images, masks):
        require_option(
            folder.is_dir(),
            "root",
            f"no folder {folder}; pass a folder with images/ and masks/ "
            "(masks/NAME.png for each images/NAME.jpg, 255 = crack)",
        )
    photos = sorted(p.name for p in images.iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
    require_option(bool(photos), "root", f"no images in {images}")
    missing = [name for name in photos if not mask_path(root, name).is_file()]
    require_option(
        not missing,
        "root",
        f"{len(missing)} photo(s) in {images} have no mask in {masks} "
        f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}); add masks/NAME.png for each",
    )
    return [f"images/{name}" for name in photos]


def train_transform(crop_size: int, jitter: float, max_downscale: float = 1.0) -> v2.Compose:
    """Random shrinking (half the photos, up to ``max_downscale``), crop, flips, rotation by a multiple of 90 degrees
    (image and mask alike), colour jitter (image only: v2's colour transforms leave a ``tv_tensors.Mask`` as it is)."""
    steps: list[Callable] = [RandomDownscale(max_downscale, crop_size, IGNORE)] if max_downscale > 1 else []
    steps += [
        v2.RandomCrop(crop_size, pad_if_needed=True),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.RandomChoice([v2.Identity()] + [v2.RandomRotation((a, a), expand=True) for a in (90, 180, 270)]),
    ]
    if jitter > 0:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=min(0.5, jitter / 4)))
    return v2.Compose(steps)


class PhotoMasks(Dataset):
    """``(image uint8 (3, H, W), mask uint8 (1, H, W))`` pairs, transformed together; ``repeat`` passes per epoch."""

    def __init__(
        self,
        root: Path,
        photos: Sequence[str],
        transform: Callable | None = None,
        repeat: int = 1,
        max_pixels: int | None = MAX_PIXELS,
    ) -> None:
        self.root, self.photos, self.transform = root, list(photos), transform
        self.repeat, self.max_pixels = repeat, max_pixels

    def __len__(self) -> int:
        return len(self.photos) * self.repeat

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        photo = self.photos[index % len(self.photos)]
        image = read_image_tensor(self.root / photo, self.max_pixels)
        mask = read_crack_mask(mask_path(self.root, photo), *image.shape[1:])
        ignore = ignore_path(self.root, photo)
        if ignore.is_file():  # e.g. pseudo-labels' unsure pixels: IGNORE, which the loss leaves out
            mask[read_crack_mask(ignore, *image.shape[1:]) > 0] = IGNORE
        if self.transform is not None:
            image, mask = self.transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)


class SegmentationDataModule(L.LightningDataModule):
    """Photos and crack masks, split into train / val (/ test) by groups of photos.

    Args:
        root: Folder with ``images/`` (photos) and ``masks/`` (``NAME.png`` for each ``images/NAME.ext``; grey
            values above 127 are crack); optionally ``ignore/NAME.png``: pixels (above 127) the loss leaves out.
        crop_size: Side of the random training crops (validation and test see whole photos).
        batch_size: Training crops per batch.
        val_batch_size: Whole photos per validation / test batch (photos of different sizes need 1).
        crops_per_photo: Random crops of each training photo per epoch.
        num_workers: DataLoader workers; ``null``: none on 2 cores or fewer, else one per core but one, at most 8.
        val_fraction: Share of the photos held out for validation.
        test_fraction: Share of the photos held out for testing.
        split_seed: Seed of the split; the same seed gives the same split on every machine.
        split_file: A ``split.csv`` of an earlier run, reused instead of splitting again.
        group_pattern: Regular expression on the file name whose first group names the photo's group (e.g. crops
            of one larger photo, ``NAME-1.jpg``, ``NAME-2.jpg``): a group stays on one side of the split.
            ``null``: every photo is its own group.
        colour_jitter: Strength of the brightness / contrast / saturation jitter (hue: a quarter of it); 0: none.
        max_downscale: Half the training photos are shrunk by a random factor up to this one (never below
            ``crop_size``), their masks by half coverage: cracks a pixel or two wide, as in drone photos; 1: none.
        max_pixels: Largest photo accepted, in pixels.
    """

    def __init__(
        self,
        root: str,
        crop_size: int = 288,
        batch_size: int = 8,
        val_batch_size: int = 1,
        crops_per_photo: int = 1,
        num_workers: int | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.0,
        split_seed: int = 42,
        split_file: str | None = None,
        group_pattern: str | None = None,
        colour_jitter: float = 0.2,
        max_downscale: float = 1.0,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        super().__init__()
        require_option(crop_size >= 32 and crop_size % 32 == 0, "crop_size", f"{crop_size}; pass a multiple of 32")
        require_option(
            batch_size >= 1 and val_batch_size >= 1 and crops_per_photo >= 1,
            "batch_size",
            "val_batch_size and crops_per_photo: pass whole numbers of at least 1",
        )
        require_option(
            0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1,
            "val_fraction",
            "and test_fraction: pass shares in [0, 1) that add up to less than 1",
        )
        require_option(colour_jitter >= 0, "colour_jitter", f"{colour_jitter}; pass 0 or more")
        require_option(max_downscale >= 1, "max_downscale", f"{max_downscale}; pass 1 (none) or more")
        if group_pattern:
            try:
                re.compile(group_pattern)
            except re.error as err:
                raise OptionError("group_pattern", f"{group_pattern!r} is not a regular expression ({err})") from err
        self.save_hyperparameters()
        self.root = Path(root).expanduser()
        require_option(self.root.is_dir(), "root", f"no folder {self.root}; pass a folder with images/ and masks/")
        self.num_workers = num_workers if num_workers is not None else default_workers()
        self.splits: dict[str, list[str]] = {}

    def setup(self, stage: str) -> None:
        if not self.splits:
            photos = find_photos(self.root)
            if self.hparams.split_file:
                found = read_split_csv(Path(self.hparams.split_file), self.root, PHOTO_CLASS)
            else:
                found = split_samples(
                    [(p, 0) for p in photos],
                    PHOTO_CLASS,
                    self.hparams.val_fraction,
                    self.hparams.test_fraction,
                    self.hparams.split_seed,
                    self.hparams.group_pattern,
                )
            self.splits = {split: [p for p, _ in found[split]] for split in SPLITS}
            counts = ", ".join(f"{len(self.splits[s])} {s}" for s in SPLITS)
            rank_zero_info(f"Segmentation data: {counts} photos from {self.root}")
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage, ())
        for split in needed:
            require_option(
                bool(self.splits[split]),
                "root",
                f"{self.root} gives no {split} photos; add photos or change val_fraction / test_fraction",
            )
        if stage == "fit":
            self._write_split()

    def _write_split(self) -> None:
        path = write_run_split(
            self.trainer,
            {s: [(p, 0) for p in v] for s, v in self.splits.items()},
            PHOTO_CLASS,
            self.hparams.group_pattern,
        )
        if path is not None:
            rank_zero_info(f"Split written to {path}")

    def _loader(self, split: str) -> DataLoader:
        train = split == "train"
        transform = (
            train_transform(self.hparams.crop_size, self.hparams.colour_jitter, self.hparams.max_downscale)
            if train
            else None
        )
        dataset = PhotoMasks(
            self.root,
            self.splits[split],
            transform,
            self.hparams.crops_per_photo if train else 1,
            self.hparams.max_pixels,
        )
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size if train else self.hparams.val_batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.hparams.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
