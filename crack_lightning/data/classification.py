"""Data: the DataModule over an ImageFolder of concrete patches: split, datasets, loaders."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from crack_lightning.data.datasets import ImageSamples, PredictImages, default_workers, sample_root
from crack_lightning.data.splits import (
    SKIPPED_CSV,
    SPLITS,
    Sample,
    drop_unreadable,
    read_split_csv,
    scan_folder,
    scan_roots,
    split_samples,
    write_run_split,
)
from crack_lightning.data.transforms import (
    DEFAULT_IMAGE_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    augment_batch,
    eval_transform,
    train_transform,
)
from crack_lightning.errors import OptionError, require_option
from crack_lightning.io.images import MAX_PIXELS, find_images


class CrackDataModule(L.LightningDataModule):
    """Concrete patches in an ImageFolder layout, split into train/val/test.

    Args:
        root: ImageFolder root: either class folders only (``Negative/``, ``Positive/``), split here, or
            ``train/``, ``val/``, ``test/`` folders of class folders, used as they are. ``null``: the
            600-image sample shipped in the package. A list of class-folder roots with the same class names
            is merged (paths in ``split.csv`` are then absolute).
        image_size: Side of the square the images are resized to (227: the dataset's own patches, no resizing;
            160: the Keras original's input, half the pixels).
        batch_size: Images per batch.
        num_workers: DataLoader worker processes; ``null``: none on a machine of 2 cores or fewer (workers there
            take the cores the model computes on: measured slower), else one per core but one, at most 8.
        val_fraction: Share of each class held out for validation (class-folder layout).
        test_fraction: Share of each class held out for testing (class-folder layout).
        split_seed: Seed of the split; the same seed gives the same split on every machine.
        split_file: A ``split.csv`` written by an earlier run, reused instead of splitting again.
        rotation_degrees: Random rotation range, ± degrees (72 = the original's RandomRotation(0.2) turns).
        hflip: Random horizontal flip of training images.
        mean: Per-channel normalisation mean (RGB, 0-1 scale).
        std: Per-channel normalisation standard deviation.
        predict_dir: What ``predict`` classifies: a folder (searched recursively, any layout), an image
            file, or a ``.txt`` file listing image paths.
        max_per_root: With several roots: at most this many images of each class from each root (a seeded
            sample), e.g. to mix your own few hundred images with a share of a large dataset. ``null``: all.
        group_pattern: A regular expression on the file name whose first group (or whole match) names the
            file's group, e.g. the photo a tile was cut from; the seeded split keeps each group on one side
            (``split.csv`` gets a ``group`` column); a file that does not match is a group of its own.
            ``null``: every file on its own, split per class.
        strict: Stop before training when any image's header cannot be read; ``false`` skips those files
            (listed in the log and in ``skipped.csv`` beside ``split.csv``).
        max_pixels: Largest image accepted, in pixels (width x height, checked from the header before
            decoding; PIL's decompression-bomb limit by default); larger files are skipped.
    """

    def __init__(
        self,
        root: str | list[str] | None = None,
        image_size: int = DEFAULT_IMAGE_SIZE,
        batch_size: int = 32,
        num_workers: int | None = None,
        val_fraction: float = 0.16,
        test_fraction: float = 0.04,
        split_seed: int = 42,
        split_file: str | None = None,
        rotation_degrees: float = 72.0,
        hflip: bool = True,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        predict_dir: str | None = None,
        max_per_root: int | None = None,
        group_pattern: str | None = None,
        strict: bool = False,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        super().__init__()
        if not 0 <= val_fraction <= 1 or not 0 <= test_fraction <= 1 or val_fraction + test_fraction > 1:
            raise OptionError("val_fraction", "and test_fraction must each be in [0, 1] and add up to at most 1")
        require_option(
            image_size >= 32,
            "image_size",
            f"{image_size} is too small; pass a side of at least 32 pixels (default {DEFAULT_IMAGE_SIZE})",
        )
        require_option(batch_size >= 1, "batch_size", f"{batch_size}; pass a whole number of at least 1")
        require_option(
            num_workers is None or num_workers >= 0,
            "num_workers",
            f"{num_workers}; pass 0 or more, or null for one per core",
        )
        require_option(
            rotation_degrees >= 0,
            "rotation_degrees",
            f"{rotation_degrees}; pass 0 (no rotation) or a positive range in degrees",
        )
        if group_pattern:
            try:
                re.compile(group_pattern)
            except re.error as err:
                raise OptionError("group_pattern", f"{group_pattern!r} is not a regular expression ({err})") from err
        require_option(max_pixels >= 1, "max_pixels", f"{max_pixels}; pass a pixel count of at least 1")
        require_option(
            len(mean) == 3 and len(std) == 3 and all(s > 0 for s in std),
            "mean",
            "and std: pass three values each (RGB), the std values above 0",
        )
        self.save_hyperparameters()
        require_option(
            max_per_root is None or max_per_root >= 1, "max_per_root", f"{max_per_root}; pass 1 or more, or null"
        )
        roots = [root] if isinstance(root, str) else list(root) if root else [str(sample_root())]
        self.roots = [Path(r).expanduser() for r in roots]
        for folder in self.roots:
            require_option(folder.is_dir(), "root", f"no folder {folder}; pass the folder that holds the class folders")
        self.root = self.roots[0] if len(self.roots) == 1 else Path("/")  # several roots: samples hold absolute paths
        self.num_workers = num_workers if num_workers is not None else default_workers()
        self.datasets: dict[str, ImageSamples] = {}
        self.splits: dict[str, list[Sample]] = {}
        self.skipped: list[tuple[str, str, int, str]] = []  # (path, split, class index, reason)
        self._classes: list[str] | None = None

    @property
    def presplit(self) -> bool:
        """True when ``root`` holds ``train/`` and ``val/`` folders rather than class folders."""
        return len(self.roots) == 1 and (self.root / "train").is_dir() and (self.root / "val").is_dir()

    @property
    def classes(self) -> list[str]:
        """Class names, from the folder names (sorted, as ImageFolder numbers them)."""
        if self._classes is None:
            self._classes = scan_folder(self.root / "train" if self.presplit else self.roots[0], self.roots[0])[0]
        return self._classes

    def setup(self, stage: str) -> None:
        if stage == "predict":
            if self.hparams.predict_dir is None:
                raise OptionError("predict_dir", "missing; pass a folder of images, an image, or a .txt list")
            paths = find_images(self.hparams.predict_dir, "predict_dir")
            if not paths:
                raise OptionError("predict_dir", f"no images found in {self.hparams.predict_dir}")
            self.datasets["predict"] = PredictImages(paths, max_pixels=self.hparams.max_pixels)
            rank_zero_info(f"Predicting {len(paths)} images from {self.hparams.predict_dir}")
            return
        if not self.splits:
            self.splits, self._classes = self._make_splits()
            if len(self._classes) < 2:
                raise OptionError(
                    "root",
                    f"{self.root} has {len(self._classes)} class folder(s) {self._classes}; a classifier "
                    "needs at least two (Negative/ and Positive/)",
                )
            self._drop_unreadable()
        if stage == "fit":
            for split in ("train", "val"):
                if not self.splits[split]:
                    raise OptionError("root", f"{self.root} gives no {split} images; add images or change val_fraction")
            self._write_split()
        if stage == "test" and not self.splits["test"]:
            raise OptionError("root", f"{self.root} gives no test images; add a test/ folder or test_fraction")
        for split in SPLITS:
            self.datasets[split] = ImageSamples(self.root, self.splits[split], max_pixels=self.hparams.max_pixels)

    def preprocessing(self) -> tuple[int, Sequence[float], Sequence[float]]:
        """``(image_size, mean, std)``: a trained model's own win over the data's settings."""
        model = self.trainer.lightning_module if self.trainer is not None else None
        return getattr(model, "preprocessing", None) or (self.hparams.image_size, self.hparams.mean, self.hparams.std)

    def transform(self, split: str) -> v2.Compose:
        """The transform of a split."""
        size, mean, std = self.preprocessing()
        if split == "train":
            return train_transform(size, self.hparams.hflip)
        return eval_transform(size, mean, std)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """The training batch's second half of augmentation: normalisation and random rotation (``augment_batch``)."""
        _, mean, std = self.preprocessing()
        return augment_batch(images, mean, std, self.hparams.rotation_degrees)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Training batches come resized and flipped, uint8; the rest runs per batch, on the model's device.
        if self.trainer is not None and self.trainer.training:
            images, labels = batch
            if images.dtype == torch.uint8:
                return self.augment(images), labels
        return batch

    def _make_splits(self) -> tuple[dict[str, list[Sample]], list[str]]:
        splits: dict[str, list[Sample]] = {}
        if self.presplit:
            classes, splits["train"] = scan_folder(self.root / "train", self.root)
            splits["test"] = []  # test/ is optional
            for split in ("val", "test"):
                if not (self.root / split).is_dir():
                    continue
                found, splits[split] = scan_folder(self.root / split, self.root)
                if found != classes:
                    raise OptionError(
                        "root",
                        f"{self.root / split} has class folders {found} but train/ has {classes}; "
                        "give every split the same class folders",
                    )
        else:
            classes, samples = scan_roots(self.roots, self.hparams.max_per_root, self.hparams.split_seed)
            if self.hparams.split_file:
                splits = read_split_csv(Path(self.hparams.split_file), self.root, classes)
            else:
                splits = split_samples(
                    samples,
                    classes,
                    self.hparams.val_fraction,
                    self.hparams.test_fraction,
                    self.hparams.split_seed,
                    self.hparams.group_pattern,
                )
        counts = ", ".join(f"{len(splits[s])} {s}" for s in SPLITS)
        where = ", ".join(str(r) for r in self.roots)
        rank_zero_info(f"Data: {counts} images from {where} (classes: {', '.join(classes)})")
        return splits, classes

    def _drop_unreadable(self) -> None:
        """Read every image's header once before training; skip (or, when strict, refuse) the bad ones."""
        self.skipped += drop_unreadable(self.root, self.splits, self.hparams.max_pixels, self.hparams.strict)

    def _write_split(self) -> None:
        path = write_run_split(self.trainer, self.splits, self._classes, self.hparams.group_pattern)
        if path is None:
            return
        rank_zero_info(f"Split written to {path}")
        if self.skipped:
            with open(path.with_name(SKIPPED_CSV), "w", newline="") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(["path", "split", "class", "reason"])
                writer.writerows((p, split, self._classes[y], reason) for p, split, y, reason in self.skipped)
            rank_zero_info(f"{len(self.skipped)} skipped image(s) listed in {path.with_name(SKIPPED_CSV)}")

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        # Chosen here, not in setup: a checkpoint's preprocessing is restored after setup.
        if split == "predict":
            self.datasets[split].image_size = self.preprocessing()[0]
        else:
            self.datasets[split].transform = self.transform(split)
        on_cuda = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        sampler = None
        if split in ("val", "test") and self.trainer is not None and self.trainer.world_size > 1:
            # Each image exactly once over all processes (Lightning's default pads the shares with repeats),
            # so that val_loss, the metrics and the test report equal a single process's.
            sampler = UnrepeatedDistributedSampler(
                self.datasets[split], num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(
            self.datasets[split],
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=on_cuda,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
