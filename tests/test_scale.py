"""Each photo's scale without --mm_per_px: the marker card's plane (face-on to 45 degrees, cracks measured on it),
a drone photo's GSD, the reasons a marker or metadata is not used, the marker command's card, and a scan that
measures in millimetres and never measures the card. Photos are made here: the shipped sample patches as the
surface, the card rendered onto it by a pinhole camera whose homography is known."""

from __future__ import annotations

import csv
import io
import re

import cv2
import numpy as np
import pytest
from PIL import Image

import crack_lightning
from crack_lightning.cli import main
from crack_lightning.errors import CrackLightningError
from crack_lightning.measure.bands import measure_photo_cracks
from crack_lightning.measure.measuring import Measuring
from crack_lightning.measure.plane import Plane
from crack_lightning.scale import marker as detection
from crack_lightning.scale.card import card_layout, marker_number, page_size_mm
from crack_lightning.scale.marker import find_markers, marker_scale
from crack_lightning.scale.photo_scale import photo_scale
from crack_lightning.synth.card_photo import Camera, Card, card_photo, stroke_mask
from tests.conftest import REPO

SAMPLE = REPO / "crack_lightning" / "assets" / "sample"
PATCH = 227


def tiled(columns: int, rows: int, cracks: set[tuple[int, int]] = frozenset()) -> np.ndarray:
    """A surface of sample patches: sound ones, crack patches at ``cracks`` ``(column, row)``."""
    sound = iter(sorted((SAMPLE / "Negative").glob("*.jpg")))
    cracked = iter(sorted((SAMPLE / "Positive").glob("*.jpg"))[::-1])
    surface = np.zeros((rows * PATCH, columns * PATCH, 3), np.uint8)
    for row in range(rows):
        for column in range(columns):
            with Image.open(next(cracked if (column, row) in cracks else sound)) as patch:
                surface[row * PATCH : (row + 1) * PATCH, column * PATCH : (column + 1) * PATCH] = patch.convert("RGB")
    return surface


@pytest.fixture(scope="module")
def surface() -> np.ndarray:
    return tiled(5, 4)


def jpeg(photo: np.ndarray, quality: int = 90) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


@pytest.mark.parametrize("tilt, tolerance", [(0, 0.01), (15, 0.03), (30, 0.03), (45, 0.03)])
def test_marker_gives_the_cards_plane_face_on_to_45_degrees(surface, tilt, tolerance):
    camera = Camera((1000, 750), 0.25, tilt)
    shot = card_photo(surface, 0.3, camera, [Card(50, (-40, -30), angle=10)])
    found = marker_scale(jpeg(shot.photo))
    truth = Plane(shot.photo_to_marker())
    assert found.plane is not None and found.note == ""
    assert found.mm_per_px == pytest.approx(truth.mm_per_px(*found.markers[0].centre), rel=tolerance)
    # far from the card too: a line across the whole photo, measured on the plane
    ends = np.array([[40.0, 60.0], [960.0, 700.0]])

    def length(plane: Plane) -> float:
        return float(np.hypot(*np.diff(plane.to_mm(ends[:, 0], ends[:, 1]), axis=0)[0]))

    assert length(found.plane) == pytest.approx(length(truth), rel=tolerance)


def test_a_long_photo_is_searched_in_a_smaller_copy(surface, monkeypatch):
    shot = card_photo(surface, 0.3, Camera((1000, 750), 0.25, 30), [Card(50, (-40, -30), angle=10)])
    truth = Plane(shot.photo_to_marker())
    whole = marker_scale(shot.photo)
    monkeypatch.setattr(detection, "DETECT_SIDE", 400)  # found in a copy 2.5x smaller, the corners refined in the photo
    copy = marker_scale(shot.photo)
    centre = copy.markers[0].centre
    assert copy.mm_per_px == pytest.approx(truth.mm_per_px(*centre), rel=0.01)
    assert np.abs(copy.markers[0].corners - whole.markers[0].corners).max() < 0.1


