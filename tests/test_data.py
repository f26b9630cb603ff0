from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from crack_lightning.data.classification import CrackDataModule
from crack_lightning.data.datasets import read_image_tensor, sample_root
from crack_lightning.data.splits import SPLITS, read_split_csv, write_split_csv
from crack_lightning.data.transforms import IMAGENET_MEAN, IMAGENET_STD, augment_batch, eval_transform, train_transform
from crack_lightning.errors import CrackLightningError
from tests.conftest import copy_images


def splits_of(root, **kwargs) -> dict:
    dm = CrackDataModule(root=str(root), num_workers=0, **kwargs)
    dm.setup("test")
    return dm.splits


def test_split_is_deterministic_and_depends_on_seed(image_root):
    assert splits_of(image_root, split_seed=7) == splits_of(image_root, split_seed=7)
    assert splits_of(image_root, split_seed=7) != splits_of(image_root, split_seed=8)


def test_split_is_stratified_and_disjoint(image_root):
    splits = splits_of(image_root, val_fraction=0.2, test_fraction=0.2)
    every = sorted(p.relative_to(image_root).as_posix() for p in image_root.rglob("*.jpg"))
    paths = [p for s in SPLITS for p, _ in splits[s]]
    assert sorted(paths) == every  # nothing lost, nothing twice
    for split, expected in (("train", 15), ("val", 5), ("test", 5)):
        for label in (0, 1):
            assert sum(1 for _, y in splits[split] if y == label) == expected
    for path, label in paths_and_labels(splits):
        assert path.split("/")[0] == ("Negative", "Positive")[label]


def paths_and_labels(splits):
    return [item for s in SPLITS for item in splits[s]]


def test_split_of_bundled_sample_is_the_same_on_every_machine(tmp_path):
    """The seeded split of the shipped sample is pinned: a change here would silently move images between splits."""
    dm = CrackDataModule(num_workers=0)
    dm.setup("test")
    write_split_csv(tmp_path / "split.csv", dm.splits, dm.classes)
    digest = hashlib.sha256((tmp_path / "split.csv").read_bytes()).hexdigest()
    assert [len(dm.splits[s]) for s in SPLITS] == [480, 96, 24]
    assert digest == SAMPLE_SPLIT_SHA256


SAMPLE_SPLIT_SHA256 = "6e9ceb2d8d1d50195928168c6abcf74435d3a3e50a51d2fc10e94bff76b35a0f"


def test_class_seed_is_per_class(image_root):
    """Adding a class leaves the other classes' splits alone."""
    before = splits_of(image_root)
    (image_root / "Zother").mkdir()
    for src in sorted((image_root / "Negative").glob("*.jpg"))[:5]:
        (image_root / "Zother" / src.name).write_bytes(src.read_bytes())
    after = splits_of(image_root)
    for split in SPLITS:
        assert [s for s in after[split] if s[1] < 2] == before[split]


def test_presplit_layout_is_used_as_is(presplit_root):
    splits = splits_of(presplit_root)
    for split, per_class in (("train", 12), ("val", 4), ("test", 3)):
        assert len(splits[split]) == 2 * per_class
        assert all(p.startswith(f"{split}/") for p, _ in splits[split])


def test_presplit_layout_with_other_classes_is_an_error(presplit_root):
    (presplit_root / "val" / "Negative").rename(presplit_root / "val" / "Sound")
    with pytest.raises(CrackLightningError, match="class folders"):
        splits_of(presplit_root)


def test_split_csv_round_trip(image_root, tmp_path):
    dm = CrackDataModule(root=str(image_root), num_workers=0)
    dm.setup("test")
    write_split_csv(tmp_path / "split.csv", dm.splits, dm.classes)
    assert read_split_csv(tmp_path / "split.csv", image_root, dm.classes) == dm.splits
    reused = splits_of(image_root, split_file=str(tmp_path / "split.csv"), split_seed=999)
    assert reused == dm.splits


def test_split_csv_naming_a_missing_file_is_an_error(image_root, tmp_path):
    csv_path = tmp_path / "split.csv"
    csv_path.write_text("path,split,class\nNegative/nope.jpg,train,Negative\n")
    with pytest.raises(CrackLightningError, match="line 2: no file"):
        splits_of(image_root, split_file=str(csv_path))


def test_missing_root_is_a_one_line_error(tmp_path):
    with pytest.raises(CrackLightningError, match="^root: no folder") as err:  # the field: --data.root in the command
        CrackDataModule(root=str(tmp_path / "nowhere"))
    assert "\n" not in str(err.value)


def test_folder_without_class_folders_is_an_error(tmp_path):
    (tmp_path / "flat").mkdir()
    with pytest.raises(CrackLightningError, match="not an image folder"):
        splits_of(tmp_path / "flat")


def test_too_few_images_for_validation_is_an_error(tmp_path):
    root = copy_images(tmp_path / "tiny", 2)
    dm = CrackDataModule(root=str(root), num_workers=0)
    with pytest.raises(CrackLightningError, match="no val images"):
        dm.setup("fit")


def test_transforms_shape_dtype_and_range():
    image = read_image_tensor(next((sample_root() / "Positive").glob("*.jpg")))
    assert image.dtype == torch.uint8 and image.shape == (3, 227, 227)
    low = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    high = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.manual_seed(0)
    resized = torch.stack([train_transform(160)(image) for _ in range(4)])
    assert resized.shape == (4, 3, 160, 160) and resized.dtype == torch.uint8
    for out in (augment_batch(resized), eval_transform(160)(image)[None]):
        assert out.shape[1:] == (3, 160, 160) and out.dtype == torch.float32
        per_channel = out.transpose(0, 1).flatten(1)
        assert (per_channel.min(1).values >= low - 1e-5).all() and (per_channel.max(1).values <= high + 1e-5).all()
    assert torch.equal(eval_transform(160)(image), eval_transform(160)(image))
    augmented = augment_batch(resized)
    assert any(not torch.equal(augmented[0], a) for a in augmented[1:])


