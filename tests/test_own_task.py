"""A task of the test's own, as Lightning's tests have their BoringModel: "brightness", whose exported graph marks
the bright pixels of a photo. Registered from here (crack_lightning.tasks.register) with its predictor, scan, result
type (its own CSV columns) and report page, it scans a folder of photos the test makes into CSV files and a report
through the public crack_lightning.scan; nothing of the package is changed. docs/development.md points here as the
example of adding a task."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import crack_lightning
from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.io.images import ImageInput, as_rgb
from crack_lightning.io.scan_files import OVERLAYS, PHOTOS_CSV, THUMBNAILS
from crack_lightning.options import Options
from crack_lightning.report.html import PHOTO_COLUMN, Column, ReportPhoto
from crack_lightning.report.pages import Page
from crack_lightning.results.photo_result import JPEG, PNG, PhotoResult, Picture
from crack_lightning.results.pictures import thumbnail
from crack_lightning.runtime.exported import ExportedModel
from crack_lightning.runtime.onnx_file import with_metadata
from crack_lightning.scanning.models import Scans
from crack_lightning.scanning.tasks import ScanTask
from crack_lightning.tasks import Task, register, unregister

NAME = "brightness"
BRIGHT_CSV = "bright.csv"
PHOTO_COLUMNS = ["photo", "width", "height", "regions", "bright_share", "label", "error"]
REGION_COLUMNS = ["photo", "region", "x", "y", "width", "height", "pixels", "mean_brightness"]


# -- the task: predictor (runtime), result (its CSV columns), report page, scan ----------------------------------------


class BrightnessModel(Scans, ExportedModel):
    """The predictor: the graph's brightness of each pixel (0 to 1), bright from the metadata's threshold; ``Scans``
    adds ``scan(photo)`` and ``scan_task(**options)``, as the package's own models have them."""

    task = NAME

    def __init__(self, graph: bytes, source: str = "", **options: Any) -> None:
        super().__init__(graph, source, **options)
        self.threshold = float(self.metadata["threshold"])

    def brightness(self, image: ImageInput) -> np.ndarray:
        """``(H, W)`` float32 in [0, 1]."""
        return self.session()(as_rgb(image).transpose(2, 0, 1)[None].copy())[0, 0]


@dataclass
class BrightMap(PhotoResult):
    """A photo's bright pixels, and their regions (a CSV row each)."""

    brightness: np.ndarray | None = field(default=None, repr=False)
    bright: np.ndarray | None = field(default=None, repr=False)  # bool (H, W)

    photo_columns: ClassVar[list[str]] = PHOTO_COLUMNS
    detail_columns: ClassVar[list[str]] = REGION_COLUMNS
    formats: ClassVar[dict[str, str]] = {"bright_share": ".4f", "mean_brightness": ".3f"}
    details_name: ClassVar[str] = "regions"

    def photo_values(self) -> list:
        if self.error:
            return [self.name, None, None, 0, None, "", self.error]
        regions = len(self.detail_values())
        share = float(self.bright.mean())
        return [self.name, self.width, self.height, regions, share, "bright" if regions else "dark", ""]

    def detail_values(self) -> list[list]:
        labels, _ = ndimage.label(self.bright)
        rows = []
        for region, found in enumerate(ndimage.find_objects(labels), 1):
            rows_, cols = found
            inside = labels[found] == region
            mean = float(self.brightness[found][inside].mean())
            size = (cols.stop - cols.start, rows_.stop - rows_.start)
            rows.append([self.name, region, cols.start, rows_.start, *size, int(inside.sum()), mean])
        return rows

    def plot(self, max_side: int = 4096) -> Image.Image:
        drawn = self.image.copy()
        drawn[self.bright] = (255, 0, 0)
        picture = Image.fromarray(drawn)
        picture.thumbnail((max_side, max_side))
        return picture

    def pictures(self, max_side: int = 4096, masks: bool = True) -> Iterator[Picture]:
        drawn = self.plot(max_side)
        yield OVERLAYS, ".png", "PNG", PNG, drawn
        yield THUMBNAILS, ".jpg", "JPEG", JPEG, thumbnail(drawn)


@dataclass
class BrightPhoto(ReportPhoto):
    bright_share: float = 0.0


class BrightPage(Page):
    photo_columns = PHOTO_COLUMNS
    columns = (
        PHOTO_COLUMN,
        Column("Bright", lambda p: "" if p.error else f"{p.bright_share:.0%}", lambda p: p.bright_share),
    )

    def photos(self, folder: Path, rows: list[dict[str, str]]) -> list[ReportPhoto]:
        with open(folder / BRIGHT_CSV, newline="") as f:
            regions = list(csv.DictReader(f))
        photos = []
        for row in rows:
            photo = BrightPhoto(row["photo"], error=row["error"], label=row["label"], details_unit="region")
            if not row["error"]:
                photo.width, photo.height = int(row["width"]), int(row["height"])
                photo.bright_share = float(row["bright_share"])
                photo.details = [{"x": r["x"], "y": r["y"]} for r in regions if r["photo"] == row["photo"]]
            photos.append(photo)
        return photos

    def rank(self, photo: BrightPhoto) -> tuple:
        return bool(photo.error), -photo.bright_share, photo.photo

    def cracked(self, photo: BrightPhoto) -> bool:
        return photo.bright_share > 0

    def facts(self, settings: dict) -> list[tuple[str, str]]:
        return [("Model", html.escape(settings["model"])), ("Bright", f"from {settings['threshold']}")]


@dataclass(frozen=True)
class BrightOptions(Options):
    """The scan's options: their defaults and checks, an error naming the field."""

    threshold: float | None = None  # None: the model's

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise OptionError("threshold", f"{self.threshold}; pass a brightness from 0 to 1")