def test_crack_measured_on_the_cards_plane_at_30_degrees(surface):
    camera = Camera((1000, 750), 0.2, 30)
    shot = card_photo(surface, 0.3, camera, [Card(50, (-80, -40), angle=5)])
    found = marker_scale(jpeg(shot.photo))
    t = np.linspace(0, 1, 40)
    path = np.c_[60 + 100 * t, 40 + 20 * np.sin(6 * t)]  # mm on the card's plane, right of the card
    length = np.hypot(*np.diff(path, axis=0).T).sum()
    mask = stroke_mask(path, 1.0, camera, shot)
    (crack,) = Measuring(min_area=0).measure(mask, "wall", plane=found.plane)
    assert crack.length_mm == pytest.approx(length, rel=0.03)
    assert crack.mean_width_mm == pytest.approx(1.0, rel=0.1)
    # one scale for the whole photo, the marker's, is far off on a wall seen at an angle
    (flat,) = Measuring(mm_per_px=found.mm_per_px, min_area=0).measure(mask, "wall")
    assert abs(flat.length_mm / length - 1) > 0.1


def test_a_plane_without_perspective_measures_as_one_scale():
    rng = np.random.default_rng(0)
    mask = np.zeros((120, 160), bool)
    for _ in range(4):
        r, c = rng.integers(10, 100), rng.integers(10, 60)
        mask[r : r + int(rng.integers(2, 7)), c : c + int(rng.integers(30, 90))] = True
    flat = measure_photo_cracks(mask, "p", 0.2)
    on_plane = measure_photo_cracks(mask, "p", plane=Plane(np.diag([0.2, 0.2, 1.0])))
    assert len(flat) == len(on_plane) > 1
    for a, b in zip(flat, on_plane):
        assert (b.length_mm, b.mean_width_mm, b.max_width_mm) == pytest.approx(
            (a.length_mm, a.mean_width_mm, a.max_width_mm)
        )
        assert a.width_class == b.width_class


def drone_jpeg(path, pitch: float, tags: dict[int, float], size=(600, 400)) -> np.ndarray:
    image = Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "DJI"
    exif.get_ifd(0x8769).update(tags)
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/" drone-dji:RelativeAltitude="+30.20" '
        f'drone-dji:GimbalPitchDegree="{pitch:+.2f}"/></rdf:RDF></x:xmpmeta>'
    ).encode()
    image.save(path, exif=exif, xmp=xmp)
    return np.asarray(image)


def test_nadir_drone_photo_gets_its_ground_sampling_distance(tmp_path):
    # a 1" sensor 13.2 mm wide behind an 8.8 mm lens (24 mm equivalent), 30.2 m up, a 600 px wide copy
    image = drone_jpeg(tmp_path / "nadir.jpg", -89.9, {0x920A: 8.8, 0xA405: 24})
    scale = photo_scale(tmp_path / "nadir.jpg", image)
    assert scale.source == "exif" and "estimate" in scale.note
    assert scale.mm_per_px == pytest.approx(13.2 * 30.2 * 1000 / (8.8 * 600), rel=0.01)
    # the sensor from the focal plane resolution: 17.3 mm over 5280 px (in cm), a 660 px wide copy
    image = drone_jpeg(
        tmp_path / "plane.jpg", -90, {0x920A: 12.29, 0xA20E: 5280 / 1.73, 0xA210: 3, 0xA002: 5280}, (660, 495)
    )
    scale = photo_scale(tmp_path / "plane.jpg", image)
    assert scale.mm_per_px == pytest.approx(17.3 * 30.2 * 1000 / (12.29 * 660), rel=0.01)


