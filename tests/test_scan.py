"""scan: tiling, the probability map, the CSV files and pictures, names, the lock, and kill -9 then resume.

Most tests run a stand-in graph whose crack probability is the brightness of what it sees (instant, exact, no
training): they know each tile's probability from its pixels. The mosaic tests run a briefly trained network.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crack_lightning import load_model
from crack_lightning.cli import main
from crack_lightning.data.classification import sample_root
from crack_lightning.io.scan_files import picture_names
from crack_lightning.results.tiling import context_window, probability_map, tile_boxes, tile_positions
from crack_lightning.runtime.classifier import Classifier
from crack_lightning.runtime.onnx_file import with_metadata
from crack_lightning.scanning.folder import lock_output
from crack_lightning.scanning.tile_map import scan_photo, scan_photos
from tests.conftest import REPO, copy_images

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


def brightness_model(path: Path, size: int = 32) -> Path:
    """An exported graph as ``export`` writes one (uint8 in, two class probabilities out, the metadata) whose crack
    probability is the mean brightness of the window it sees / 255."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Cast", ["images"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Div", ["mean", "white"], ["crack"]),
        helper.make_node("Unsqueeze", ["crack", "axis"], ["crack_column"]),
        helper.make_node("Sub", ["one", "crack_column"], ["sound_column"]),
        helper.make_node("Concat", ["sound_column", "crack_column"], ["probabilities"], axis=1),
    ]
    constants = [
        numpy_helper.from_array(np.array(255.0, np.float32), "white"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array([1], np.int64), "axis"),
    ]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    metadata = {
        "task": "classification",
        "class_names": ["Negative", "Positive"],
        "crack_class": "Positive",
        "image_size": size,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(with_metadata(model.SerializeToString(), metadata))
    return path


@pytest.fixture(scope="module")
def bright(tmp_path_factory) -> Path:
    return brightness_model(tmp_path_factory.mktemp("brightness") / "brightness.onnx")


@pytest.fixture(scope="module")
def scan_model(tmp_path_factory) -> Path:
    """A head trained on the first 80 sample images per class, mostly on frozen pretrained features (good enough
    to map), exported as scan runs it."""
    import lightning as L

    from crack_lightning.data.classification import CrackDataModule
    from crack_lightning.export.onnx import export_checkpoint
    from crack_lightning.models.classifier import CrackClassifier
    from crack_lightning.models.pretrained import BUNDLED_BACKBONE
    from crack_lightning.training.callbacks import TwoPhaseFinetuning

    tmp = tmp_path_factory.mktemp("scan_model")
    root = copy_images(tmp / "images", 80)
    L.seed_everything(0)
    model = CrackClassifier(weights=str(BUNDLED_BACKBONE), lr=1e-2)
    data = CrackDataModule(
        root=str(root), batch_size=32, num_workers=0, image_size=96, val_fraction=0.1, test_fraction=0
    )
    trainer = L.Trainer(
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp,
        callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=3, backbone_lr=1e-5)],
    )
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp / "model.ckpt")
    (tmp / "model.onnx").write_bytes(export_checkpoint(tmp / "model.ckpt"))
    return tmp / "model.onnx"


def mosaic(path: Path, pattern: list[list[int]] = PATTERN, first: int = 150) -> Path:
    """A photo made of never-trained sample patches laid out as ``pattern`` (1 = crack patch)."""
    sources = {
        c: sorted((sample_root() / name).glob("*.jpg"))[first:] for c, name in ((0, "Negative"), (1, "Positive"))
    }
    used = {0: 0, 1: 0}
    photo = Image.new("RGB", (PATCH * len(pattern[0]), PATCH * len(pattern)))
    for r, row in enumerate(pattern):
        for c, value in enumerate(row):
            photo.paste(
                Image.open(sources[value][used[value]]).convert("RGB").resize((PATCH, PATCH)), (c * PATCH, r * PATCH)
            )
            used[value] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    photo.save(path, quality=95)
    return path


