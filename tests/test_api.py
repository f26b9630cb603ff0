"""The Python API by behaviour: load_model for both tasks, predict on one path, a folder, a PIL image, an array or
a list, model.scan's results (summary, rows, plot, save) equal to what the scan command writes, and
crack_lightning.scan writing the command's folder."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import crack_lightning
from crack_lightning.cli import main
from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.measure.measuring import Measuring
from crack_lightning.results.maps import CrackMap, TileMap
from crack_lightning.runtime.models import DEFAULT_SCAN_MODEL
from crack_lightning.runtime.options import RunOptions
from crack_lightning.scanning.options import CrackOptions, TileOptions
from tests.test_segment_scan import darkness_model, line_photo

SAMPLE = Path(crack_lightning.__file__).parent / "assets" / "sample"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])


@pytest.fixture(scope="module")
def classifier():
    return crack_lightning.load_model("concrete-v1", precision="32")


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return crack_lightning.load_model(darkness_model(tmp_path_factory.mktemp("seg") / "darkness.onnx"))


def read(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_predict_takes_one_path_a_folder_an_image_or_a_list(classifier, tmp_path):
    crack, sound = sorted((SAMPLE / "Positive").glob("*.jpg"))[0], sorted((SAMPLE / "Negative").glob("*.jpg"))[0]
    both = classifier.predict([str(crack), sound])
    assert both.labels == ["Positive", "Negative"]
    for one in (str(crack), crack, Image.open(crack), np.asarray(Image.open(crack).convert("RGB"))):
        single = classifier.predict(one)
        assert single.labels == ["Positive"] and np.allclose(single.probabilities, both.probabilities[:1], atol=1e-6)
    folder = tmp_path / "patches"
    folder.mkdir()
    for path in (crack, sound):
        (folder / path.name).write_bytes(path.read_bytes())
    assert sorted(classifier.predict(folder).labels) == ["Negative", "Positive"]
    with pytest.raises(CrackLightningError, match="cannot read a int"):
        classifier.predict([3])


def test_scan_of_a_photo_equals_the_scan_command(classifier, tmp_path):
    photo = tmp_path / "photos" / "wall.png"
    photo.parent.mkdir()
    patches = [np.asarray(Image.open(p)) for p in sorted((SAMPLE / "Positive").glob("*.jpg"))[:2]]
    patches += [np.asarray(Image.open(p)) for p in sorted((SAMPLE / "Negative").glob("*.jpg"))[:2]]
    Image.fromarray(np.concatenate([np.concatenate(patches[:2], 1), np.concatenate(patches[2:], 1)])).save(photo)
    result = classifier.scan(photo, tile=227)
    assert isinstance(result, TileMap) and len(result.boxes) == 4 and len(result.crack_tiles) == 2
    assert result.summary["crack_tiles"] == 2 and result.summary["label"] == "Positive"
    as_json = json.loads(json.dumps(result.to_dict()))  # numbers as numbers, the CSV's at its precision
    assert [tile["crack_probability"] for tile in as_json["tiles"]] == pytest.approx(result.crack_probability.tolist())
    assert f"{as_json['summary']['max_crack_probability']:.6f}" == result.photo_row()[5]
    assert result.probability_map().shape == (454, 454)
    main(
        [
            "scan",
            "--ckpt_path",
            "concrete-v1",
            "--input",
            str(photo.parent),
            "--output",
            str(tmp_path / "out"),
            "--tile",
            "227",
            "--precision",
            "32",
            "--progress",
            "false",
        ]
    )
    # the folder names photos relative to --input, model.scan by the path it was given
    assert [r[1:] for r in read(tmp_path / "out" / "tiles.csv")[1:]] == [
        [str(v) for v in r[1:]] for r in result.detail_rows()
    ]
    assert read(tmp_path / "out" / "photos.csv")[1][1:] == [str(v) for v in result.photo_row()[1:]]
    plot = result.plot()
    assert plot.size == (454, 454)
    written = result.save(tmp_path / "saved")
    assert [p.name for p in written] == ["wall.png.png", "wall.png.mask.png", "wall.png.csv"]
    assert [r[1:] for r in read(tmp_path / "saved" / "wall.png.csv")] == [
        r[1:] for r in read(tmp_path / "out" / "tiles.csv")
    ]


def test_segmenter_scan_measures_cracks_and_the_folder_matches(segmenter, tmp_path):
    truth = line_photo(tmp_path / "photos" / "line.png", [((30, 100, 269, 100), 3)])
    result = segmenter.scan(tmp_path / "photos" / "line.png", mm_per_px=0.5)
    assert isinstance(result, CrackMap) and np.array_equal(result.mask, truth)
    (crack,) = result.cracks
    assert abs(crack.length_px - 239) <= 2 and crack.max_width_px == pytest.approx(3, abs=0.5)
    assert crack.length_mm == pytest.approx(crack.length_px * 0.5) and crack.width_class
    assert result.summary["cracks"] == 1 and result.plot().size == (300, 200)
    (as_json,) = json.loads(json.dumps(result.to_dict()))["cracks"]
    assert as_json["length_px"] == pytest.approx(crack.length_px) and as_json["width_class"] == crack.width_class
    assert result.summary["total_length_mm"] == pytest.approx(crack.length_mm)
    (again,) = segmenter.predict(tmp_path / "photos", mm_per_px=0.5)  # predict: a scan of each image
    assert again.detail_rows() == result.detail_rows()
    counts = crack_lightning.scan(tmp_path / "photos", tmp_path / "out", model=segmenter, mm_per_px=0.5)
    assert counts["cracks"] == 1 and counts["crack_photos"] == 1
    assert [r[1:] for r in read(tmp_path / "out" / "cracks.csv")[1:]] == [
        [str(v) for v in r[1:]] for r in result.detail_rows()
    ]
    assert (tmp_path / "out" / "report.html").is_file()
    with pytest.raises(CrackLightningError, match="is being written by another scan|already holds scan results"):
        crack_lightning.scan(tmp_path / "photos", tmp_path / "out", model=segmenter)
    again = crack_lightning.scan(tmp_path / "photos", tmp_path / "out", model=segmenter, mm_per_px=0.5, resume=True)
    assert again["skipped"] == 1 and again["photos"] == 0


def test_scan_takes_a_model_name_and_scan_options(tmp_path):
    photo = tmp_path / "p" / "patch.jpg"
    photo.parent.mkdir()
    photo.write_bytes(sorted((SAMPLE / "Positive").glob("*.jpg"))[0].read_bytes())
    counts = crack_lightning.scan(
        photo.parent, tmp_path / "out", model="concrete-v1", precision="32", tile=64, report=False
    )
    assert counts["tiles"] == 16 and not (tmp_path / "out" / "report.html").exists()
    with pytest.raises(CrackLightningError, match=r"^threshold: 2.0; pass a probability in \(0, 1\]$"):
        crack_lightning.scan(photo.parent, tmp_path / "out2", threshold=2.0)


@pytest.mark.parametrize(
    "model, option, value, problem",
    [
        ("concrete-v1", "tile", 0, "0; pass a whole number of at least 1"),
        ("concrete-v1", "stride", -3, "-3; pass a whole number of at least 1"),
        ("concrete-v1", "context", -0.5, "-0.5; pass 0 (the tile alone) or a positive share of the tile"),
        ("concrete-v1", "threshold", 1.5, "1.5 is not a probability in [0, 1]"),
        ("concrete-seg-v1", "overlap", 512, "512; pass 0 or more, smaller than the window (512 px)"),
        ("concrete-seg-v1", "min_area", -1, "-1; pass 0 or more pixels"),
        ("concrete-seg-v1", "low_threshold", 1.5, "1.5; pass a probability in (0, 1]"),
        ("concrete-seg-v1", "scale", "big", "'big'; pass auto, none or the photos' mm per pixel"),
        ("concrete-seg-v1", "marker_mm", -2.0, "-2.0; pass the printed marker's side in mm, above 0"),
    ],
)
def test_a_bad_scan_option_names_the_field_in_python_and_the_flag_in_the_command(
    model, option, value, problem, classifier, tmp_path, capsys
):
    loaded = classifier if model == "concrete-v1" else crack_lightning.load_model(model, precision="32")
    with pytest.raises(CrackLightningError) as raised:
        loaded.scan(np.zeros((64, 64, 3), np.uint8), **{option: value})
    assert str(raised.value) == f"{option}: {problem}"
    argv = ["scan", "--ckpt_path", model, "--input", str(SAMPLE / "Positive"), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        main([*argv, "--precision", "32", f"--{option}", str(value)])
    assert capsys.readouterr().err.strip().endswith(f"crack_lightning: error: --{option}: {problem}")
    assert not (tmp_path / "out").exists()


def test_predict_input_flag_and_the_engine_chosen_explicitly(tmp_path, capsys):
    folder = SAMPLE / "Positive"
    main(["predict", "--input", str(folder), "--output", str(tmp_path / "new.csv"), "--precision", "32"])
    assert "(--engine exported)" in capsys.readouterr().err
    main(["predict", "--data.predict_dir", str(folder), "--output", str(tmp_path / "old.csv"), "--precision", "32"])
    assert (tmp_path / "new.csv").read_bytes() == (tmp_path / "old.csv").read_bytes()
    capsys.readouterr()
    for extra, message in [
        (["--trainer.devices", "2"], "--trainer.devices is an option of Lightning's predict; add --engine lightning"),
        (["--engine", "keras"], "--engine keras; pass exported"),
    ]:
        with pytest.raises(SystemExit):
            main(["predict", "--input", str(folder), "--output", str(tmp_path / "x.csv"), *extra])
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_a_shipped_segmenter_loads_by_name_as_the_shipped_classifier(tmp_path, monkeypatch):
    from crack_lightning.runtime import models

    shipped = tmp_path / "models"
    for path in models.MODELS_DIR.glob("concrete-v1.*"):
        (shipped / path.name).parent.mkdir(exist_ok=True)
        (shipped / path.name).write_bytes(path.read_bytes())
    darkness_model(shipped / "seg-test.onnx")
    (shipped / "seg-test.json").write_text('{"task": "segmentation"}')
    monkeypatch.setattr(models, "MODELS_DIR", shipped)
    segmenter = crack_lightning.load_model("seg-test")
    assert segmenter.task == "segmentation" and "the shipped model seg-test (crack segmenter)" in segmenter.source
    assert crack_lightning.load_model("concrete-v1").task == "classification"


def test_load_model_and_scan_default_to_the_shipped_segmenter(tmp_path):
    model = crack_lightning.load_model(precision="32")
    assert model.task == "segmentation" and DEFAULT_SCAN_MODEL in model.source
    photo = tmp_path / "p" / "patch.jpg"
    photo.parent.mkdir()
    photo.write_bytes(sorted((SAMPLE / "Positive").glob("*.jpg"))[0].read_bytes())
    crack_lightning.scan(photo.parent, tmp_path / "out", precision="32", report=False)
    assert (tmp_path / "out" / "cracks.csv").is_file()


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: CrackOptions(window=0), "window"),
        (lambda: CrackOptions(window=64, overlap=64), "overlap"),
        (lambda: CrackOptions(workers=-1), "workers"),
        (lambda: CrackOptions(width_limits_mm=(0.3, 0.1)), "width_limits_mm"),
        (lambda: TileOptions(batch_size=0), "batch_size"),
        (lambda: TileOptions.of("a classifier's scan", mm_per_px=0.2), "mm_per_px"),
        (lambda: RunOptions(tta="mirror"), "tta"),
        (lambda: RunOptions(threads=0), "threads"),
        (lambda: RunOptions.of("load_model", engine="torch"), "engine"),
    ],
)
def test_options_objects_check_their_fields_and_name_them(make, field):
    with pytest.raises(OptionError) as raised:
        make()
    assert raised.value.field == field and str(raised.value).startswith(f"{field}: ")


def test_options_objects_hold_the_defaults_once():
    assert TileOptions(tile=64).stride == 64 and TileOptions().batch_for("cpu") < TileOptions().batch_for("cuda")
    crack = CrackOptions(scale=0.2, width_limits_mm=[0.5], width_classes=["thin", "wide"])  # a number: mm per pixel
    assert (crack.scale, crack.mm_per_px, crack.width_limits_mm) == ("auto", 0.2, (0.5,))
    assert crack.measuring.mm_per_px == 0.2 and crack.measuring.min_area == Measuring.min_area  # None: the default's
    assert CrackOptions(min_area=60).measuring.min_area == 60


def test_scan_names_a_run_option_given_with_a_loaded_model(classifier, tmp_path, capsys):
    with pytest.raises(OptionError, match="^tta: says how a model loads"):
        crack_lightning.scan(SAMPLE / "Positive", tmp_path / "out", model=classifier, tta="hflip")
    with pytest.raises(OptionError, match="^resume: excludes overwrite"):
        crack_lightning.scan(SAMPLE / "Positive", tmp_path / "out", model=classifier, overwrite=True, resume=True)
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):  # the command names its flags
        main(["scan", "--input", str(SAMPLE / "nowhere"), "--output", str(tmp_path / "out"), "--precision", "32"])
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"--input: no file or folder {SAMPLE / 'nowhere'}; pass a folder of images, an image, or a .txt list of paths"
        )
    )
