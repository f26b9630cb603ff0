from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from crack_lightning.callbacks import TwoPhaseFinetuning
from crack_lightning.cli import main
from crack_lightning.data import sample_root
from crack_lightning.model import CrackClassifier
from crack_lightning.scan import output_name, probability_map, scan_photo, tile_boxes, tile_positions
from tests.conftest import copy_images

PATCH = 227
# Crack (1) and no-crack (0) patches of a 6x6 mosaic photo: rows of different mixes, so misplaced tiles show.
PATTERN = [
    [1, 0, 0, 1, 0, 0],
    [0, 1, 0, 0, 1, 0],
    [0, 0, 1, 1, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0, 1],
    [1, 0, 1, 0, 1, 1],
]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])


@pytest.fixture(scope="module")
def scan_ckpt(tmp_path_factory) -> Path:
    """A head trained on the first 80 sample images per class, mostly on frozen pretrained features: good enough to map."""
    import lightning as L

    from crack_lightning.data import CrackDataModule
    from crack_lightning.pretrained import BUNDLED_BACKBONE

    tmp = tmp_path_factory.mktemp("scan_model")
    root = copy_images(tmp / "images", 80)
    L.seed_everything(0)
    model = CrackClassifier(weights=str(BUNDLED_BACKBONE), lr=1e-2)
    data = CrackDataModule(root=str(root), batch_size=32, num_workers=0, image_size=96, val_fraction=0.1, test_fraction=0)
    trainer = L.Trainer(
        max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp, callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=3, backbone_lr=1e-5)],  # the fixture the tests were written on
    )
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp / "model.ckpt")
    return tmp / "model.ckpt"


def mosaic(path: Path, pattern: list[list[int]] = PATTERN, first: int = 150) -> Path:
    """A photo made of never-trained sample patches laid out as ``pattern`` (1 = crack patch)."""
    sources = {c: sorted((sample_root() / name).glob("*.jpg"))[first:] for c, name in ((0, "Negative"), (1, "Positive"))}
    used = {0: 0, 1: 0}
    photo = Image.new("RGB", (PATCH * len(pattern[0]), PATCH * len(pattern)))
    for r, row in enumerate(pattern):
        for c, value in enumerate(row):
            photo.paste(Image.open(sources[value][used[value]]).convert("RGB").resize((PATCH, PATCH)), (c * PATCH, r * PATCH))
            used[value] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    photo.save(path, quality=95)
    return path


def scan(ckpt: Path, source: Path, output: Path, *extra: str) -> None:
    # Context 0: the mosaics' patches are the tiles, and a neighbour's edge is no crack of theirs.
    main(["scan", "--ckpt_path", str(ckpt), "--input", str(source), "--output", str(output), "--progress", "false",
          "--context", "0", *extra])


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_tiles_cover_the_photo_and_shift_the_last_one_in():
    assert tile_positions(544, 128, 64) == [0, 64, 128, 192, 256, 320, 384, 416]
    assert tile_positions(512, 128, 128) == [0, 128, 256, 384]
    assert tile_positions(100, 128, 64) == [0]
    boxes = tile_boxes(300, 100, 128, 64)
    assert boxes == [(0, 0, 128, 100), (64, 0, 128, 100), (128, 0, 128, 100), (172, 0, 128, 100)]
    covered = torch.zeros(100, 300, dtype=torch.bool)
    for x, y, w, h in boxes:
        covered[y : y + h, x : x + w] = True
    assert covered.all()


def test_probability_map_is_the_mean_of_the_covering_tiles():
    width, height = 230, 150
    boxes = tile_boxes(width, height, 64, 40)
    probabilities = torch.rand(len(boxes), generator=torch.Generator().manual_seed(0))
    total, count = torch.zeros(height, width), torch.zeros(height, width)
    for (x, y, w, h), p in zip(boxes, probabilities):
        total[y : y + h, x : x + w] += p
        count[y : y + h, x : x + w] += 1
    assert torch.allclose(probability_map(boxes, probabilities, width, height), total / count, atol=1e-6)


def test_output_names_stay_inside_the_folder():
    assert output_name("wall A/IMG_1.JPG") == Path("wall A/IMG_1.JPG.png")
    assert output_name("/abs/photo.jpg") == Path("abs/photo.jpg.png")
    assert output_name("../up/photo.jpg") == Path("_/up/photo.jpg.png")