def blocks(path: Path, grey: list[list[int]], side: int = 64) -> Path:
    """A lossless photo of ``side``-pixel blocks of the grey levels ``grey`` (rows of blocks)."""
    pixels = np.kron(np.array(grey, np.uint8), np.ones((side, side), np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(path)
    return path


def scan(model: Path, source: Path, output: Path, *extra: str) -> None:
    # Context 0: the mosaics' patches are the tiles, and a neighbour's edge is no crack of theirs.
    main(
        [
            "scan",
            "--ckpt_path",
            str(model),
            "--input",
            str(source),
            "--output",
            str(output),
            "--progress",
            "false",
            "--context",
            "0",
            *extra,
        ]
    )


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- geometry ---------------------------------------------------------------------------------------------------


def test_tiles_cover_the_photo_and_shift_the_last_one_in():
    assert tile_positions(544, 128, 64) == [0, 64, 128, 192, 256, 320, 384, 416]
    assert tile_positions(512, 128, 128) == [0, 128, 256, 384]
    assert tile_positions(100, 128, 64) == [0]
    boxes = tile_boxes(300, 100, 128, 64)
    assert boxes == [(0, 0, 128, 100), (64, 0, 128, 100), (128, 0, 128, 100), (172, 0, 128, 100)]
    covered = np.zeros((100, 300), bool)
    for x, y, w, h in boxes:
        covered[y : y + h, x : x + w] = True
    assert covered.all()


@pytest.mark.parametrize("size", [None, (61, 97)])
def test_probability_map_is_the_mean_of_the_covering_tiles(size):
    width, height = 230, 150
    boxes = tile_boxes(width, height, 64, 40)
    probabilities = np.random.default_rng(0).random(len(boxes))
    total, count = np.zeros((height, width)), np.zeros((height, width))
    for (x, y, w, h), p in zip(boxes, probabilities):
        total[y : y + h, x : x + w] += p
        count[y : y + h, x : x + w] += 1
    expected = total / count
    if size:  # sampled at pixel centres scaled to the photo
        rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(int), height - 1)
        columns = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(int), width - 1)
        expected = expected[rows][:, columns]
    assert np.allclose(probability_map(boxes, probabilities, width, height, size), expected, atol=1e-6)


def test_context_window_grows_the_tile_and_stays_inside_the_photo():
    assert context_window((100, 100, 50, 50), 10, 500, 400) == (90, 90, 70, 70)
    assert context_window((0, 0, 50, 50), 10, 500, 400) == (0, 0, 70, 70)  # shifted in, not cut
    assert context_window((450, 350, 50, 50), 10, 500, 400) == (430, 330, 70, 70)
    assert context_window((0, 0, 50, 40), 10, 60, 40) == (0, 0, 60, 40)  # never larger than the photo


# -- scanning, with the brightness graph ----------------------------------------------------------------------------


def test_batches_across_photos_give_each_tile_its_own_probability(bright, tmp_path):
    classifier = Classifier.from_file(bright)
    greys = {"a": [[0, 255, 51]], "b": [[102], [204]], "c": [[153, 0], [255, 102]]}
    photos = [(name, blocks(tmp_path / f"{name}.png", grey)) for name, grey in greys.items()]
    photos.insert(1, ("broken", tmp_path / "missing.png"))
    scans = list(scan_photos(classifier, photos, tile=64, stride=64, batch_size=3, context=0))
    assert [s.name for s in scans] == ["a", "broken", "b", "c"]
    assert "missing.png" in scans[1].error and scans[1].boxes == []
    for s in (scans[0], scans[2], scans[3]):
        grey = np.array(greys[s.name])
        assert [(b[0], b[1]) for b in s.boxes] == [
            (x * 64, y * 64) for y in range(grey.shape[0]) for x in range(grey.shape[1])
        ]
        assert np.allclose(s.crack_probability, grey.flatten() / 255, atol=1e-6)
        assert s.image.shape == (grey.shape[0] * 64, grey.shape[1] * 64, 3)


