"""measure.py on synthetic masks with known answers, and its pixel scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crack_lightning.measure.cracks import (
    CRACK_FIELDS,
    f1_scores,
    measure_cracks,
    pixel_counts,
    skeleton_lengths,
    summarise,
    width_class,
)


def line(width: int, length: int, size: tuple[int, int] = (64, 200)) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    top = 30 - width // 2
    mask[top : top + width, 20 : 20 + length] = True
    return mask


@pytest.mark.parametrize("width", [1, 2, 5, 6])
def test_straight_line_length_and_width(width):
    (crack,) = measure_cracks(line(width, 120))
    assert (crack.x, crack.width, crack.height) == (20, 120, width)
    assert crack.length_px == pytest.approx(119, abs=3.0)  # a thick line's skeleton may end a pixel or two short
    assert crack.mean_width_px == pytest.approx(width, abs=0.05)
    assert crack.max_width_px == pytest.approx(width, abs=0.01)
    assert crack.length_mm is None and crack.width_class == ""


def test_diagonal_line_counts_sqrt2_per_step():
    mask = np.zeros((100, 100), dtype=bool)
    idx = np.arange(10, 90)
    mask[idx, idx] = True
    (crack,) = measure_cracks(mask)
    assert crack.length_px == pytest.approx(79 * math.sqrt(2), rel=1e-6)
    assert crack.mean_width_px == pytest.approx(1.0)


def test_staircase_steps_count_once():
    skeleton = np.zeros((4, 5), dtype=bool)
    skeleton[1, 0:2] = skeleton[2, 1:3] = True  # a stair: right, down, right (3 steps, not 3 + 2 diagonals)
    skeleton[3, 4] = True  # a second part, of one pixel
    labels = np.zeros((4, 5), dtype=int)
    labels[1:3] = 1
    labels[3, 4] = 2
    assert skeleton_lengths(skeleton, labels, 2).tolist() == [0.0, 3.0, 0.0]


def test_disk_width_is_its_diameter():
    yy, xx = np.mgrid[:81, :81]
    mask = (yy - 40) ** 2 + (xx - 40) ** 2 <= 20**2
    (crack,) = measure_cracks(mask)
    assert crack.max_width_px == pytest.approx(41, abs=2.0)  # a digital disk's edge is no straight line
    assert (crack.width, crack.height) == (41, 41)


def test_two_cracks_tiny_component_dropped_and_mm():
    mask = line(3, 100, (120, 200))
    mask[80:82, 10:150] = True  # a second crack, 2 px wide
    mask[110, 190] = True  # a 1-pixel speck
    assert len(measure_cracks(mask)) == 3
    cracks = measure_cracks(mask, photo="p.jpg", mm_per_px=0.1, min_area=5)
    assert [c.crack for c in cracks] == [1, 2] and {c.photo for c in cracks} == {"p.jpg"}
    first, second = cracks
    assert first.max_width_px == pytest.approx(3) and second.max_width_px == pytest.approx(2, abs=0.5)
    assert first.length_mm == pytest.approx(first.length_px * 0.1)
    assert first.max_width_mm == pytest.approx(0.3) and first.width_class == "medium"
    assert second.width_class == "fine"
    summary = summarise(cracks, "p.jpg", mm_per_px=0.1)
    assert summary.cracks == 2 and summary.widest_crack == 1
    assert summary.total_length_px == pytest.approx(first.length_px + second.length_px)
    assert summary.total_length_mm == pytest.approx(summary.total_length_px * 0.1)
    assert CRACK_FIELDS[:3] == ("photo", "crack", "x") and CRACK_FIELDS[-1] == "width_class"


def test_empty_mask_and_width_classes():
    assert measure_cracks(np.zeros((8, 8), dtype=bool)) == []
    assert summarise([]).total_length_px == 0 and summarise([]).widest_crack is None
    assert [width_class(w) for w in (0.05, 0.1, 0.5, 2.0, None)] == ["hairline", "fine", "medium", "wide", ""]
    assert width_class(0.5, (1.0,), ("thin", "thick")) == "thin"


def test_pixel_counts_with_and_without_tolerance():
    truth = np.zeros((20, 20), dtype=bool)
    truth[10, 2:18] = True
    probability = np.zeros((20, 20), dtype=np.float32)
    probability[11, 2:18] = 0.9  # one pixel off: wrong without tolerance, right within 2 px
    f1, _, _ = f1_scores(pixel_counts(probability, truth, np.array([0.5])))
    assert f1[0] == 0
    f1, precision, recall = f1_scores(pixel_counts(probability, truth, np.array([0.5, 0.95]), tolerance=2))
    assert f1[0] == precision[0] == recall[0] == 1 and f1[1] == 0
    exact = pixel_counts((truth * 255).astype(np.uint8), truth, np.array([0.5]))
    assert exact[:, 0].tolist() == [16, 16, 16, 16]