class BrightTask(ScanTask):
    """The scan: each photo's bright pixels; a resumed scan must keep the threshold and the model."""

    details_csv, unit, page, result, options_type = BRIGHT_CSV, "regions", BrightPage(), BrightMap, BrightOptions
    same_scan = ("task", "threshold", "model")
    masks = False

    def __init__(self, model: BrightnessModel, options: BrightOptions = BrightOptions()) -> None:
        self.model = model
        self.threshold = model.threshold if options.threshold is None else options.threshold

    def settings(self) -> dict[str, Any]:
        return {"task": self.model.task, "model": self.model.source, "threshold": self.threshold}

    def results(self, photos: Iterable[tuple[str, ImageInput]]) -> Iterator[BrightMap]:
        for name, photo in photos:
            try:
                image = as_rgb(photo)
            except CrackLightningError as err:
                yield BrightMap(name, error=str(err))
                continue
            brightness = self.model.brightness(image)
            bright = brightness >= self.threshold
            yield BrightMap(name, image.shape[1], image.shape[0], image, "", brightness, bright)

    def count(self, result: BrightMap) -> int:
        return result.summary["regions"]

    def cracked(self, result: BrightMap) -> bool:
        return result.summary["regions"] > 0


BRIGHTNESS = Task(name=NAME, what="brightness marker", predictor=BrightnessModel, scan=BrightTask)


# -- the test ----------------------------------------------------------------------------------------------------------


def brightness_graph(path: Path, threshold: float = 0.5) -> Path:
    """uint8 ``(N, 3, H, W)`` -> float32 ``(N, 1, H, W)``: the mean of the channels / 255; metadata ``task:
    brightness``."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Cast", ["images"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Div", ["mean", "white"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        NAME,
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
        [numpy_helper.from_array(np.array(255.0, np.float32), "white")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(with_metadata(model.SerializeToString(), {"task": NAME, "threshold": threshold}))
    return path


def photo(path: Path, squares: list[tuple[int, int, int]], size: tuple[int, int] = (96, 64)) -> Path:
    """A dark photo (grey 40) with white squares ``(x, y, side)``."""
    pixels = np.full((size[1], size[0], 3), 40, np.uint8)
    for x, y, side in squares:
        pixels[y : y + side, x : x + side] = 250
    Image.fromarray(pixels).save(path)
    return path


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def brightness_task() -> Iterator[Task]:
    yield register(BRIGHTNESS)
    unregister(NAME)


def test_a_task_of_its_own_scans_a_folder_into_csv_files_and_a_report(brightness_task, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    photo(photos / "one.png", [(10, 20, 8)])
    photo(photos / "two.png", [(0, 0, 4), (60, 30, 16)])
    photo(photos / "dark.png", [])
    (photos / "broken.png").write_bytes(b"\x89PNG cut short")
    graph = brightness_graph(tmp_path / "brightness.onnx")
    out = tmp_path / "scan"

    counts = crack_lightning.scan(photos, out, model=graph, backend="onnxruntime")

    assert {k: counts[k] for k in ("photos", "errors", "regions", "crack_photos")} == {
        "photos": 4,
        "errors": 1,
        "regions": 3,
        "crack_photos": 2,
    }
    rows = {r["photo"]: r for r in read(out / PHOTOS_CSV)}
    assert list(rows["one.png"]) == PHOTO_COLUMNS
    assert rows["one.png"]["bright_share"] == f"{64 / (96 * 64):.4f}" and rows["dark.png"]["label"] == "dark"
    assert rows["broken.png"]["error"] and rows["broken.png"]["regions"] == "0"
    regions = read(out / BRIGHT_CSV)
    assert [(r["photo"], r["x"], r["y"], r["width"], r["pixels"]) for r in regions] == [
        ("one.png", "10", "20", "8", "64"),
        ("two.png", "0", "0", "4", "16"),
        ("two.png", "60", "30", "16", "256"),
    ]
    assert json.loads((out / "scan.json").read_text())["task"] == NAME
    assert sorted(p.name for p in (out / OVERLAYS).iterdir()) == ["dark.png.png", "one.png.png", "two.png.png"]
    page = (out / "report.html").read_text()
    assert "Crack scan: 2 of 4 photos with cracks" in page and '<th data-sort="number">Bright</th>' in page
    assert page.index("two.png") < page.index("one.png") < page.index("dark.png")  # the brightest first
    assert "2 regions" in page

    again = crack_lightning.scan(photos, out, model=graph, backend="onnxruntime", resume=True)
    assert again["skipped"] == 4 and again["photos"] == 0


def test_a_task_of_its_own_gives_numbers_as_numbers(brightness_task, tmp_path):
    model = crack_lightning.load_model(brightness_graph(tmp_path / "brightness.onnx"), backend="onnxruntime")
    assert isinstance(model, BrightnessModel)
    result = model.scan(np.asarray(Image.open(photo(tmp_path / "one.png", [(4, 4, 10)]))), threshold=0.9)
    assert result.summary["regions"] == 1 and result.summary["bright_share"] == pytest.approx(100 / (96 * 64))
    assert json.loads(json.dumps(result.to_dict()))["regions"][0] == {
        "photo": "photo",
        "region": 1,
        "x": 4,
        "y": 4,
        "width": 10,
        "height": 10,
        "pixels": 100,
        "mean_brightness": pytest.approx(250 / 255),
    }


def test_a_model_of_a_task_no_one_registered_is_a_one_line_error(tmp_path):
    graph = brightness_graph(tmp_path / "brightness.onnx")
    with pytest.raises(CrackLightningError, match=r"brightness.onnx: a model of task 'brightness'.*register"):
        crack_lightning.load_model(graph)
