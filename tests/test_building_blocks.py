"""The documented building blocks that the benchmark scripts use beside load_model, scan and evaluate
(docs/api.md#building-blocks-for-studies): what each promises, on files the tests make."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from crack_lightning.errors import CrackLightningError
from crack_lightning.evaluation.masked_photos import masked_photos, read_truth
from crack_lightning.io.images import find_images
from crack_lightning.runtime.backends import cpu_count
from crack_lightning.scanning.labelled_tiles import read_mask, tile_truth


def grey(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def test_find_images_reads_a_folder_recursively_a_list_or_one_file(tmp_path):
    for name in ("b/2.png", "a.jpg", "b/1.JPG"):
        grey(tmp_path / "photos" / name, np.zeros((4, 4)))
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    found = find_images(tmp_path / "photos")
    assert [p.relative_to(tmp_path / "photos").as_posix() for p in found] == ["a.jpg", "b/1.JPG", "b/2.png"]
    (tmp_path / "photos" / "list.txt").write_text("# two of them\nb/2.png\n\na.jpg\n")
    assert find_images(tmp_path / "photos" / "list.txt") == [
        tmp_path / "photos" / "b/2.png",
        tmp_path / "photos" / "a.jpg",
    ]
    assert find_images(tmp_path / "photos" / "a.jpg") == [tmp_path / "photos" / "a.jpg"]
    with pytest.raises(CrackLightningError, match="no file or folder"):
        find_images(tmp_path / "missing")


def test_masked_photos_pair_each_photo_with_its_mask(tmp_path):
    mask = np.zeros((6, 8))
    mask[2, 1:7] = 255
    for name in ("11125-2", "11125-1", "7q"):
        grey(tmp_path / "images" / f"{name}.jpg", np.full((6, 8), 128))
        grey(tmp_path / "masks" / f"{name}.png", mask)
    photos = masked_photos(tmp_path)
    assert [p.name for p in photos] == ["11125-1.jpg", "11125-2.jpg", "7q.jpg"]
    assert photos[0].group == photos[1].group != photos[2].group  # crops of one photograph share a group
    assert read_truth(photos[0], (6, 8)).sum() == 6
    assert [p.name for p in masked_photos(tmp_path, limit=1)] == ["11125-1.jpg"]
    with pytest.raises(CrackLightningError, match="photo's size"):
        read_truth(photos[0], (8, 6))


def test_tile_truth_calls_tiles_crack_sound_or_in_between(tmp_path):
    mask = np.zeros((10, 30), np.uint8)
    mask[0, 0:10] = 255  # 10 of the first tile's 100 pixels
    mask[0, 10] = 255  # 1 of the second tile's
    grey(tmp_path / "mask.png", mask)
    truth = read_mask(tmp_path / "mask.png", 30, 10)
    boxes = [(0, 0, 10, 10), (10, 0, 10, 10), (20, 0, 10, 10)]
    assert tile_truth(truth, boxes, crack_fraction=0.05).tolist() == [1, -1, 0]
    assert tile_truth(truth, boxes, crack_fraction=0.01).tolist() == [1, 1, 0]
    with pytest.raises(CrackLightningError, match="30x10"):
        read_mask(tmp_path / "mask.png", 10, 30)


def test_cpu_count_is_the_cpus_this_process_may_use():
    assert 1 <= cpu_count() <= (os.cpu_count() or 1)


def test_a_models_scan_task_scans_many_photos_as_scan_scans_each():
    # bench/scan_quality.py and bench/gpu.py time the scan of many photos, batches running across them
    import crack_lightning
    from tests.conftest import REPO

    sample = REPO / "crack_lightning" / "assets" / "sample"
    photos = [sorted((sample / folder).glob("*.jpg"))[0] for folder in ("Positive", "Negative")]
    model = crack_lightning.load_model("concrete-v1", precision="32")
    task = model.scan_task(tile=96, stride=64, batch_size=3)
    together = list(task.results([(p.name, p) for p in photos]))
    assert [t.name for t in together] == [p.name for p in photos]
    for tile_map, photo in zip(together, photos):
        alone = model.scan(photo, tile=96, stride=64)
        assert tile_map.boxes == alone.boxes
        np.testing.assert_allclose(tile_map.crack_probability, alone.crack_probability, atol=1e-5)
