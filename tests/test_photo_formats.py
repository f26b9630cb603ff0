"""Photos as cameras and phones write them: HEIC, 16-bit grey and colour, float TIFF; every file under --input
scanned or listed with its reason. The files are made here from one 8-bit photo of sample patches; a copy in any
format must give that photo's crack map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from crack_lightning.data.datasets import read_image_tensor, sample_root
from crack_lightning.data.splits import scan_folder
from crack_lightning.io import images
from tests.test_scan import bright, brightness_model, plain_argv, read_rows, scan  # noqa: F401  (bright, plain_argv: the scan tests' fixtures)


def sample_photo(width: int = 384, height: int = 256) -> np.ndarray:
    """uint8 (H, W, 3): crack and sound sample patches side by side, shuffled with a fixed seed."""
    paths = (
        sorted((sample_root() / "Positive").glob("*.jpg"))[:6] + sorted((sample_root() / "Negative").glob("*.jpg"))[:6]
    )
    order = np.random.default_rng(0).permutation(len(paths))
    side = 128
    photo = np.zeros((height, width, 3), np.uint8)
    for k, i in enumerate(order[: (width // side) * (height // side)]):
        y, x = divmod(k, width // side)
        patch = Image.open(paths[i]).convert("RGB").resize((side, side))
        photo[y * side : (y + 1) * side, x * side : (x + 1) * side] = np.asarray(patch)
    return photo


def write_png16(path: Path, values: np.ndarray) -> None:
    import imagecodecs

    path.write_bytes(imagecodecs.png_encode(values))


# Each copy: how it is written from the 8-bit photo, and whether its 8-bit reference is grey or colour.
COPIES = {
    "grey16.png": (lambda p, a: Image.fromarray(a[..., 0].astype(np.uint16) * 257).save(p), "grey"),
    "rgb16.png": (lambda p, a: write_png16(p, a.astype(np.uint16) * 257), "rgb"),
    "grey16.tif": (lambda p, a: tifffile.imwrite(p, a[..., 0].astype(np.uint16) * 257), "grey"),
    "rgb16.tif": (
        lambda p, a: tifffile.imwrite(p, a.astype(np.uint16) * 257, photometric="rgb", compression="zlib"),
        "rgb",
    ),
    "greyfloat.tif": (lambda p, a: tifffile.imwrite(p, a[..., 0].astype(np.float32) / 255), "grey"),
    "rgbfloat.tif": (lambda p, a: tifffile.imwrite(p, a.astype(np.float32) / 255, photometric="rgb"), "rgb"),
    # float outside [0, 1]: scaled by its own range (the photo spans 0..255 once stretched)
    "rgbfloat_range.tif": (
        lambda p, a: tifffile.imwrite(p, stretched(a).astype(np.float32) * 4 - 100, photometric="rgb"),
        "stretched",
    ),
}


def stretched(photo: np.ndarray) -> np.ndarray:
    """The photo with its darkest value at 0 and its brightest at 255 (what a float range maps to)."""
    low, high = int(photo.min()), int(photo.max())
    return np.rint((photo.astype(np.float64) - low) * 255 / (high - low)).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(COPIES))
def test_every_bit_depth_reads_as_its_8_bit_copy(tmp_path, name):
    photo = sample_photo()
    write, kind = COPIES[name]
    write(tmp_path / name, photo)
    expected = {"grey": np.repeat(photo[..., :1], 3, axis=2), "rgb": photo, "stretched": stretched(photo)}[kind]
    assert np.array_equal(images.read_rgb(tmp_path / name), expected)
    # fit reads through torchvision where it can: it hands the network the same pixels
    assert np.array_equal(read_image_tensor(tmp_path / name).permute(1, 2, 0).numpy(), expected)


def test_16_bit_photos_scan_to_the_8_bit_copys_crack_map(bright, tmp_path):
    """The issue's case: a 16-bit grey PNG scanned as sound (clipped to white) while its 8-bit copy had cracks."""
    photo = sample_photo()
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(photo).save(photos / "rgb8.png")
    Image.fromarray(photo[..., 0]).save(photos / "grey8.png")
    for name in ("grey16.png", "rgb16.png", "grey16.tif", "rgb16.tif", "greyfloat.tif", "rgbfloat.tif"):
        COPIES[name][0](photos / name, photo)
    scan(bright, photos, tmp_path / "out", "--tile", "64")
    rows = read_rows(tmp_path / "out" / "tiles.csv")
    maps = {}
    for row in rows:
        maps.setdefault(row["photo"], []).append(row["crack_probability"])
    for name in maps:
        reference = "grey8.png" if name.startswith("grey") else "rgb8.png"
        assert maps[name] == maps[reference], name
    assert len(set(maps["grey8.png"])) > 10  # a real map, not one value everywhere


