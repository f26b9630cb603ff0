"""measure.py on synthetic masks and probability maps with known answers, and its pixel scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from crack_lightning.measure.cracks import (
    CRACK_FIELDS,
    f1_scores,
    fill_small_holes,
    measure_cracks,
    pixel_counts,
    summarise,
    width_class,
)
from crack_lightning.measure.skeleton_graph import SkeletonGraph, pruned, smoothed_steps


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
    # the last pixels of a thick line's skeleton bend, which tilts the normal there a little
    assert crack.max_width_px == pytest.approx(width, abs=0.5)
    assert crack.length_mm is None and crack.width_class == ""


def test_diagonal_line_counts_sqrt2_per_step():
    mask = np.zeros((100, 100), dtype=bool)
    idx = np.arange(10, 90)
    mask[idx, idx] = True
    (crack,) = measure_cracks(mask)
    assert crack.length_px == pytest.approx(79 * math.sqrt(2), rel=1e-6)
    assert crack.mean_width_px == pytest.approx(1.0, abs=0.05)


def test_staircase_steps_count_once():
    skeleton = np.zeros((4, 5), dtype=bool)
    skeleton[1, 0:2] = skeleton[2, 1:3] = True  # a stair: right, down, right (3 steps, not 3 + 2 diagonals)
    graph = SkeletonGraph.of(skeleton)
    assert len(graph.first) == 3 and graph.steps().sum() == 3.0
    assert graph.degrees().tolist() == [1, 2, 2, 1]  # no corner reads as a junction


def band(width: float, angle: float, length: float = 150, size: tuple[int, int] = (160, 220)) -> np.ndarray:
    """A straight crack ``width`` px wide at ``angle`` degrees as a probability map (edge pixels partly covered)."""
    yy, xx = np.mgrid[: size[0], : size[1]].astype(float)
    a = np.deg2rad(angle)
    across = (yy - size[0] / 2) * np.cos(a) + (xx - size[1] / 2) * np.sin(a)
    along = -(yy - size[0] / 2) * np.sin(a) + (xx - size[1] / 2) * np.cos(a)
    return np.clip(width / 2 + 0.5 - np.abs(across), 0, 1) * (np.abs(along) <= length / 2)


@pytest.mark.parametrize("width", [1, 2, 3, 6, 10])
@pytest.mark.parametrize("angle", [0, 30, 45])
def test_blurred_crack_measures_its_true_width_at_any_threshold(width, angle):
    """The profile across a crack blurred by a known point spread function keeps its area: the width is the true
    one whether the mask that finds the crack is drawn at 0.69 or 0.3 of the peak (a mask's own width is not)."""
    probability = ndimage.gaussian_filter(band(width, angle), 1.5)
    for level in (0.69, 0.3):
        (crack,) = measure_cracks(probability >= level * probability.max(), probability=probability, min_area=5)
        assert crack.mean_width_px == pytest.approx(width, abs=0.15), level
        assert crack.length_px == pytest.approx(150 - width, abs=6)  # the skeleton ends about a half-width early
    as_uint8 = np.rint(probability * 255).astype(np.uint8)
    (crack,) = measure_cracks(as_uint8 >= as_uint8.max() // 2, probability=as_uint8, min_area=5)
    assert crack.mean_width_px == pytest.approx(width, abs=0.15)


def test_jagged_mask_gains_no_length_from_spurs():
    """A crack 6 px wide with bumps of up to 3 px on both edges every 3 px: thinning grows side branches into the
    bumps, which are shorter than the crack's width and pruned; the length stays the crack's (220 px, less about
    its width at the ends)."""
    rng = np.random.default_rng(0)
    mask = np.zeros((80, 260), dtype=bool)
    mask[34:40, 20:240] = True
    for x in range(20, 240, 3):
        top, bottom = rng.integers(0, 4, 2)
        mask[34 - top : 34, x : x + 2] = mask[40 : 40 + bottom, x : x + 2] = True
    (crack,) = measure_cracks(mask)
    assert 220 - 8 <= crack.length_px <= 220
    assert crack.mean_width_px == pytest.approx(
        6 + 2 * 1.5 * 2 / 3, abs=0.5
    )  # bumps of 1.5 px on average, 2 px of 3, each side
    from skimage.morphology import skeletonize

    graph = SkeletonGraph.of(skeletonize(mask))
    assert (graph.degrees() >= 3).any()  # there were spurs to prune
    kept = pruned(graph, ndimage.distance_transform_edt(mask)[graph.rows, graph.cols])
    assert not (graph.kept(kept).degrees() >= 3).any()


def test_a_line_at_any_angle_measures_its_euclidean_length():
    """Steps of 1 and sqrt(2) px read a line at 22.5 degrees 8% long; the smoothed path reads it within 0.5%."""
    mask = np.zeros((200, 300), dtype=bool)
    x = np.arange(20, 260)
    mask[np.round(20 + x * np.tan(np.pi / 8)).astype(int), x] = True
    (crack,) = measure_cracks(mask)
    assert crack.length_px == pytest.approx(239 / math.cos(math.pi / 8), rel=0.005)
    graph = SkeletonGraph.of(mask)
    assert graph.steps().sum() > 1.07 * smoothed_steps(graph).sum()


def test_small_holes_inside_a_crack_are_filled_large_ones_kept():
    """A skeleton loops around a hole (twice the length): holes up to HOLE_AREA px are the crack's own interior,
    filled; the concrete inside a ring of cracks is larger and stays (the ring's length is its loop)."""
    mask = np.zeros((60, 220), dtype=bool)
    mask[24:36, 20:200] = True
    solid = measure_cracks(mask)[0]
    for x in (50, 100, 150):
        mask[28:32, x : x + 6] = False  # holes of 24 px
    (holed,) = measure_cracks(mask)
    assert holed.length_px == pytest.approx(solid.length_px, abs=0.5)
    assert measure_cracks(mask, hole_area=0)[0].length_px > solid.length_px + 20
    assert np.array_equal(fill_small_holes(mask, band_rows=7), fill_small_holes(mask))
    ring = np.zeros((80, 80), dtype=bool)
    ring[10:70, 10:70] = True
    ring[16:64, 16:64] = False  # a hole of 48 x 48 px
    (loop,) = measure_cracks(ring)
    assert loop.length_px == pytest.approx(4 * 54, rel=0.05) and loop.mean_width_px == pytest.approx(6, abs=0.3)


def test_a_second_crack_beside_one_adds_nothing_to_its_width():
    """The profile stops where the probability rises again: a parallel crack 3 px away is not read as width."""
    probability = np.maximum(band(3, 0), np.roll(band(3, 0), 6, axis=0))
    probability = ndimage.gaussian_filter(probability, 1.0)
    cracks = measure_cracks(probability >= 0.5, probability=probability)
    assert len(cracks) == 2
    assert [c.mean_width_px for c in cracks] == pytest.approx([3, 3], abs=0.4)


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
    assert first.max_width_px == pytest.approx(3, abs=0.5) and second.max_width_px == pytest.approx(2, abs=0.5)
    assert first.length_mm == pytest.approx(first.length_px * 0.1)
    assert first.max_width_mm == pytest.approx(first.max_width_px * 0.1) and first.width_class == "medium"
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


def test_a_junction_with_only_spurs_around_it_is_pruned_to_the_junction():
    # no edge between two non-junction nodes: every branch is one step to the junction (a crash before)
    star = SkeletonGraph(np.array([5, 4, 5, 6]), np.array([5, 5, 4, 6]), np.array([0, 0, 0]), np.array([1, 2, 3]))
    assert pruned(star, np.ones(4)).tolist() == [True, False, False, False]
