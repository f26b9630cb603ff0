"""Splits: class folders found, files grouped, seeded train/val/test splits and their ``split.csv``."""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from lightning.pytorch.utilities import rank_zero_warn
from torchvision import datasets

from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.io.images import IMG_EXTENSIONS, MAX_PIXELS, image_header

SPLITS = ("train", "val", "test")
SPLIT_CSV = "split.csv"
SKIPPED_CSV = "skipped.csv"

Sample = tuple[str, int]  # (path relative to the data root, class index)


def check_images(root: Path, samples: Sequence[Sample], max_pixels: int | None = MAX_PIXELS) -> dict[str, str]:
    """``{relative path: reason}`` of the samples whose header cannot be read or is over the pixel limit."""
    bad = {}
    for path, _ in samples:
        try:
            image_header(root / path, max_pixels)
        except CrackLightningError as err:
            bad[path] = str(err).removeprefix(f"{root / path}: ")
    return bad


def scan_folder(folder: Path, root: Path) -> tuple[list[str], list[Sample]]:
    """Classes and samples of an ImageFolder directory, paths relative to ``root`` in POSIX form, sorted."""
    try:
        classes, class_to_idx = datasets.folder.find_classes(str(folder))
        found = datasets.ImageFolder.make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise OptionError(
            "root",
            f"{folder} is not an image folder ({err}); point it at a folder with one sub-folder per "
            "class (Negative/, Positive/) or with train/, val/, test/ folders of class folders",
        ) from err
    samples = sorted((Path(p).relative_to(root).as_posix(), y) for p, y in found)
    return classes, samples


def sample_group(path: str, group_pattern: str | None) -> str:
    """The group of a sample: the first group (or the whole match) of ``group_pattern`` in its file name.

    A file whose name does not match is a group of its own (e.g. concrete patches mixed with photo tiles).
    """
    if not group_pattern:
        return ""
    match = re.search(group_pattern, PurePosixPath(path).name)
    if match is None:
        return path
    return match.group(1) if match.groups() else match.group(0)


def split_samples(
    samples: Sequence[Sample],
    classes: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    group_pattern: str | None = None,
) -> dict[str, list[Sample]]:
    """Seeded split. Without groups it is stratified: each class shuffled on its own, so a class's split depends
    only on its files and the seed. With ``group_pattern`` whole groups (e.g. the tiles of one photo) are shuffled
    and dealt to test, then validation, until each has its share of the images: no group is on two sides."""
    splits: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    if group_pattern:
        groups: dict[str, list[Sample]] = {}
        for sample in sorted(samples):
            groups.setdefault(sample_group(sample[0], group_pattern), []).append(sample)
        names = sorted(groups)
        # A string seed is hashed with SHA-512 by `random`, so the order is the same on every machine and Python.
        random.Random(f"{seed}/groups").shuffle(names)
        targets = {"test": round(len(samples) * test_fraction), "val": round(len(samples) * val_fraction)}
        for name in names:
            split = next((s for s in ("test", "val") if len(splits[s]) < targets[s]), "train")
            splits[split] += groups[name]
        return {s: sorted(v) for s, v in splits.items()}
    for index, name in enumerate(classes):
        items = sorted(p for p, y in samples if y == index)
        random.Random(f"{seed}/{name}").shuffle(items)
        n_test = round(len(items) * test_fraction)
        n_val = round(len(items) * val_fraction)
        splits["test"] += [(p, index) for p in items[:n_test]]
        splits["val"] += [(p, index) for p in items[n_test : n_test + n_val]]
        splits["train"] += [(p, index) for p in items[n_test + n_val :]]
    return {s: sorted(v) for s, v in splits.items()}