def heic(path: Path, photo: np.ndarray) -> Path:
    from pillow_heif import from_bytes

    image = from_bytes(mode="RGB", size=(photo.shape[1], photo.shape[0]), data=photo.tobytes())
    image.save(path, quality=95)
    return path


def test_heic_is_read_by_fit_predict_and_scan(bright, tmp_path):
    photo = sample_photo()
    folder = tmp_path / "photos"
    folder.mkdir()
    heic(folder / "iphone.heic", photo)
    Image.fromarray(photo).save(folder / "same.png")
    decoded = images.read_rgb(folder / "iphone.heic")
    assert decoded.shape == photo.shape
    assert np.abs(decoded.astype(int) - photo).mean() < 4  # lossy, but the same photo
    assert np.array_equal(read_image_tensor(folder / "iphone.heic").permute(1, 2, 0).numpy(), decoded)
    assert folder / "iphone.heic" in images.find_images(folder)  # predict's list
    (tmp_path / "data" / "Positive").mkdir(parents=True)
    heic(tmp_path / "data" / "Positive" / "a.heic", photo[:64, :64])
    assert scan_folder(tmp_path / "data", tmp_path / "data")[1] == [("Positive/a.heic", 0)]  # fit's samples

    scan(bright, folder, tmp_path / "out", "--tile", "64")
    maps = {}
    for row in read_rows(tmp_path / "out" / "tiles.csv"):
        maps.setdefault(row["photo"], []).append(float(row["crack_probability"]))
    assert len(maps["iphone.heic"]) == len(maps["same.png"]) == 24
    assert np.abs(np.array(maps["iphone.heic"]) - maps["same.png"]).max() < 0.02


def test_every_file_is_scanned_or_listed_with_its_reason(bright, tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    photo = sample_photo(128, 128)
    Image.fromarray(photo).save(folder / "good.jpg")
    heic(folder / "sub" / "phone.heic", photo)
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(folder / "big.png")
    (folder / "cut.jpg").write_bytes(b"\xff\xd8 cut short")
    (folder / "notes.txt").write_text("site visit")
    (folder / "survey.las").write_bytes(b"LASF")
    scan(bright, folder, tmp_path / "out", "--max_pixels", "100000")
    rows = {r["photo"]: r for r in read_rows(tmp_path / "out" / "photos.csv")}
    assert set(rows) == {"good.jpg", "sub/phone.heic", "big.png", "cut.jpg", "notes.txt", "survey.las"}
    reasons = {name: images.skip_reason(r["error"]) if r["error"] else "" for name, r in rows.items()}
    assert reasons == {
        "good.jpg": "",
        "sub/phone.heic": "",
        "big.png": "too large",
        "cut.jpg": "unreadable",
        "notes.txt": "unsupported type",
        "survey.las": "unsupported type",
    }
    assert "survey.las: unsupported type (.las); convert it to JPEG, PNG, TIFF or HEIC" in rows["survey.las"]["error"]
    summary = capsys.readouterr().out
    assert "Scanned 2 photos" in summary and "4 not scanned (2 unsupported type, 1 unreadable, 1 too large)" in summary
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Files not scanned (4)" in page and "4 not scanned (2 unsupported type, 1 unreadable, 1 too large)" in page
    assert "notes.txt: <b>unsupported type</b>" in page and "big.png: <b>too large</b>" in page


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_scan_pictures_are_written_as_lossless_pngs_whatever_their_mode(tmp_path, mode):
    from crack_lightning.io.atomic import save_picture

    picture = Image.fromarray(sample_photo(96, 64)).convert(mode)
    save_picture(picture, tmp_path / "picture.png", "PNG", compress_level=1)
    with Image.open(tmp_path / "picture.png") as back:
        assert back.format == "PNG" and back.mode == mode
        assert np.array_equal(np.asarray(back), np.asarray(picture))
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"]  # no temporary file left