def test_oblique_drone_photo_gets_none_and_says_why(tmp_path):
    image = drone_jpeg(tmp_path / "oblique.jpg", -45, {0x920A: 8.8, 0xA405: 24})
    scale = photo_scale(tmp_path / "oblique.jpg", image)
    assert scale.mm_per_px is None and scale.source == "none"
    assert "oblique" in scale.note and "-45" in scale.note


def disagreeing(surface):
    cards = [Card(50, (-120, -40)), Card(50, (40, -20), 30, printed_mm=54)]
    return card_photo(surface, 0.3, Camera((1200, 800), 0.25, 20), cards).photo


@pytest.mark.parametrize(
    "case, reason",
    [
        ("small", "too small"),
        ("cut", "cut off at the photo's edge"),
        ("blurred", "blurred"),
        ("two", "disagree by 8%"),
    ],
)
def test_bad_markers_are_not_used_and_say_why(surface, case, reason):
    photos = {
        "small": lambda: card_photo(surface, 0.3, Camera((800, 600), 1.2, 20), [Card(50, (-25, -25))]).photo,
        "cut": lambda: card_photo(surface, 0.3, Camera((800, 600), 0.25), [Card(50, (-102, -25))]).photo,
        "blurred": lambda: cv2.GaussianBlur(
            card_photo(surface, 0.3, Camera((800, 600), 0.25, 20), [Card(50, (-25, -25))]).photo, (0, 0), 4
        ),
        "two": lambda: disagreeing(surface),
    }
    photo = photos[case]()
    assert find_markers(photo), "the marker is found"
    scale = photo_scale(photo, photo)
    assert scale.mm_per_px is None and scale.source == "none" and scale.plane is None
    assert reason in scale.note


def test_a_card_printed_at_another_size_is_measured_with_marker_mm(surface):
    camera = Camera((800, 600), 0.25, 20)
    shot = card_photo(surface, 0.3, camera, [Card(50, (-25, -25), printed_mm=48.5)])
    centre = find_markers(shot.photo)[0].centre
    truth = Plane(shot.photo_to_marker()).mm_per_px(*centre) * 48.5 / 50
    assert photo_scale(shot.photo, shot.photo).mm_per_px == pytest.approx(truth * 50 / 48.5, rel=0.01)
    assert photo_scale(shot.photo, shot.photo, marker_mm=48.5).mm_per_px == pytest.approx(truth, rel=0.01)


def test_marker_command_writes_a_card_of_its_size(tmp_path, capsys):
    main(["marker", "--output", str(tmp_path / "card.pdf")])
    assert "50 mm wide" in capsys.readouterr().out
    pdf = (tmp_path / "card.pdf").read_bytes()
    box = [float(v) for v in re.search(rb"/MediaBox \[ ([\d. ]+) \]", pdf).group(1).split()]
    width, height = ((box[2] - box[0]) * 25.4 / 72, (box[3] - box[1]) * 25.4 / 72)
    assert (width, height) == pytest.approx(page_size_mm(50), abs=0.01)
    assert (width, height) == pytest.approx((card_layout(50).width, card_layout(50).height), abs=0.05)
    main(["marker", "--output", str(tmp_path / "card.png"), "--size_mm", "30", "--dpi", "300"])
    with Image.open(tmp_path / "card.png") as card:
        assert card.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        (marker,) = find_markers(np.asarray(card.convert("RGB")))
    assert marker.number == marker_number(30) and marker.size_mm == 30
    assert marker.side_px == pytest.approx(30 / 25.4 * 300, abs=1.0)
    with pytest.raises(SystemExit):
        main(["marker", "--output", str(tmp_path / "card.png")])  # kept: no --overwrite
    with pytest.raises(CrackLightningError, match="steps of 5"):
        marker_number(52)