def test_context_changes_what_the_network_sees_not_the_tiles(bright, tmp_path):
    classifier = Classifier.from_file(bright)
    path = blocks(tmp_path / "p.png", [[0, 255, 0]])
    boxes, alone, _ = scan_photo(classifier, path, tile=64, stride=64, context=0)
    boxes_ctx, seen, _ = scan_photo(classifier, path, tile=64, stride=64, context=0.25)  # 16 px around each tile
    assert boxes == boxes_ctx
    assert np.allclose(alone, [0, 1, 0], atol=1e-6)
    # Each window is 96 px wide, shifted in at the photo's edges: the outer ones hold 32 px of the white tile.
    assert np.allclose(seen, [32 / 96, 64 / 96, 32 / 96], atol=0.02)


def test_overlay_blends_the_turbo_colour_over_the_photo(bright, tmp_path):
    import matplotlib

    path = blocks(tmp_path / "photos" / "p.png", [[0, 255]], side=128)
    scan(bright, path, tmp_path / "out", "--tile", "128", "--masks", "true")
    overlay = np.asarray(Image.open(tmp_path / "out" / "overlays" / "p.png.png"))
    red = (np.array(matplotlib.colormaps["turbo"](1.0)[:3]) * 255).astype(np.uint8)
    assert (overlay[120, 10] == 0).all()  # probability 0: the photo, untouched
    assert np.abs(overlay[120, 250].astype(int) - np.round(255 * 0.4 + red * 0.6)).max() <= 1  # probability 1
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "p.png.png"))
    assert mask.shape == (128, 256) and (mask[:, :128] == 0).all() and (mask[:, 128:] == 255).all()