def test_mosaic_pattern_is_recovered(scan_ckpt, tmp_path):
    photos = tmp_path / "photos"
    mosaic(photos / "site 1" / "wall.jpg")
    out = tmp_path / "scan"
    scan(scan_ckpt, photos, out, "--tile", str(PATCH), "--stride", str(PATCH), "--masks", "true")

    tiles = read_rows(out / "tiles.csv")
    assert list(tiles[0]) == ["photo", "x", "y", "width", "height", "crack_probability", "label"]
    assert len(tiles) == 36 and {t["photo"] for t in tiles} == {"site 1/wall.jpg"}
    right = sum((t["label"] == "Positive") == bool(PATTERN[int(t["y"]) // PATCH][int(t["x"]) // PATCH]) for t in tiles)
    assert right / len(tiles) >= 0.97, f"{right} of {len(tiles)} tiles right"

    (photo,) = read_rows(out / "photos.csv")
    assert photo == {
        "photo": "site 1/wall.jpg", "width": str(6 * PATCH), "height": str(6 * PATCH), "tiles": "36",
        "crack_tiles": str(sum(t["label"] == "Positive" for t in tiles)),
        "max_crack_probability": f"{max(float(t['crack_probability']) for t in tiles):.6f}",
        "label": "Positive", "error": "",
    }
    overlay = Image.open(out / "overlays" / "site 1" / "wall.jpg.png")
    assert overlay.size == (6 * PATCH, 6 * PATCH) and overlay.mode == "RGB"
    mask = Image.open(out / "masks" / "site 1" / "wall.jpg.png")
    assert mask.size == (6 * PATCH, 6 * PATCH) and mask.mode == "L"
    # Tiles do not overlap here, so each tile's block of the mask is its probability.
    t = tiles[7]
    value = mask.getpixel((int(t["x"]) + 100, int(t["y"]) + 100))
    assert value == round(float(t["crack_probability"]) * 255)


def test_scan_photo_api_matches_the_cli(scan_ckpt, tmp_path):
    path = mosaic(tmp_path / "m.jpg", [[1, 0], [0, 0]])
    model = CrackClassifier.load_from_checkpoint(scan_ckpt, map_location="cpu")
    boxes, crack_probability, crack_map = scan_photo(model, path, tile=300, stride=150, context=0)
    assert boxes == tile_boxes(2 * PATCH, 2 * PATCH, 300, 150) and crack_map.shape == (2 * PATCH, 2 * PATCH)
    scan(scan_ckpt, path, tmp_path / "out", "--tile", "300", "--stride", "150", "--batch_size", "3")
    rows = read_rows(tmp_path / "out" / "tiles.csv")
    assert [(int(r["x"]), int(r["y"])) for r in rows] == [(x, y) for x, y, _, _ in boxes]
    assert torch.allclose(torch.tensor([float(r["crack_probability"]) for r in rows]), crack_probability, atol=1e-5)
    assert 0 <= crack_map.min() and crack_map.max() <= 1


def test_bf16_scan_runs_openvino_close_to_float32(scan_ckpt, tmp_path, monkeypatch):
    from crack_lightning import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # as on an AMX CPU
    path = mosaic(tmp_path / "m.jpg", [[1, 0], [0, 1]])
    scan(scan_ckpt, path, tmp_path / "f32", "--tile", "300", "--stride", "150")
    scan(scan_ckpt, path, tmp_path / "bf16", "--tile", "300", "--stride", "150", "--precision", "bf16")
    f32, bf16 = ([float(r["crack_probability"]) for r in read_rows(tmp_path / d / "tiles.csv")] for d in ("f32", "bf16"))
    assert len(f32) == len(bf16) == 9 and max(abs(a - b) for a, b in zip(f32, bf16)) < 0.1
    model = CrackClassifier.load_from_checkpoint(scan_ckpt, map_location="cpu")
    assert type(model.inference_network(precision="bf16", takes_uint8=True)).__name__ == "OpenVinoNetwork"


def test_exif_rotated_photo_gives_rotated_coordinates(scan_ckpt, tmp_path):
    upright = mosaic(tmp_path / "upright" / "p.jpg", [[1, 0, 0], [0, 0, 1]])  # 681 wide, 454 high as seen
    stored = Image.open(upright).transpose(Image.Transpose.ROTATE_90)  # stored on its side, 454 x 681
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    (tmp_path / "rotated").mkdir()
    stored.save(tmp_path / "rotated" / "p.jpg", exif=exif, quality=95)
    scan(scan_ckpt, tmp_path / "rotated", tmp_path / "out_rotated", "--tile", str(PATCH), "--stride", str(PATCH))
    (photo,) = read_rows(tmp_path / "out_rotated" / "photos.csv")
    assert (photo["width"], photo["height"]) == (str(3 * PATCH), str(2 * PATCH))
    tiles = read_rows(tmp_path / "out_rotated" / "tiles.csv")
    assert [(int(t["x"]), int(t["y"])) for t in tiles] == [(x, y) for y in (0, PATCH) for x in (0, PATCH, 2 * PATCH)]
    crack = [t["label"] == "Positive" for t in tiles]
    assert sum(a == b for a, b in zip(crack, [True, False, False, False, False, True])) >= 5
    assert Image.open(tmp_path / "out_rotated" / "overlays" / "p.jpg.png").size == (3 * PATCH, 2 * PATCH)


def test_small_photo_corrupt_file_and_no_overwrite(scan_ckpt, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(next((sample_root() / "Positive").glob("*.jpg"))).resize((90, 60)).save(photos / "small.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "scan"
    scan(scan_ckpt, photos, out)
    rows = {r["photo"]: r for r in read_rows(out / "photos.csv")}
    assert set(rows) == {"small.png", "broken.jpg"}
    assert "broken.jpg: cannot be read as an image" in rows["broken.jpg"]["error"]
    assert rows["small.png"]["tiles"] == "1" and (rows["small.png"]["width"], rows["small.png"]["height"]) == ("90", "60")
    (tile,) = read_rows(out / "tiles.csv")
    assert (tile["x"], tile["y"], tile["width"], tile["height"]) == ("0", "0", "90", "60")
    assert Image.open(out / "overlays" / "small.png.png").size == (90, 60)
    assert not (out / "overlays" / "broken.jpg.png").exists()

    before = (out / "photos.csv").read_text()
    with pytest.raises(SystemExit) as exit_info:
        scan(scan_ckpt, photos, out)
    assert exit_info.value.code == 2 and "already holds scan results" in capsys.readouterr().err
    assert (out / "photos.csv").read_text() == before
    scan(scan_ckpt, photos, out, "--overwrite", "true")
    assert (out / "photos.csv").read_text() == before


def test_resume_skips_finished_photos_and_drops_unfinished_tiles(scan_ckpt, tmp_path, capsys):
    photos = tmp_path / "photos"
    for name in ("a", "b", "c"):
        mosaic(photos / f"{name}.jpg", [[1, 0]])
    out = tmp_path / "scan"
    scan(scan_ckpt, photos, out, "--tile", str(PATCH), "--stride", str(PATCH))
    complete_tiles = (out / "tiles.csv").read_text()
    # Cut the scan short after photo a: b's tiles were written, its photos.csv row was not.
    photo_lines = (out / "photos.csv").read_text().splitlines(keepends=True)
    (out / "photos.csv").write_text("".join(photo_lines[:2]))
    tile_lines = complete_tiles.splitlines(keepends=True)
    (out / "tiles.csv").write_text("".join(tile_lines[:5]))
    capsys.readouterr()
    scan(scan_ckpt, photos, out, "--tile", str(PATCH), "--stride", str(PATCH), "--resume", "true")
    printed = capsys.readouterr().out
    assert "Scanned 2 photos" in printed and "1 already done" in printed
    assert [r["photo"] for r in read_rows(out / "photos.csv")] == ["a.jpg", "b.jpg", "c.jpg"]
    assert (out / "tiles.csv").read_text() == complete_tiles


def test_huge_photo_overlay_is_drawn_smaller(scan_ckpt, tmp_path):
    path = mosaic(tmp_path / "photos" / "wide.jpg", [[1, 0, 0, 1]])
    scan(scan_ckpt, path, tmp_path / "out", "--tile", str(PATCH), "--overlay_max_side", "400", "--masks", "true")
    assert Image.open(tmp_path / "out" / "overlays" / "wide.jpg.png").size == (400, 100)
    assert Image.open(tmp_path / "out" / "masks" / "wide.jpg.png").size == (4 * PATCH, PATCH)  # masks stay full size


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tile", "0"], "--tile"),
        (["--masks", "maybe"], "--masks"),
    ],
)
def test_bad_flags_are_one_line_errors(scan_ckpt, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        scan(scan_ckpt, tmp_path, tmp_path / "out", *args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_missing_input_and_checkpoint(scan_ckpt, tmp_path, capsys):
    with pytest.raises(SystemExit):
        scan(scan_ckpt, tmp_path / "nowhere", tmp_path / "out")
    assert "--input: no file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        scan(tmp_path / "missing.ckpt", tmp_path, tmp_path / "out")
    assert "--ckpt_path: no file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_context_window_grows_the_tile_and_stays_inside_the_photo():
    from crack_lightning.scan import context_window

    assert context_window((100, 100, 50, 50), 10, 500, 400) == (90, 90, 70, 70)
    assert context_window((0, 0, 50, 50), 10, 500, 400) == (0, 0, 70, 70)  # shifted in, not cut
    assert context_window((450, 350, 50, 50), 10, 500, 400) == (430, 330, 70, 70)
    assert context_window((0, 0, 50, 40), 10, 60, 40) == (0, 0, 60, 40)  # never larger than the photo


def test_context_changes_what_the_network_sees_not_the_tiles(scan_ckpt, tmp_path):
    path = mosaic(tmp_path / "m.jpg", [[1, 0, 0], [0, 0, 1]])
    model = CrackClassifier.load_from_checkpoint(scan_ckpt, map_location="cpu")
    boxes, alone, _ = scan_photo(model, path, tile=200, stride=150, context=0)
    boxes_ctx, with_context, _ = scan_photo(model, path, tile=200, stride=150)  # the default context
    assert boxes == boxes_ctx
    assert not torch.allclose(alone, with_context)
