from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crack_lightning.cli import main
from crack_lightning.data.classification import CrackDataModule
from crack_lightning.data.splits import sample_group, split_samples
from crack_lightning.results.tiling import GROUP_PATTERN, tile_boxes


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])


def photo_with_mask(folder: Path, name: str) -> None:
    """A 300x200 photo and a mask: tile (0,0) 2% crack, tile (100,0) 0.5% (left out), the rest none."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    pixels = torch.randint(0, 256, (200, 300, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    Image.fromarray(pixels.numpy()).save(folder / "images" / f"{name}.jpg")
    mask = torch.zeros(200, 300, dtype=torch.uint8)
    mask[10:30, 10:20] = 255  # 200 of 10,000 pixels: 2%
    mask[50:60, 150:155] = 255  # 50 pixels: 0.5%
    Image.fromarray(mask.numpy()).save(folder / "masks" / f"{name}.png")


def test_tiles_labels_by_the_one_percent_rule(tmp_path, capsys):
    photo_with_mask(tmp_path, "wall-1")
    photo_with_mask(tmp_path, "wall-2")
    out = tmp_path / "tiles"
    main(
        [
            "tiles",
            "--photos",
            str(tmp_path / "images"),
            "--masks",
            str(tmp_path / "masks"),
            "--output",
            str(out),
            "--tile",
            "100",
        ]
    )
    assert sorted(p.name for p in (out / "Positive").iterdir()) == ["wall-1_x0_y0.jpg", "wall-2_x0_y0.jpg"]
    negatives = sorted(p.name for p in (out / "Negative").iterdir())
    assert len(negatives) == 8 and "wall-1_x100_y0.jpg" not in negatives and "wall-1_x200_y100.jpg" in negatives
    assert Image.open(out / "Positive" / "wall-1_x0_y0.jpg").size == (100, 100)
    assert "2 Positive and 8 Negative" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # tiles already there
        main(
            [
                "tiles",
                "--photos",
                str(tmp_path / "images"),
                "--masks",
                str(tmp_path / "masks"),
                "--output",
                str(out),
                "--tile",
                "100",
            ]
        )


def test_tiles_with_context_hold_the_photo_around_them_and_keep_their_labels(tmp_path):
    photo_with_mask(tmp_path, "wall-1")
    out = tmp_path / "tiles"
    main(
        [
            "tiles",
            "--photos",
            str(tmp_path / "images"),
            "--masks",
            str(tmp_path / "masks"),
            "--output",
            str(out),
            "--tile",
            "100",
            "--context",
            "0.2",
        ]
    )
    assert sorted(p.name for p in (out / "Positive").iterdir()) == ["wall-1_x0_y0.jpg"]
    assert len(list((out / "Negative").iterdir())) == 4
    # 20 px of photo on each side, the window shifted to stay inside the 300x200 photo
    photo = torch.from_numpy(np.array(Image.open(tmp_path / "images" / "wall-1.jpg"))).float()
    tile = torch.from_numpy(np.array(Image.open(out / "Negative" / "wall-1_x200_y100.jpg"))).float()
    assert tile.shape == (140, 140, 3)
    assert (tile - photo[60:200, 160:300]).abs().mean() < 8  # JPEG-saved twice: close, not equal
    assert (tile[40:, 40:] - photo[100:200, 200:300]).abs().mean() < 8  # the tile itself, at its place in the window
    assert (tile[:100, :100] - photo[100:200, 200:300]).abs().mean() > 30  # random pixels elsewhere differ


def test_tiles_are_cut_where_scan_classifies(tmp_path):
    """tiles and scan share one tiling: the tiles written are scan's boxes (the last one shifted in at the edge)."""
    photo_with_mask(tmp_path, "wall-1")
    out = tmp_path / "tiles"
    main(
        [
            "tiles",
            "--photos",
            str(tmp_path / "images"),
            "--masks",
            str(tmp_path / "masks"),
            "--output",
            str(out),
            "--tile",
            "80",
            "--stride",
            "60",
        ]
    )
    written = sorted((int(x), int(y)) for p in out.rglob("*.jpg") for x, y in [p.stem.split("_x")[1].split("_y")])
    expected = [(x, y) for x, y, _, _ in tile_boxes(300, 200, 80, 60)]
    assert (220, 120) in expected  # the last column and row end at the photo's edges
    # every box once, but (120, 0): 50 crack pixels of 6,400, under 1%, left out
    assert written == sorted(set(expected) - {(120, 0)})
    assert all(Image.open(p).size == (80, 80) for p in out.rglob("*.jpg"))


def test_group_split_never_puts_a_group_on_both_sides():
    samples = [
        (f"{c}/photo{g}_x{x}_y0.jpg", c == "Positive")
        for g in range(20)
        for x in range(0, 500, 100)
        for c in ("Negative", "Positive")
    ]
    splits = split_samples(samples, ["Negative", "Positive"], 0.2, 0.2, seed=3, group_pattern=GROUP_PATTERN)
    groups = {s: {sample_group(p, GROUP_PATTERN) for p, _ in splits[s]} for s in splits}
    assert (
        not (groups["train"] & groups["val"])
        and not (groups["train"] & groups["test"])
        and not (groups["val"] & groups["test"])
    )
    assert sum(len(v) for v in splits.values()) == len(samples)
    assert len(splits["test"]) == 40 and len(splits["val"]) == 40  # whole groups of 10 reach the shares exactly here
    assert splits == split_samples(samples, ["Negative", "Positive"], 0.2, 0.2, seed=3, group_pattern=GROUP_PATTERN)


def test_group_column_in_split_csv_and_a_pattern_that_does_not_match(tmp_path):
    photo_with_mask(tmp_path, "a")
    photo_with_mask(tmp_path, "b")
    main(
        [
            "tiles",
            "--photos",
            str(tmp_path / "images"),
            "--masks",
            str(tmp_path / "masks"),
            "--output",
            str(tmp_path / "t"),
            "--tile",
            "100",
        ]
    )
    dm = CrackDataModule(root=str(tmp_path / "t"), group_pattern=GROUP_PATTERN, val_fraction=0.5, test_fraction=0)
    dm.setup("validate")
    from crack_lightning.data.splits import write_split_csv

    write_split_csv(tmp_path / "split.csv", dm.splits, dm.classes, GROUP_PATTERN)
    with open(tmp_path / "split.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["group"] for r in rows} == {"a", "b"}
    assert all(len({r["split"] for r in rows if r["group"] == g}) == 1 for g in ("a", "b"))
    assert sample_group("Negative/00033.jpg", GROUP_PATTERN) == "Negative/00033.jpg"  # no match: a group of its own