def test_small_photo_corrupt_file_and_no_overwrite(bright, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(next((sample_root() / "Positive").glob("*.jpg"))).resize((90, 60)).save(photos / "small.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (photos / "notes.txt").write_text("not a photo")
    out = tmp_path / "scan"
    scan(bright, photos, out)
    rows = {r["photo"]: r for r in read_rows(out / "photos.csv")}
    assert set(rows) == {"small.png", "broken.jpg", "notes.txt"}  # nothing under --input is left out unsaid
    assert "broken.jpg: cannot be read as an image" in rows["broken.jpg"]["error"]
    assert "notes.txt: unsupported type (.txt)" in rows["notes.txt"]["error"]
    assert rows["small.png"]["tiles"] == "1" and (rows["small.png"]["width"], rows["small.png"]["height"]) == (
        "90",
        "60",
    )
    (tile,) = read_rows(out / "tiles.csv")
    assert (tile["x"], tile["y"], tile["width"], tile["height"]) == ("0", "0", "90", "60")
    assert Image.open(out / "overlays" / "small.png.png").size == (90, 60)
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["small.png.png"]

    before = (out / "photos.csv").read_text()
    with pytest.raises(SystemExit) as exit_info:
        scan(bright, photos, out)
    assert exit_info.value.code == 2 and "already holds scan results" in capsys.readouterr().err
    assert (out / "photos.csv").read_text() == before
    scan(bright, photos, out, "--overwrite", "true")
    assert (out / "photos.csv").read_text() == before


def test_exif_rotated_photo_gives_rotated_coordinates(bright, tmp_path):
    upright = blocks(tmp_path / "upright.png", [[255, 0, 0], [0, 0, 255]])  # 192 wide, 128 high as seen
    stored = Image.open(upright).transpose(Image.Transpose.ROTATE_90)  # stored on its side, 128 x 192
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    (tmp_path / "rotated").mkdir()
    stored.save(tmp_path / "rotated" / "p.png", exif=exif)
    scan(bright, tmp_path / "rotated", tmp_path / "out", "--tile", "64")
    (photo,) = read_rows(tmp_path / "out" / "photos.csv")
    assert (photo["width"], photo["height"]) == ("192", "128")
    tiles = read_rows(tmp_path / "out" / "tiles.csv")
    assert [(int(t["x"]), int(t["y"])) for t in tiles] == [(x, y) for y in (0, 64) for x in (0, 64, 128)]
    assert [t["label"] for t in tiles] == ["Positive", "Negative", "Negative", "Negative", "Negative", "Positive"]
    assert Image.open(tmp_path / "out" / "overlays" / "p.png.png").size == (192, 128)


def test_huge_photo_overlay_is_drawn_smaller(bright, tmp_path):
    path = blocks(tmp_path / "photos" / "wide.png", [[255, 0, 0, 255]], side=100)
    scan(bright, path, tmp_path / "out", "--tile", "100", "--overlay_max_side", "200", "--masks", "true")
    assert Image.open(tmp_path / "out" / "overlays" / "wide.png.png").size == (200, 50)
    assert Image.open(tmp_path / "out" / "masks" / "wide.png.png").size == (400, 100)  # masks stay full size


def test_picture_names_are_short_and_unique():
    names = picture_names(
        [
            "site 1/wall.jpg",
            "/data/site-12/photo.jpg",
            "/data/site-13/photo.jpg",
            "/data/site-13/IMG.JPG",
            "/elsewhere/img.jpg",
            "../up/lone.jpg",
        ]
    )
    assert names["site 1/wall.jpg"] == "site 1/wall.jpg"  # a name under the input folder stays as it is
    assert names["../up/lone.jpg"] == "lone.jpg"
    assert {names["/data/site-12/photo.jpg"], names["/data/site-13/photo.jpg"]} == {
        n for n in names.values() if n.startswith("photo-")
    }  # the same file name twice: a hash of each path
    assert names["/data/site-13/IMG.JPG"].startswith("IMG-") and names["/elsewhere/img.jpg"].startswith("img-")
    assert len({n.lower() for n in names.values()}) == len(names)
    assert all(len(n) <= 20 for n in names.values() if "/" not in n)


def test_results_inside_the_input_folder_are_not_scanned_again(bright, tmp_path):
    """--output inside --input: a second scan (overwrite, resume, or into another folder there) scans the photos, not
    the overlays, masks and thumbnails the first one wrote."""
    photos = tmp_path / "photos"
    for i, grey in enumerate((40, 200, 120)):
        blocks(photos / f"p{i}.png", [[grey, 255 - grey], [grey, grey]])
    scan(bright, photos, photos / "results", "--masks", "true")
    assert len(list((photos / "results").rglob("*.png"))) == 6  # overlays and masks: would be photos 4-9
    scan(bright, photos, photos / "results", "--masks", "true", "--overwrite", "true")
    scan(bright, photos, photos / "more", "--masks", "true")
    for out in ("results", "more"):
        assert [r["photo"] for r in read_rows(photos / out / "photos.csv")] == ["p0.png", "p1.png", "p2.png"], out


def test_a_list_of_absolute_paths_gives_short_picture_names(bright, tmp_path):
    a = blocks(tmp_path / "data" / "site-12" / "photo.png", [[255]])
    b = blocks(tmp_path / "data" / "site-13" / "photo.png", [[0]])
    c = blocks(tmp_path / "data" / "site-13" / "other.png", [[0]])
    listing = tmp_path / "lists" / "photos.txt"
    listing.parent.mkdir()
    listing.write_text("\n".join(str(p) for p in (a, b, c)) + "\n")
    out = tmp_path / "out"
    scan(bright, listing, out, "--tile", "64")
    assert [r["photo"] for r in read_rows(out / "photos.csv")] == [str(a), str(b), str(c)]  # full paths kept
    overlays = sorted(p.relative_to(out / "overlays").as_posix() for p in (out / "overlays").rglob("*.png"))
    assert len(overlays) == 3 and "other.png.png" in overlays and all("/" not in o for o in overlays)
    page = (out / "report.html").read_text()
    assert all(str(p) in page for p in (a, b, c))


def test_resume_skips_finished_photos_and_drops_unfinished_tiles(bright, tmp_path, capsys):
    photos = tmp_path / "photos"
    for name, grey in (("a", 0), ("b", 128), ("c", 255)):
        blocks(photos / f"{name}.png", [[grey, 255 - grey]])
    out = tmp_path / "scan"
    scan(bright, photos, out, "--tile", "64")
    complete_tiles, complete_photos = (out / "tiles.csv").read_text(), (out / "photos.csv").read_text()
    # Cut short in photo b: its tiles written, half of its photos.csv row too, then killed.
    photo_lines = complete_photos.splitlines(keepends=True)
    (out / "photos.csv").write_text("".join(photo_lines[:2]) + photo_lines[2][:9])
    (out / "tiles.csv").write_text("".join(complete_tiles.splitlines(keepends=True)[:5])[:-7])
    capsys.readouterr()
    scan(bright, photos, out, "--tile", "64", "--resume", "true")
    printed = capsys.readouterr().out
    assert "Scanned 2 photos" in printed and "1 already done" in printed
    assert (out / "photos.csv").read_text() == complete_photos
    assert (out / "tiles.csv").read_text() == complete_tiles


def test_resume_with_other_options_is_refused(bright, tmp_path, capsys):
    path = blocks(tmp_path / "photos" / "p.png", [[0, 255]])
    scan(bright, path, tmp_path / "out", "--tile", "64")
    before = (tmp_path / "out" / "tiles.csv").read_text()
    with pytest.raises(SystemExit) as exit_info:
        scan(bright, path, tmp_path / "out", "--tile", "32", "--resume", "true")
    assert exit_info.value.code == 2 and "made with tile 64" in capsys.readouterr().err
    assert (tmp_path / "out" / "tiles.csv").read_text() == before


@pytest.mark.parametrize("args, message", [(["--tile", "0"], "--tile"), (["--masks", "maybe"], "masks")])
def test_bad_flags_are_one_line_errors(bright, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        scan(bright, tmp_path, tmp_path / "out", *args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_output_that_cannot_be_written_is_one_line(bright, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    path = blocks(tmp_path / "photos" / "p.png", [[0]])
    with pytest.raises(SystemExit) as exit_info:
        scan(bright, path, blocker / "out")
    err = capsys.readouterr().err
    assert (
        exit_info.value.code == 2 and f"--output: cannot write into {blocker / 'out'}" in err and "Traceback" not in err
    )
    assert blocker.read_text() == "in the way"


def test_missing_input_and_checkpoint(bright, tmp_path, capsys):
    with pytest.raises(SystemExit):
        scan(bright, tmp_path / "nowhere", tmp_path / "out")
    assert "--input: no file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        scan(tmp_path / "missing.ckpt", tmp_path, tmp_path / "out")
    assert "--ckpt_path: no file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- a second scan, and scans killed midway ---------------------------------------------------------------------------


def cli(model: Path, photos: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "crack_lightning",
        "scan",
        "--ckpt_path",
        str(model),
        "--input",
        str(photos),
        "--output",
        str(out),
        "--tile",
        "48",
        "--stride",
        "40",
        "--batch_size",
        "7",
        "--masks",
        "true",
        "--progress",
        "false",
        *extra,
    ]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120)


def test_a_second_scan_of_the_same_folder_is_refused(bright, tmp_path):
    photos = tmp_path / "photos"
    blocks(photos / "p.png", [[0, 255]])
    out = tmp_path / "out"
    out.mkdir()
    with lock_output(out):  # as a scan running in another process holds it
        refused = run_cli(cli(bright, photos, out))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[-1].startswith(
        f"crack_lightning: error: --output: {out} is being written by another scan"
    )
    assert not (out / "photos.csv").exists()
    assert run_cli(cli(bright, photos, out)).returncode == 0  # released


def random_photos(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        height, width = rng.integers(90, 260, size=2)
        pixels = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((int(width), int(height)), Image.NEAREST)
        paths.append(folder / f"group{i % 3}" / f"photo {i:03d}.{'png' if i % 2 else 'jpg'}")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        image.save(paths[-1])
    (folder / "group0" / "broken.jpg").write_bytes(b"\xff\xd8 cut")
    return paths


def rows_in(path: Path) -> int:
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


def kill_and_resume(model: Path, photos: Path, out: Path, kills: int, rng: random.Random, total: int) -> int:
    """Start the scan, kill -9 it at ``kills`` points (after a random number of photos and a random delay), resume
    each time; returns how many runs were killed before finishing."""
    killed = 0
    for k in range(kills + 1):
        process = subprocess.Popen(
            cli(model, photos, out, "--resume", "true"),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if k < kills:
            target = min(total, rows_in(out / "photos.csv") + rng.randint(0, max(1, total // (kills + 1))))
            while process.poll() is None and rows_in(out / "photos.csv") < target:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.03))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                killed += 1
        _, err = process.communicate(timeout=120)
        assert process.returncode in (0, -signal.SIGKILL), err
    assert process.returncode == 0, err
    return killed


def check_same_as_uninterrupted(model: Path, photos: Path, out: Path, reference: Path, count: int) -> None:
    assert run_cli(cli(model, photos, reference)).returncode == 0
    assert (out / "photos.csv").read_text() == (reference / "photos.csv").read_text()  # each photo once, in order
    assert (out / "tiles.csv").read_text() == (reference / "tiles.csv").read_text()  # each tile once
    assert len(read_rows(out / "photos.csv")) == count + 1  # and the broken one
    for folder, suffix in (("overlays", ".png"), ("masks", ".png"), ("thumbnails", ".jpg")):
        files = sorted(p.relative_to(out) for p in (out / folder).rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(reference) for p in (reference / folder).rglob("*") if p.is_file())
        assert len(files) == count and all(f.suffix == suffix for f in files)  # nothing half-written left
        for f in files:
            with Image.open(out / f) as im:
                im.load()
    assert (out / "report.html").read_text().count("<tr><td") == count + 1


def test_scan_killed_at_random_points_resumes_to_the_same_results(bright, tmp_path):
    photos, count = tmp_path / "photos", 16
    random_photos(photos, count)
    killed = kill_and_resume(bright, photos, tmp_path / "out", 4, random.Random(1), count)
    assert killed >= 3
    check_same_as_uninterrupted(bright, photos, tmp_path / "out", tmp_path / "reference", count)


@pytest.mark.slow
def test_long_scan_killed_many_times_resumes_to_the_same_results(bright, tmp_path):
    photos, count = tmp_path / "photos", 150
    random_photos(photos, count, seed=2)
    killed = kill_and_resume(bright, photos, tmp_path / "out", 15, random.Random(2), count)
    assert killed >= 12
    check_same_as_uninterrupted(bright, photos, tmp_path / "out", tmp_path / "reference", count)


# -- with a trained network -------------------------------------------------------------------------------------------


def test_mosaic_pattern_is_recovered(scan_model, tmp_path):
    photos = tmp_path / "photos"
    mosaic(photos / "site 1" / "wall.jpg")
    out = tmp_path / "scan"
    scan(scan_model, photos, out, "--tile", str(PATCH), "--stride", str(PATCH), "--masks", "true")

    tiles = read_rows(out / "tiles.csv")
    assert list(tiles[0]) == ["photo", "x", "y", "width", "height", "crack_probability", "label"]
    assert len(tiles) == 36 and {t["photo"] for t in tiles} == {"site 1/wall.jpg"}
    right = sum((t["label"] == "Positive") == bool(PATTERN[int(t["y"]) // PATCH][int(t["x"]) // PATCH]) for t in tiles)
    assert right / len(tiles) >= 0.97, f"{right} of {len(tiles)} tiles right"

    (photo,) = read_rows(out / "photos.csv")
    assert photo == {
        "photo": "site 1/wall.jpg",
        "width": str(6 * PATCH),
        "height": str(6 * PATCH),
        "tiles": "36",
        "crack_tiles": str(sum(t["label"] == "Positive" for t in tiles)),
        "max_crack_probability": f"{max(float(t['crack_probability']) for t in tiles):.6f}",
        "label": "Positive",
        "error": "",
    }
    overlay = Image.open(out / "overlays" / "site 1" / "wall.jpg.png")
    assert overlay.size == (6 * PATCH, 6 * PATCH) and overlay.mode == "RGB"
    mask = Image.open(out / "masks" / "site 1" / "wall.jpg.png")
    assert mask.size == (6 * PATCH, 6 * PATCH) and mask.mode == "L"
    # Tiles do not overlap here, so each tile's block of the mask is its probability.
    t = tiles[7]
    assert mask.getpixel((int(t["x"]) + 100, int(t["y"]) + 100)) == round(float(t["crack_probability"]) * 255)


@pytest.mark.parametrize("context", [0.0, 0.125])
def test_scan_gives_the_classifiers_probabilities_of_its_windows(scan_model, tmp_path, context):
    path = mosaic(tmp_path / "m.jpg", [[1, 0], [0, 0]])
    classifier = load_model(scan_model)
    boxes, crack_probability, crack_map = scan_photo(classifier, path, tile=300, stride=150, context=context)
    assert boxes == tile_boxes(2 * PATCH, 2 * PATCH, 300, 150) and crack_map.shape == (2 * PATCH, 2 * PATCH)
    image = np.asarray(Image.open(path).convert("RGB"))
    margin = round(context * 300)
    windows = [context_window(box, margin, 2 * PATCH, 2 * PATCH) for box in boxes]
    direct = classifier.predict([image[y : y + h, x : x + w] for x, y, w, h in windows]).crack_probability
    assert np.abs(direct - crack_probability).max() < 1e-5
    main(
        [
            "scan",
            "--ckpt_path",
            str(scan_model),
            "--input",
            str(path),
            "--output",
            str(tmp_path / "out"),
            "--progress",
            "false",
            "--tile",
            "300",
            "--stride",
            "150",
            "--batch_size",
            "3",
            "--context",
            str(context),
            "--precision",
            "32",
        ]
    )
    rows = read_rows(tmp_path / "out" / "tiles.csv")
    assert [(int(r["x"]), int(r["y"])) for r in rows] == [(x, y) for x, y, _, _ in boxes]
    assert np.abs(np.array([float(r["crack_probability"]) for r in rows]) - crack_probability).max() < 1e-5


def test_bf16_scan_runs_openvino_close_to_float32(scan_model, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    from crack_lightning.runtime import backends

    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)  # as on an AMX CPU
    assert load_model(scan_model, precision="bf16").backend == "openvino"
    path = mosaic(tmp_path / "m.jpg", [[1, 0], [0, 1]])
    scan(scan_model, path, tmp_path / "f32", "--tile", "300", "--stride", "150")
    scan(scan_model, path, tmp_path / "bf16", "--tile", "300", "--stride", "150", "--precision", "bf16")
    f32, bf16 = (
        [float(r["crack_probability"]) for r in read_rows(tmp_path / d / "tiles.csv")] for d in ("f32", "bf16")
    )
    assert len(f32) == len(bf16) == 9 and max(abs(a - b) for a, b in zip(f32, bf16)) < 0.1