def test_batch_rotation_is_torchvisions_rotation_with_the_mean_colour_in_the_corners():
    torch.manual_seed(1)
    images = (torch.rand(3, 3, 64, 64) * 255).to(torch.uint8)
    torch.manual_seed(0)
    angles = ((torch.rand(3) * 2 - 1) * 30).tolist()
    torch.manual_seed(0)
    rotated = augment_batch(images, rotation_degrees=30)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    for image, angle, out in zip(images, angles, rotated):
        expected = v2.functional.rotate(image.float() / 255, angle, interpolation=v2.InterpolationMode.BILINEAR)
        centre = (slice(None), slice(12, 52), slice(12, 52))  # inside every rotation: no border interpolation
        assert torch.allclose(out[centre], ((expected - mean) / std)[centre], atol=1e-4)
        if abs(angle) > 10:  # a corner the rotation uncovers: the mean colour
            assert torch.allclose(out[:, 0, 0], torch.zeros(3), atol=1e-6)
    # the one normalisation is a multiply-add (as the exported graph computes it): equal up to float32 rounding
    assert torch.allclose(augment_batch(images, rotation_degrees=0), (images.float() / 255 - mean) / std, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_any_image_mode_becomes_rgb(tmp_path, mode):
    pixels = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    suffix = ".jpg" if mode in ("L", "CMYK") else ".png"
    path = tmp_path / f"image{suffix}"
    image.save(path)
    out = read_image_tensor(path)
    assert out.shape == (3, 40, 50) and out.dtype == torch.uint8


def test_bmp_is_read_through_pil(tmp_path):
    Image.new("RGB", (30, 20), (10, 200, 30)).save(tmp_path / "image.bmp")
    out = read_image_tensor(tmp_path / "image.bmp")
    assert out.shape == (3, 20, 30) and out[:, 0, 0].tolist() == [10, 200, 30]


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg" + bytes(100))
    with pytest.raises(CrackLightningError, match="broken.jpg: cannot be read as an image"):
        read_image_tensor(bad)


def test_written_split_csv_lists_every_image(image_root, tmp_path):
    dm = CrackDataModule(root=str(image_root), num_workers=0)
    dm.setup("fit")
    path = tmp_path / "s.csv"
    write_split_csv(path, dm.splits, dm.classes)
    lines = path.read_text().splitlines()
    assert lines[0] == "path,split,class" and len(lines) == 1 + 50
    assert all(Path(image_root, line.split(",")[0]).is_file() for line in lines[1:])


def test_a_list_of_roots_is_merged_and_capped(tmp_path):
    from tests.conftest import copy_images

    own = copy_images(tmp_path / "own", 6)
    big = copy_images(tmp_path / "big", 20, offset=10)
    dm = CrackDataModule(root=[str(own), str(big)], max_per_root=8, val_fraction=0.25, test_fraction=0)
    dm.setup("fit")
    everything = [p for split in ("train", "val", "test") for p, _ in dm.splits[split]]
    assert len(everything) == 2 * 6 + 2 * 8 == len(set(everything))
    assert sum(p.startswith(own.as_posix()) for p in everything) == 12
    assert dm.classes == ["Negative", "Positive"]
    image, label = dm.datasets["train"][0]
    assert image.dtype == torch.uint8 and label in (0, 1)
    again = CrackDataModule(root=[str(own), str(big)], max_per_root=8, val_fraction=0.25, test_fraction=0)
    again.setup("fit")
    assert again.splits == dm.splits


def test_roots_with_different_classes_are_refused(tmp_path):
    from tests.conftest import copy_images

    own = copy_images(tmp_path / "own", 3)
    other = copy_images(tmp_path / "other", 3)
    (other / "Positive").rename(other / "Crack")
    with pytest.raises(CrackLightningError, match="give every root the same class folders"):
        CrackDataModule(root=[str(own), str(other)]).setup("fit")


def test_the_torch_free_reader_decodes_as_the_training_reader(tmp_path):
    """crack_lightning.io.images (predict, scan) and datasets.read_image_tensor (training) hand the network the same pixels."""
    from crack_lightning.io import images

    paths = sorted(sample_root().rglob("*.jpg"))[::50]
    pixels = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    Image.fromarray(pixels).convert("RGBA").save(tmp_path / "rgba.png")
    rotated = Image.fromarray(pixels)
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: turn 90 degrees clockwise to view
    rotated.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    for path in [*paths, tmp_path / "rgb.png", tmp_path / "rgba.png", tmp_path / "rotated.jpg"]:
        expected = read_image_tensor(path).permute(1, 2, 0).numpy()
        assert np.array_equal(images.read_rgb(path), expected), path
    assert images.read_rgb(tmp_path / "rotated.jpg").shape == (40, 30, 3)


@pytest.mark.parametrize("size", [64, 96, 160, 300])
def test_pil_resize_is_torchvisions_antialiased_resize_within_a_grey_level(size):
    from crack_lightning.io import images

    for path in sorted(sample_root().rglob("*.jpg"))[::100]:
        image = images.read_rgb(path)
        expected = v2.functional.resize(torch.from_numpy(image.copy()).permute(2, 0, 1), [size, size], antialias=True)
        resized = images.resize(image, size)
        assert resized.shape == (size, size, 3) and resized.dtype == np.uint8
        assert np.abs(resized.astype(int) - expected.permute(1, 2, 0).numpy()).max() <= 1