def test_scan_measures_in_mm_from_the_card_and_never_the_card(tmp_path, surface):
    photos = tmp_path / "photos"
    photos.mkdir()
    shot = card_photo(
        tiled(5, 4, {(3, 1), (3, 2), (4, 2)}), 0.25, Camera((1000, 750), 0.25, 30), [Card(50, (-95, -40), 5)]
    )
    Image.fromarray(shot.photo).save(photos / "wall.jpg", quality=92)
    Image.fromarray(surface[:450, :600]).save(photos / "bare.jpg", quality=92)
    crack_lightning.scan(photos, tmp_path / "scan")
    with open(tmp_path / "scan" / "photos.csv", newline="") as f:
        rows = {r["photo"]: r for r in csv.DictReader(f)}
    wall, bare = rows["wall.jpg"], rows["bare.jpg"]
    marker = find_markers(shot.photo)[0]
    truth = Plane(shot.photo_to_marker()).mm_per_px(*marker.centre)
    assert wall["scale_source"] == "marker" and float(wall["mm_per_px"]) == pytest.approx(truth, rel=0.01)
    assert int(wall["cracks"]) > 0 and float(wall["total_length_mm"]) > 0
    assert bare["scale_source"] == "none" and bare["mm_per_px"] == bare["total_length_mm"] == bare["scale_note"] == ""
    with open(tmp_path / "scan" / "cracks.csv", newline="") as f:
        assert all(r["length_mm"] and r["width_class"] for r in csv.DictReader(f) if r["photo"] == "wall.jpg")
    # the card is no crack: without clearing it, its lettering and edges are
    card = np.zeros(shot.photo.shape[:2], np.uint8)
    cv2.fillPoly(card, [np.round(photo_scale(shot.photo, shot.photo).card_outlines()[0]).astype(np.int32)], 1)
    mask = np.asarray(Image.open(tmp_path / "scan" / "masks" / "wall.jpg.png"))
    assert not mask[card.astype(bool)].any()
    uncleared = crack_lightning.load_model("concrete-seg-v1").scan(shot.photo, scale="none")
    assert uncleared.mask[card.astype(bool)].any()
    overlay = np.asarray(Image.open(tmp_path / "scan" / "overlays" / "wall.jpg.png").convert("RGB"))
    assert (overlay == (0, 192, 64)).all(axis=-1).sum() > 100  # the marker outlined in green
    page = (tmp_path / "scan" / "report.html").read_text()
    assert "mm/px <span class=meta>(marker)</span>" in page


def test_scan_command_scale_options(tmp_path, surface, capsys):
    from tests.test_segment_scan import darkness_model

    dark = darkness_model(tmp_path / "dark.onnx")  # marks dark pixels as crack: the marker would be one
    (tmp_path / "photos").mkdir()
    shot = card_photo(surface, 0.3, Camera((800, 600), 0.25, 20), [Card(50, (-40, -35))])
    Image.fromarray(shot.photo).save(tmp_path / "photos" / "wall.png")

    def scale_of(*options: str) -> dict[str, str]:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        main(
            [
                "scan",
                "--ckpt_path",
                str(dark),
                "--input",
                str(tmp_path / "photos"),
                "--output",
                str(out),
                "--progress",
                "false",
                *options,
            ]
        )
        with open(out / "photos.csv", newline="") as f:
            (row,) = csv.DictReader(f)
        return row

    found = scale_of()
    assert found["scale_source"] == "marker" and found["cracks"] == "0"  # the marker is cleared, not measured
    assert float(scale_of("--marker_mm", "48.5")["mm_per_px"]) == pytest.approx(
        float(found["mm_per_px"]) * 0.97, rel=1e-4
    )
    assert scale_of("--scale", "none")["scale_source"] == "none"
    assert scale_of("--scale", "0.3")["mm_per_px"] == "0.3"
    given = scale_of("--scale", "none", "--mm_per_px", "0.2")
    assert (given["mm_per_px"], given["scale_source"]) == ("0.2", "option")
    with pytest.raises(SystemExit):
        scale_of("--scale", "big")
    assert "--scale: 'big'; pass auto, none or the photos' mm per pixel" in capsys.readouterr().err