def write_split_csv(
    path: Path, splits: dict[str, list[Sample]], classes: Sequence[str], group_pattern: str | None = None
) -> None:
    """Write ``path, split, class`` rows (and ``group`` with a ``group_pattern``), paths relative to the data root,
    so the split can be audited and reused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "split", "class"] + (["group"] if group_pattern else []))
        for split in SPLITS:
            for p, y in splits[split]:
                writer.writerow([p, split, classes[y]] + ([sample_group(p, group_pattern)] if group_pattern else []))


def read_split_csv(path: Path, root: Path, classes: Sequence[str]) -> dict[str, list[Sample]]:
    """Read a split written by :func:`write_split_csv`, checking every class and file."""
    if not path.is_file():
        raise OptionError("split_file", f"no file {path}; pass the split.csv of an earlier run or null")
    class_to_idx = {c: i for i, c in enumerate(classes)}
    splits: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"path", "split", "class"} <= set(reader.fieldnames):
            raise OptionError("split_file", f"{path} needs the columns path, split, class")
        for line, row in enumerate(reader, start=2):
            if row["split"] not in splits or row["class"] not in class_to_idx:
                raise OptionError(
                    "split_file", f"{path} line {line}: split must be one of {SPLITS} and class one of {list(classes)}"
                )
            if not (root / row["path"]).is_file():
                raise OptionError("split_file", f"{path} line {line}: no file {root / row['path']}")
            splits[row["split"]].append((row["path"], class_to_idx[row["class"]]))
    return splits


def write_run_split(
    trainer, splits: dict[str, list[Sample]], classes: Sequence[str], group_pattern: str | None = None
) -> Path | None:
    """Write ``split.csv`` into the run's log folder, by the main process only; the path, or None where there is
    no run folder (no trainer, no logger) or this is another process."""
    if trainer is None:
        return None
    log_dir = trainer.log_dir  # a broadcast under DDP: every process must ask
    if not trainer.is_global_zero or log_dir is None:
        return None
    path = Path(log_dir) / SPLIT_CSV
    write_split_csv(path, splits, classes, group_pattern)
    return path


def scan_roots(roots: Sequence[Path], max_per_root: int | None, seed: int) -> tuple[list[str], list[Sample]]:
    """Classes and samples of every root (merged by class name), each capped at ``max_per_root`` per class (a seeded
    choice); with several roots, samples are absolute paths."""
    classes: list[str] | None = None
    merged: list[Sample] = []
    for folder in roots:
        found, samples = scan_folder(folder, folder)
        if classes is not None and found != classes:
            raise OptionError(
                "root",
                f"{folder} has class folders {found} but {roots[0]} has {classes}; give every root the same class folders",
            )
        classes = found
        if max_per_root is not None:
            capped = []
            for index, name in enumerate(classes):
                items = sorted(p for p, y in samples if y == index)
                random.Random(f"{seed}/{folder.name}/{name}").shuffle(items)
                capped += [(p, index) for p in items[:max_per_root]]
            samples = sorted(capped)
        if len(roots) > 1:
            samples = [((folder / p).absolute().as_posix(), y) for p, y in samples]
        merged += samples
    assert classes is not None
    return classes, sorted(merged)


def drop_unreadable(
    root: Path, splits: dict[str, list[Sample]], max_pixels: int | None, strict: bool
) -> list[tuple[str, str, int, str]]:
    """Read every image's header once before training: the unreadable ones leave ``splits`` (in place) and are
    returned as ``(path, split, class index, reason)``; with ``strict``, they are a one-line error instead."""
    bad = check_images(root, [s for split in SPLITS for s in splits[split]], max_pixels)
    if not bad:
        return []
    listed = "; ".join(f"{path}: {reason}" for path, reason in list(bad.items())[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    if strict:
        raise OptionError(
            "strict",
            f"{len(bad)} unreadable image(s) in {root} ({listed}{more}); remove or replace them, or turn strict off "
            "to skip them",
        )
    skipped = []
    for split in SPLITS:
        skipped += [(p, split, y, bad[p]) for p, y in splits[split] if p in bad]
        splits[split] = [(p, y) for p, y in splits[split] if p not in bad]
    rank_zero_warn(f"Skipping {len(bad)} unreadable image(s) in {root}: {listed}{more}")
    return skipped
