"""``evaluate`` of a segmenter through the scan, and the scan's hysteresis.

The stand-in segmenter's crack probability is the darkness of each pixel (:func:`tests.test_segment_scan.darkness_model`):
dark lines on bright noise give their own masks exactly, so the figures can be checked against masks drawn here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage.filters import apply_hysteresis_threshold

import crack_lightning
from crack_lightning.cli import main
from crack_lightning.errors import CrackLightningError
from crack_lightning.evaluation.intervals import wilson
from crack_lightning.evaluation.remembered import RememberedMaps
from crack_lightning.measure.hysteresis import crack_mask
from tests.test_segment_scan import darkness_model, plain_argv, read_csv, scan  # noqa: F401  (plain_argv: a fixture)

SIZE = (160, 240)  # height, width
STRONG, WEAK, FAINT = 40, 101, 106  # grey levels: the stand-in's probability ~1, 0.38, 0.05


@pytest.fixture(scope="module")
def darkness(tmp_path_factory) -> Path:
    return darkness_model(tmp_path_factory.mktemp("darkness") / "darkness.onnx")


def draw(lines: list[tuple[tuple[int, int, int, int], int]]) -> np.ndarray:
    """A bool mask ``SIZE`` with lines ``((x0, y0, x1, y1), width)``."""
    mask = Image.new("L", (SIZE[1], SIZE[0]))
    pen = ImageDraw.Draw(mask)
    for points, width in lines:
        pen.line(points, fill=255, width=width)
    return np.asarray(mask) > 0


def photo_of(*layers: tuple[np.ndarray, int], seed: int = 0) -> np.ndarray:
    """Bright noise with each ``(mask, grey)`` painted over it in turn."""
    photo = np.random.default_rng(seed).integers(120, 200, (*SIZE, 3), dtype=np.uint8)
    for mask, grey in layers:
        photo[mask] = grey
    return photo


def masked_folder(root: Path, photos: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """``root/images/NAME.png`` and ``root/masks/NAME.png`` from ``{name: (photo, true mask)}``."""
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name, (photo, truth) in photos.items():
        Image.fromarray(photo).save(root / "images" / f"{name}.png")
        Image.fromarray(truth.astype(np.uint8) * 255).save(root / "masks" / f"{name}.png")
    return root


def test_a_perfect_prediction_scores_one_and_measures_the_true_masks(darkness, tmp_path):
    lines = {"a-1": [((20, 80, 220, 80), 3)], "a-2": [((20, 20, 140, 140), 5)], "b-1": [((120, 10, 120, 150), 4)]}
    photos = {name: (photo_of((draw(ls), STRONG), seed=i), draw(ls)) for i, (name, ls) in enumerate(lines.items())}
    result = crack_lightning.evaluate(masked_folder(tmp_path, photos), darkness)
    s = result.sets["all"]
    assert s["photos"] == 3 and result.sets["half 1"]["photos"] == 2 and result.sets["half 2"]["photos"] == 1
    for key in ("precision", "recall", "f1", "f1_tolerant", "mean_iou", "ods_f1", "ods_f1_tolerant", "length_within"):
        assert s[key] == pytest.approx(1.0), key
    assert s["length_error"] < 1e-9 and s["width_error"] < 0.05
    assert [p.name for p in result.photos] == ["a-1.png", "a-2.png", "b-1.png"]
    first = result.photos[0]
    assert first.length_px == pytest.approx(first.true_length_px) and first.length_px > 190


def test_figures_equal_a_hand_count_on_a_tiny_case(darkness, tmp_path):
    # The photo shows lines A and B; the true mask has A and C: B is a false crack, C a missed one.
    a, b, c = draw([((10, 40, 200, 40), 3)]), draw([((30, 120, 150, 120), 2)]), draw([((220, 10, 220, 150), 4)])
    photo, truth = photo_of((a | b, STRONG)), a | c
    result = crack_lightning.evaluate(masked_folder(tmp_path, {"one": (photo, truth)}), darkness)
    predicted = a | b
    hits = (predicted & truth).sum()
    precision, recall = hits / predicted.sum(), hits / truth.sum()
    s = result.sets["all"]
    assert s["precision"] == pytest.approx(precision) and s["recall"] == pytest.approx(recall)
    assert s["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert s["mean_iou"] == pytest.approx(hits / (predicted | truth).sum())
    assert s["ods_f1"] == pytest.approx(s["f1"])  # probabilities ~0 or ~1: every threshold gives the same mask
    row = result.to_dict()["photos"][0]
    assert row["cracks"] == 2 and row["true_cracks"] == 2
    # lengths: the same measurement of the scan's cracks (A, B) and of the true ones (A, C)
    assert row["length_error"] == pytest.approx((row["length_px"] - row["true_length_px"]) / row["true_length_px"])
    assert row["length_px"] == pytest.approx(190 + 120, abs=6) and row["true_length_px"] == pytest.approx(
        190 + 140, abs=6
    )


def test_the_command_prints_a_table_and_writes_json(darkness, tmp_path, capsys):
    line = draw([((20, 80, 220, 80), 3)])
    root = masked_folder(tmp_path / "data", {"x": (photo_of((line, STRONG)), line)})
    patches = tmp_path / "patches"
    for kind, seeds in (("Positive", (1, 2)), ("Negative", (3, 4, 5))):
        (patches / kind).mkdir(parents=True)
        for seed in seeds:
            layers = [(line, STRONG)] if kind == "Positive" else []
            Image.fromarray(photo_of(*layers, seed=seed)).save(patches / kind / f"{seed}.png")
    out = tmp_path / "report.json"
    args = ["evaluate", "--ckpt_path", str(darkness), "--input", str(root), "--output", str(out), "--progress", "false"]
    main([*args, "--patches", str(patches)])
    printed = capsys.readouterr().out
    assert "| all: 1 | 1.000 | 1.000 | 1.000 |" in printed and "| Negative | 3 | 0 (0.0%" in printed
    report = json.loads(out.read_text())
    assert report["threshold"] == 0.5 and report["low_threshold"] is None and report["model_sha256"]
    for key in (
        "precision",
        "recall",
        "f1",
        "recall_tolerant",
        "mean_iou",
        "ods_f1",
        "ods_threshold",
        "length_error",
        "width_error",
    ):
        assert key in report["sets"]["all"]
    assert report["photos"][0]["photo"] == "x.png" and report["photos"][0]["iou"] == pytest.approx(1.0)
    assert report["patches"]["Positive"] == {
        "patches": 2,
        "crack_found": 2,
        "share": 1.0,
        "share_95ci": list(wilson(2, 2)),
    }
    with pytest.raises(SystemExit):  # the report is not overwritten
        main(args)
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("problem", ["no masks folder", "mask of another size", "no mask"])
def test_bad_input_is_a_one_line_error_naming_the_file(darkness, tmp_path, capsys, problem):
    line = draw([((20, 80, 220, 80), 3)])
    root = masked_folder(tmp_path / "data", {"x": (photo_of((line, STRONG)), line)})
    named = root / "masks"
    if problem == "no masks folder":
        for path in named.iterdir():
            path.unlink()
        named.rmdir()
    elif problem == "mask of another size":
        named = root / "masks" / "x.png"
        Image.fromarray(np.zeros((10, 20), np.uint8)).save(named)
    else:
        named = root / "images" / "y.png"
        Image.fromarray(photo_of()).save(named)
    with pytest.raises(SystemExit):
        main(["evaluate", "--ckpt_path", str(darkness), "--input", str(root), "--progress", "false"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("crack_lightning: error: ") and str(named) in errors[0]


def test_a_classifier_is_sent_to_test(tmp_path):
    with pytest.raises(CrackLightningError, match="test"):
        crack_lightning.evaluate(tmp_path, "concrete-v1")


def test_wilson_interval_of_known_shares():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    for n in (10, 2500, 99991):  # a share of 0 or 1 lies inside its interval exactly
        assert wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0


def test_hysteresis_keeps_weak_pixels_that_touch_strong_ones():
    probability = np.zeros((40, 60), np.uint8)
    probability[10, 5:30] = 230  # strong
    probability[10, 30:50] = 120  # its weak continuation
    probability[11:13, 40] = 120  # a weak branch of the continuation
    probability[30, 10:40] = 120  # weak on its own
    probability[20, 5] = 230
    probability[21, 6] = 120  # touches a strong pixel diagonally only
    plain = crack_mask(probability, 207)
    assert np.array_equal(plain, probability >= 207) and np.array_equal(crack_mask(probability, 207, 207), plain)
    mask = crack_mask(probability, 207, 100)
    assert mask[10, 5:50].all() and mask[11:13, 40].all() and mask[21, 6] and not mask[30].any()
    # scikit-image's function joins 4-connected groups only: the same but for the diagonal pixel
    expected = apply_hysteresis_threshold(probability.astype(float), 99.5, 206.5)
    expected[21, 6] = True
    assert np.array_equal(mask, expected)


def test_hysteresis_in_the_scan_joins_a_cracks_faint_stretch_only(darkness, tmp_path):
    strong, weak = draw([((20, 50, 120, 50), 3)]), draw([((120, 50, 220, 50), 3)])
    alone = draw([((20, 120, 200, 120), 3)])  # faint, touching no crack
    photo = photo_of((weak | alone, WEAK), (strong, STRONG))
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "p.png")
    plain = crack_lightning.load_model(darkness).scan(photo)
    joined = crack_lightning.load_model(darkness).scan(photo, low_threshold=0.3)
    assert len(plain.cracks) == 1 and plain.cracks[0].length_px == pytest.approx(100, abs=4)
    assert len(joined.cracks) == 1 and joined.cracks[0].length_px == pytest.approx(200, abs=4)
    assert joined.mask.sum() == (strong | weak).sum() and not (joined.mask & alone).any()
    # the command: the same, and its overlay draws the joined stretch as crack
    scan(darkness, folder, tmp_path / "plain")
    scan(darkness, folder, tmp_path / "off", "--low_threshold", "0.5")
    scan(darkness, folder, tmp_path / "on", "--low_threshold", "0.3")
    for name in ("cracks.csv", "photos.csv", "masks/p.png.png", "overlays/p.png.png"):
        assert (tmp_path / "off" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    rows = read_csv(tmp_path / "on" / "cracks.csv")
    assert len(rows) == 1 and float(rows[0]["length_px"]) == pytest.approx(joined.cracks[0].length_px, abs=0.01)
    settings = json.loads((tmp_path / "on" / "scan.json").read_text())
    assert settings["low_threshold"] == 0.3
    assert "from 0.3 where they touch those" in (tmp_path / "on" / "report.html").read_text()
    with (
        Image.open(tmp_path / "on" / "overlays" / "p.png.png") as on,
        Image.open(tmp_path / "plain" / "overlays" / "p.png.png") as off,
    ):
        changed = np.any(np.asarray(on) != np.asarray(off), axis=2)
    left = np.arange(SIZE[1]) < 160  # the colour bar's corner left out
    assert changed[weak & ~strong & left].all() and not changed[alone].any()


def test_a_models_own_low_threshold_is_the_scans_default(tmp_path):
    model = crack_lightning.load_model(darkness_model(tmp_path / "low.onnx", low_threshold=0.3))
    strong, weak = draw([((20, 50, 120, 50), 3)]), draw([((120, 50, 220, 50), 3)])
    photo = photo_of((weak, WEAK), (strong, STRONG))
    assert model.low_threshold == 0.3 and model.scan(photo).mask.sum() == (strong | weak).sum()
    assert model.scan(photo, low_threshold=1.0).mask.sum() == strong.sum()  # at or above the threshold: off


def test_a_models_own_smallest_crack_is_the_scans_and_evaluates_default(tmp_path):
    # a short dark stroke of about 3 x 12 px: a crack at the scan's default 25 px, noise for a model that says 60
    short, long = draw([((30, 40, 42, 40), 3)]), draw([((30, 120, 200, 120), 3)])
    photo = photo_of((short | long, STRONG))
    plain = crack_lightning.load_model(darkness_model(tmp_path / "plain.onnx"))
    own = crack_lightning.load_model(darkness_model(tmp_path / "own.onnx", min_area=60))
    assert own.min_area == 60 and plain.min_area is None
    assert len(plain.scan(photo).cracks) == 2 and len(own.scan(photo).cracks) == 1
    assert len(own.scan(photo, min_area=25).cracks) == 2  # the option wins
    root = masked_folder(tmp_path, {"x": (photo, short | long)})
    assert crack_lightning.evaluate(root, own).to_dict()["min_area"] == 60


def test_remembered_maps_give_the_same_figures_from_one_pass(darkness, tmp_path):
    strong, weak = draw([((20, 80, 120, 80), 3)]), draw([((120, 80, 220, 80), 3)])
    root = masked_folder(tmp_path, {"x": (photo_of((weak, WEAK), (strong, STRONG)), strong | weak)})
    model = crack_lightning.load_model(darkness)
    remembered = RememberedMaps(crack_lightning.load_model(darkness))
    recalls = []
    for low in (None, 0.3):
        fresh = crack_lightning.evaluate(root, model, low_threshold=low).to_dict()
        again = crack_lightning.evaluate(root, remembered, low_threshold=low).to_dict()
        assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in fresh.items() if k != "seconds"}
        recalls.append(again["sets"]["all"]["recall"])
    assert len(remembered.maps) == 1  # one network pass for both settings
    assert recalls[0] == pytest.approx(strong.sum() / (strong | weak).sum()) and recalls[1] == pytest.approx(1.0)


def test_remembered_maps_hand_out_maps_a_scan_may_change(darkness):
    # a scan clears a marker card's pixels in its map: the remembered one must stay as the network made it
    photo = photo_of((draw([((20, 80, 220, 80), 3)]), STRONG))
    remembered = RememberedMaps(crack_lightning.load_model(darkness))
    first = remembered.probability_map(photo)
    made = first.copy()
    first[:] = 0
    assert np.array_equal(remembered.probability_map(photo), made) and made.any()


def test_hysteresis_on_a_tiled_tiff_gives_the_cracks_of_the_decoded_photo(darkness, tmp_path):
    import tifffile

    from tests.test_orthomosaic import by_photo

    lines = [((20, 30, 230, 40), 3), ((100, 60, 60, 150), 4)]
    strong = draw(lines)
    weak = draw([((230, 40, 239, 140), 3), ((30, 100, 200, 100), 2)])  # a continuation, and one touching the 2nd
    alone = draw([((150, 130, 230, 150), 3)])
    photo = photo_of((weak | alone, WEAK), (strong, STRONG))
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "photo.png")
    tifffile.imwrite(folder / "ortho.tif", photo, tile=(64, 64), photometric="rgb", compression="zlib", bigtiff=True)
    scan(darkness, folder, tmp_path / "out", "--low_threshold", "0.3", "--window", "96", "--overlap", "16")
    # widths left out: the orthomosaic path measures them from the mask, not the map (as before hysteresis), and
    # the faint stretch's probability is far from 1
    columns = ("crack", "x", "y", "width", "height", "length_px")
    cracks = by_photo(read_csv(tmp_path / "out" / "cracks.csv"), *columns)
    assert cracks["ortho.tif"] == cracks["photo.png"] and len(cracks["photo.png"]) == 2
    joined = crack_lightning.load_model(darkness).scan(photo, low_threshold=0.3, window=96, overlap=16)
    assert [c[5] for c in cracks["photo.png"]] == [f"{c.length_px:.2f}" for c in joined.cracks]
