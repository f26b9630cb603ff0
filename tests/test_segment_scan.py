"""scan with a segmentation model: masks, crack overlays, cracks.csv, photos.csv and the report; measurement through
the scan path; the torch-free Segmenter against PyTorch; fit / validate / resume of a segmenter from the CLI.

Most tests run a stand-in segmenter graph whose crack probability is the darkness of each pixel: photos with dark
lines on bright noise (PNG, so no compression blur) then give exactly their true masks, and the numbers scan writes
can be checked against the lines drawn.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from crack_lightning import load_model
from crack_lightning.cli import main
from crack_lightning.errors import CrackLightningError
from crack_lightning.measure.bands import measure_photo_cracks
from crack_lightning.measure.cracks import CRACK_FIELDS, measure_cracks
from crack_lightning.runtime.onnx_file import with_metadata
from crack_lightning.runtime.segmenter import Segmenter
from tests.conftest import REPO
from tests.test_predict import HEAVY, imported, run_python
from tests.test_report import chromium, page_rows
from tests.test_scan import brightness_model
from tests.test_segmentation import synthetic_root

DARK, SIZE = 40, (200, 300)  # line grey level; photo height, width
CRACK_COLUMNS = [
    "photo",
    "crack",
    "x",
    "y",
    "width",
    "height",
    "length_px",
    "mean_width_px",
    "max_width_px",
    "length_mm",
    "mean_width_mm",
    "max_width_mm",
    "width_class",
]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])


def darkness_model(path: Path, window: int = 128, overlap: int = 32, **metadata) -> Path:
    """A segmenter graph as ``export`` writes one (uint8 (N, 3, H, W) in, float32 (N, 1, H, W) out, the metadata
    and any further ``metadata``) whose crack probability is sigmoid((100 - mean grey) / 2): ~1 on the dark lines,
    ~0 on bright noise."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Cast", ["images"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["hundred", "grey"], ["dark"]),
        helper.make_node("Mul", ["dark", "half"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probabilities"]),
    ]
    constants = [
        numpy_helper.from_array(np.array(100.0, np.float32), "hundred"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
    ]
    graph = helper.make_graph(
        nodes,
        "darkness",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    metadata = {
        "task": "segmentation",
        "threshold": 0.5,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "window": window,
        "overlap": overlap,
        **metadata,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(with_metadata(model.SerializeToString(), metadata))
    return path


def line_photo(path: Path, lines: list[tuple[tuple[int, int, int, int], int]], seed: int = 0) -> np.ndarray:
    """A PNG of bright noise with dark lines ``((x0, y0, x1, y1), width)``; returns the true mask."""
    mask = Image.new("L", (SIZE[1], SIZE[0]))
    draw = ImageDraw.Draw(mask)
    for points, width in lines:
        draw.line(points, fill=255, width=width)
    truth = np.asarray(mask) > 0
    photo = np.random.default_rng(seed).integers(120, 200, (*SIZE, 3), dtype=np.uint8)
    photo[truth] = DARK
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(path)
    return truth


@pytest.fixture(scope="module")
def darkness(tmp_path_factory) -> Path:
    return darkness_model(tmp_path_factory.mktemp("darkness") / "darkness.onnx")


@pytest.fixture
def photos(tmp_path) -> dict[str, np.ndarray]:
    """Four photos and their true masks: a horizontal crack 240 px long, a diagonal one (45 degrees, 226 px), none,
    and a vertical crack (180 px) with a speck too small to count."""
    folder = tmp_path / "photos"
    return {
        "horizontal.png": line_photo(folder / "horizontal.png", [((30, 100, 269, 100), 3)]),
        "diagonal.png": line_photo(folder / "diagonal.png", [((20, 20, 180, 180), 5)], seed=1),
        "sound.png": line_photo(folder / "sound.png", [], seed=2),
        "vertical.png": line_photo(folder / "vertical.png", [((150, 10, 150, 189), 4), ((40, 40, 42, 40), 1)], seed=3),
    }


def scan(model: Path, source: Path, output: Path, *extra: str) -> None:
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
            *extra,
        ]
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f))


def test_scan_writes_masks_overlays_and_one_row_per_crack(darkness, photos, tmp_path):
    out = tmp_path / "out"
    scan(darkness, tmp_path / "photos", out)
    assert header(out / "cracks.csv") == CRACK_COLUMNS == list(CRACK_FIELDS)
    cracks = read_csv(out / "cracks.csv")
    assert sorted((r["photo"], r["crack"]) for r in cracks) == [
        ("diagonal.png", "1"),
        ("horizontal.png", "1"),
        ("vertical.png", "1"),
    ]  # the 3-px speck is under --min_area
    assert all(r[k] == "" for r in cracks for k in ("length_mm", "mean_width_mm", "max_width_mm", "width_class"))
    rows = {r["photo"]: r for r in read_csv(out / "photos.csv")}
    assert {k: rows["sound.png"][k] for k in ("cracks", "total_length_px", "label")} == {
        "cracks": "0",
        "total_length_px": "0.00",
        "label": "no crack",
    }
    assert rows["horizontal.png"]["label"] == "crack" and rows["horizontal.png"]["total_length_mm"] == ""
    for name, truth in photos.items():
        with Image.open(out / "masks" / f"{name}.png") as mask:
            assert mask.mode == "L" and mask.size == (SIZE[1], SIZE[0])
            assert np.array_equal(np.asarray(mask) >= 128, truth)  # the stand-in finds exactly the drawn lines
        with Image.open(out / "overlays" / f"{name}.png") as overlay:
            drawn = np.asarray(overlay.convert("RGB")).astype(int)
        original = np.asarray(Image.open(tmp_path / "photos" / name)).astype(int)
        changed = np.abs(drawn - original).max(axis=2) > 30
        changed[:100, -80:] = truth[:100, -80:]  # the colour bar's corner
        # The cracks are drawn pixel by pixel: the crack pixels change colour, the photo around them does not.
        assert np.array_equal(changed, truth), name
        assert (out / "thumbnails" / f"{name}.jpg").is_file()


def test_lengths_and_widths_of_known_lines_through_the_scan_path(darkness, photos, tmp_path):
    out = tmp_path / "out"
    scan(darkness, tmp_path / "photos", out, "--mm_per_px", "0.2", "--min_area", "10")
    cracks = {r["photo"]: r for r in read_csv(out / "cracks.csv")}
    # Skeleton lengths (steps of 1 and sqrt(2) px) are exact along rows, columns and diagonals; widths across rows
    # and columns.
    expected = {"horizontal.png": (240, 3), "diagonal.png": (math.hypot(160, 160), None), "vertical.png": (180, 4)}
    for name, (length, width) in expected.items():
        row = cracks[name]
        assert float(row["length_px"]) == pytest.approx(length, rel=0.03), name
        assert width is None or float(row["mean_width_px"]) == pytest.approx(width, abs=0.5), name
        assert float(row["length_mm"]) == pytest.approx(float(row["length_px"]) * 0.2, abs=0.002)
        # Exactly what measure.py measures on the true mask.
        (true,) = measure_cracks(photos[name], name, 0.2, min_area=10)
        assert float(row["length_px"]) == pytest.approx(true.length_px, abs=0.005)
        assert float(row["max_width_mm"]) == pytest.approx(true.max_width_mm, abs=0.0005)
        assert row["width_class"] == true.width_class != ""
    totals = {r["photo"]: r for r in read_csv(out / "photos.csv")}
    assert float(totals["diagonal.png"]["total_length_px"]) == pytest.approx(
        float(cracks["diagonal.png"]["length_px"]), abs=0.01
    )
    scan(
        darkness,
        tmp_path / "photos",
        tmp_path / "classes",
        "--mm_per_px",
        "0.05",
        "--width_limits_mm",
        "0.18",
        "--width_classes",
        "thin,thick",
    )
    classes = {r["photo"]: r["width_class"] for r in read_csv(tmp_path / "classes" / "cracks.csv")}
    # by the widest point: 3 px = 0.15 mm is thin, 4 px = 0.2 mm thick
    assert classes["horizontal.png"] == "thin" and classes["vertical.png"] == "thick"
    assert classes == {
        name: measure_cracks(truth, name, 0.05, 10, (0.18,), ("thin", "thick"))[0].width_class
        for name, truth in photos.items()
        if truth.any()
    }


def test_report_lists_each_photos_cracks_worst_first(darkness, photos, tmp_path):
    out = tmp_path / "out"
    scan(darkness, tmp_path / "photos", out, "--mm_per_px", "0.2")
    rows = page_rows(out / "report.html")
    names = [row[2]["name"] for row in rows]
    # By total crack length: horizontal (240 px), diagonal (226 px), vertical (180 px), then the photo without.
    assert names == ["horizontal.png", "diagonal.png", "vertical.png", "sound.png"]
    page = (out / "report.html").read_text()
    (crack,) = [r for r in read_csv(out / "cracks.csv") if r["photo"] == "horizontal.png"]
    assert "1 crack" in rows[0][2]["text"] and f"{float(crack['length_mm']):.2f} mm" in rows[0][2]["text"]
    assert crack["width_class"] and crack["width_class"] in rows[0][2]["text"]
    assert "cracks.csv" in page and "masks/" in page
    assert all(row[1]["images"] for row in rows)  # thumbnails of the overlays


def test_crack_report_in_a_browser(darkness, photos, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    executable = chromium()
    out = tmp_path / "out"
    scan(darkness, tmp_path / "photos", out)
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto((out / "report.html").as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
            names = lambda: page.locator("#photos > tbody > tr").evaluate_all(
                "rows => rows.map(r => r.cells[2].querySelector('.name').textContent)"
            )
            worst_first = names()
            page.click("th:has-text('Widest crack')")  # widest first: vertical (4 px) before horizontal (3 px)
            widest_first = names()
            page.click("#photos > tbody > tr:first-child summary")  # opens the photo's list of cracks
            page.screenshot(path=tmp_path / "report.png", full_page=True)
        finally:
            browser.close()
    assert not problems and len(widths) == 4 and min(widths) > 0
    assert worst_first == ["horizontal.png", "diagonal.png", "vertical.png", "sound.png"]
    assert widest_first.index("vertical.png") < widest_first.index("horizontal.png") and widest_first[-1] == "sound.png"


def test_overlays_of_large_photos_keep_thin_cracks():
    from crack_lightning.results.pictures import crack_overlay

    probability = np.zeros((1000, 1500), np.uint8)
    probability[500, 100:1400] = 255  # a crack one pixel wide
    drawn = np.asarray(crack_overlay(np.full((1000, 1500, 3), 128, np.uint8), probability, 128, max_side=150))
    assert drawn.shape == (100, 150, 3)
    marked = np.abs(drawn.astype(int) - 128).max(axis=2) > 30
    assert marked[50, 10:140].all() and marked.sum() == marked[50].sum()  # drawn along its whole length, nowhere else


def test_resume_overwrite_and_lock_as_for_the_classifier(darkness, photos, tmp_path, capsys):
    out = tmp_path / "out"
    scan(darkness, tmp_path / "photos", out)
    first = read_csv(out / "cracks.csv")
    with pytest.raises(SystemExit):
        scan(darkness, tmp_path / "photos", out)
    assert "already holds scan results" in capsys.readouterr().err
    # A scan cut short after a photo's cracks but before its photos.csv row: resume drops them and scans it again.
    lines = (out / "photos.csv").read_text().splitlines(keepends=True)
    (out / "photos.csv").write_text("".join(lines[:-1]))
    scan(darkness, tmp_path / "photos", out, "--resume", "true")
    assert sorted(map(tuple, (r.values() for r in read_csv(out / "cracks.csv")))) == sorted(
        map(tuple, (r.values() for r in first))
    )
    assert len(read_csv(out / "photos.csv")) == 4 and len(page_rows(out / "report.html")) == 4
    with pytest.raises(SystemExit):
        scan(darkness, tmp_path / "photos", out, "--resume", "true", "--min_area", "3")
    assert "min_area 25" in capsys.readouterr().err
    scan(darkness, tmp_path / "photos", out, "--overwrite", "true", "--min_area", "1")
    assert len(read_csv(out / "cracks.csv")) == 4  # the speck counts now


def test_classifier_scan_refuses_segmenter_options(tmp_path, photos, capsys):
    bright = brightness_model(tmp_path / "bright.onnx")
    with pytest.raises(SystemExit):
        scan(bright, tmp_path / "photos", tmp_path / "out", "--mm_per_px", "0.2")
    assert (
        "--mm_per_px: not an option of a classification model's scan; its options: tile, stride"
        in capsys.readouterr().err
    )
    scan(bright, tmp_path / "photos", tmp_path / "out", "--tile", "64")
    assert header(tmp_path / "out" / "photos.csv")[:5] == ["photo", "width", "height", "tiles", "crack_tiles"]
    assert not (tmp_path / "out" / "cracks.csv").exists()


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--mm_per_px", "0"], "--mm_per_px"),
        (["--width_limits_mm", "0.3,0.1"], "increasing"),
        (["--width_classes", "a,b"], "3 width limits need 4 class names"),
        (["--window", "32", "--overlap", "32"], "--overlap"),
    ],
)
def test_bad_measuring_options_are_one_line_errors(darkness, photos, tmp_path, capsys, bad, message):
    with pytest.raises(SystemExit):
        scan(darkness, tmp_path / "photos", tmp_path / "out", *bad)
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the model's lines
    assert err.startswith("crack_lightning: error:") and message in err


def test_measuring_in_bands_equals_measure_cracks():
    """The scan's bounded-memory measurement gives measure.py's cracks exactly, with bands and margins far smaller
    than the cracks (so that margins must grow), widths from the mask or from a probability map."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    for trial in range(12):
        shape = tuple(rng.integers(20, 160, 2))
        mask = ndimage.binary_dilation(rng.random(shape) < rng.uniform(0.002, 0.05), iterations=int(rng.integers(0, 6)))
        mask |= ndimage.gaussian_filter(rng.random(shape), 3) > 0.52 if trial % 3 == 0 else False
        probability = np.clip(ndimage.gaussian_filter(mask.astype(float), 1.0) + rng.normal(0, 0.05, shape), 0, 1)
        for scale, min_area, p in (
            (None, 0, None),
            (0.2, 10, None),
            (None, 5, probability),
            (None, 0, (probability * 255).astype(np.uint8)),
        ):
            expected = measure_cracks(mask, "p", scale, min_area, probability=p)
            got = measure_photo_cracks(
                mask, "p", scale, min_area, band_rows=int(rng.integers(3, 40)), margin=2, probability=p
            )
            assert [(c.crack, c.x, c.y, c.width, c.height, c.width_class) for c in got] == [
                (c.crack, c.x, c.y, c.width, c.height, c.width_class) for c in expected
            ]
            for a, b in zip(got, expected):
                assert (a.length_px, a.mean_width_px, a.max_width_px) == pytest.approx(
                    (b.length_px, b.mean_width_px, b.max_width_px)
                )


@pytest.fixture(scope="module")
def segmenter_checkpoint(tmp_path_factory) -> Path:
    """A CrackSegmenter with random weights (BatchNorm statistics too) saved as fit saves it."""
    import lightning as L

    from crack_lightning.models.segmenter import CrackSegmenter

    torch.manual_seed(0)
    model = CrackSegmenter(weights="none", threshold=0.4)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    path = tmp_path_factory.mktemp("segmenter") / "seg.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_a_checkpoint_naming_a_module_path_before_0_3_is_a_one_line_hint(segmenter_checkpoint, tmp_path, capsys):
    """A segmenter checkpoint names its class by the module path of its day (crack_lightning.segmentation_model
    before 0.3): loading it says where the class is now and how to re-save it, in a fresh process too."""
    checkpoint = torch.load(segmenter_checkpoint, map_location="cpu", weights_only=False)
    checkpoint["hyper_parameters"].update(  # as LightningCLI's fit saved it
        _class_path="crack_lightning.segmentation_model.CrackSegmenter",
        _instantiator="lightning.pytorch.cli.instantiate_module",
    )
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    code = f"from crack_lightning.models.loading import load_checkpoint; load_checkpoint({str(old)!r})"
    result = run_python(["-c", code], tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].endswith(
        f"checkpoint: {old} names the class crack_lightning.segmentation_model.CrackSegmenter of crack_lightning "
        "before 0.3; re-save it naming crack_lightning.models.segmenter.CrackSegmenter (torch.load it, set "
        "checkpoint['hyper_parameters']['_class_path'], torch.save it)"
    ), result.stderr[-500:]
    with pytest.raises(SystemExit):
        main(["scan", "--ckpt_path", str(old), "--input", str(tmp_path), "--output", str(tmp_path / "out")])
    assert f"crack_lightning: error: --ckpt_path: {old} names the class" in capsys.readouterr().err


def test_torch_free_segmenter_equals_pytorch(segmenter_checkpoint, tmp_path):
    from crack_lightning.export.onnx import segmenter_network, torch_runner
    from crack_lightning.models.segmenter import CrackSegmenter
    from crack_lightning.runtime.windows import flip_averaged, segment_photo

    segmenter = load_model(segmenter_checkpoint, backend="onnxruntime")
    assert isinstance(segmenter, Segmenter) and segmenter.threshold == 0.4 and segmenter.crack_level == 102
    model = CrackSegmenter.load_from_checkpoint(segmenter_checkpoint, map_location="cpu", weights_only=True).eval()
    images = torch.randint(0, 256, (2, 3, 75, 131), dtype=torch.uint8)  # no multiple of 32, nor the export's size
    with torch.no_grad():
        expected = torch.sigmoid(model(model.normalise(images))).numpy()
    got = segmenter.probabilities(images.numpy())
    assert got.shape == (2, 1, 75, 131) and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-4
    photo = np.random.default_rng(0).integers(0, 256, (150, 230, 3), dtype=np.uint8)
    windowed = segmenter.probability_map(photo, window=96, overlap=24)
    reference = segment_photo(photo, torch_runner(segmenter_network(model)), 96, 24)
    assert windowed.dtype == np.uint8 and np.abs(windowed.astype(int) - reference).max() <= 1
    flips = load_model(segmenter_checkpoint, backend="onnxruntime", tta="flips")
    averaged = segment_photo(photo, flip_averaged(torch_runner(segmenter_network(model))), 96, 24)
    assert np.abs(flips.probability_map(photo, window=96, overlap=24).astype(int) - averaged).max() <= 1
    with pytest.raises(CrackLightningError, match="not a crack_lightning classifier"):
        from crack_lightning.runtime.classifier import Classifier

        Classifier(segmenter.graph)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_export_command_and_a_scan_without_torch(segmenter_checkpoint, photos, tmp_path):
    onnx = tmp_path / "seg.onnx"
    main(["export", "--ckpt_path", str(segmenter_checkpoint), "--output", str(onnx)])
    assert isinstance(load_model(onnx), Segmenter)
    out = tmp_path / "out"
    result = run_python(
        [
            "-X",
            "importtime",
            "-m",
            "crack_lightning",
            "scan",
            "--ckpt_path",
            str(onnx),
            "--input",
            str(tmp_path / "photos"),
            "--output",
            str(out),
            "--progress",
            "false",
            "--precision",
            "32",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = imported(result.stderr)
    assert {"onnxruntime", "skimage", "crack_lightning"} <= modules and not modules & set(HEAVY), modules & set(HEAVY)
    assert len(read_csv(out / "photos.csv")) == 4 and (out / "masks" / "sound.png.png").is_file()


FAST_FIT = [
    "--trainer.precision",
    "32-true",
    "--trainer.limit_val_batches",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
    "--model.weights",
    "none",
    "--model.warmup_steps",
    "1",
    "--data.crop_size",
    "64",
    "--data.batch_size",
    "2",
    "--data.val_fraction",
    "0.5",
    "--data.num_workers",
    "0",
]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fit_validate_resume_from_the_cli_and_scan_with_the_checkpoint(tmp_path, capsys):
    data = synthetic_root(tmp_path / "data")
    runs = ["--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
    main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "segment.yaml"),
            "--data.root",
            str(data),
            "--trainer.max_steps",
            "2",
            *runs,
            *FAST_FIT,
        ]
    )
    checkpoints = tmp_path / "runs" / "segment" / "version_0" / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file() and any(p.name.startswith("best-epoch") for p in checkpoints.iterdir())
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["hyper_parameters"]["task"] == "segmentation"
    # validate from the checkpoint alone: its hyperparameters say segmentation, so the segmenter's CLI runs it
    main(
        [
            "validate",
            "--ckpt_path",
            str(checkpoints / "last.ckpt"),
            "--data.root",
            str(data),
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            *FAST_FIT[:6],
            "--data.val_fraction",
            "0.5",
            "--data.num_workers",
            "0",
        ]
    )
    assert "val_ods_f1" in capsys.readouterr().out
    # resume: one more epoch from the last one
    main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "segment.yaml"),
            "--data.root",
            str(data),
            "--trainer.max_epochs",
            "1",
            *runs,
            *FAST_FIT,
        ]
    )
    last = tmp_path / "runs" / "segment" / "version_1" / "checkpoints" / "last.ckpt"
    main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "segment.yaml"),
            "--data.root",
            str(data),
            "--trainer.max_epochs",
            "2",
            "--ckpt_path",
            str(last),
            *runs,
            *FAST_FIT,
        ]
    )
    resumed = torch.load(tmp_path / "runs" / "segment" / "version_2" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 2 * torch.load(last, weights_only=True)["global_step"]
    scan(checkpoints / "last.ckpt", data / "images", tmp_path / "scan", "--mm_per_px", "0.1")
    assert header(tmp_path / "scan" / "cracks.csv") == CRACK_COLUMNS
    assert len(read_csv(tmp_path / "scan" / "photos.csv")) == 4


def test_an_unreadable_photo_gets_its_row_and_the_scan_goes_on(darkness, photos, tmp_path):
    (tmp_path / "photos" / "broken.png").write_text("not a picture")
    out = tmp_path / "out"
    scan(darkness, tmp_path / "photos", out)
    rows = {r["photo"]: r for r in read_csv(out / "photos.csv")}
    assert "cannot be read as an image" in rows["broken.png"]["error"] and rows["broken.png"]["cracks"] == "0"
    assert len(rows) == 5 and not any(r["photo"] == "broken.png" for r in read_csv(out / "cracks.csv"))
    assert [row[2]["name"] for row in page_rows(out / "report.html")][-1] == "broken.png"  # unreadable ones last
