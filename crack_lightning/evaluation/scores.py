"""Scores of a segmenter's scan of one photo against its true mask, and of a set of photos.

At the operating point (the scan's mask: the model's threshold and the scan's post-processing), pixel precision,
recall, F1 and IoU, exactly and with a tolerance of ``TOLERANCE`` px (a predicted pixel counts when a true one lies
that near, and the other way round). Over fixed thresholds of the probability map, ODS F1: the best F1 of one
threshold for the whole set (chosen on the set itself, so it flatters; users get the operating point). Lengths and
widths: the scan's measurement of its cracks against the same measurement of the true mask's cracks, per photo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crack_lightning.evaluation.intervals import wilson
from crack_lightning.measure.cracks import ODS_THRESHOLDS, f1_scores, pixel_counts, summarise
from crack_lightning.measure.measuring import Measuring
from crack_lightning.results.maps import CrackMap

TOLERANCE = 2  # px: masks drawn by hand are off by a pixel or two at the edges of a crack
LENGTH_TOLERANCE = 0.15  # a photo's total length counts as right within 15% of the true one
AT_MASK = np.array([0.5])  # a boolean mask as a probability map: one threshold between its 0 and 1


@dataclass
class PhotoScore:
    """One photo's counts and measurements (counts as :func:`~crack_lightning.measure.cracks.pixel_counts`: predicted
    pixels near a true one, predicted, true pixels near a predicted one, true)."""

    name: str
    group: str
    width: int
    height: int
    counts: np.ndarray = field(repr=False)  # (4,) the scan's mask, exact
    counts_tolerant: np.ndarray = field(repr=False)  # (4,) the scan's mask, within TOLERANCE px
    curve: np.ndarray = field(repr=False)  # (4, T) the probability map at ODS_THRESHOLDS, exact
    curve_tolerant: np.ndarray = field(repr=False)  # (4, T) within TOLERANCE px
    cracks: int
    true_cracks: int
    length_px: float
    true_length_px: float
    mean_width_px: float
    true_mean_width_px: float

    @property
    def iou(self) -> float:
        """Intersection over union of the scan's mask and the true one; 1 when both are empty."""
        hits, predicted, _, true = self.counts
        union = predicted + true - hits
        return float(hits / union) if union else 1.0

    @property
    def length_error(self) -> float:
        """(measured - true) total crack length, relative to the true one (at least 1 px)."""
        return (self.length_px - self.true_length_px) / max(self.true_length_px, 1.0)

    @property
    def width_error(self) -> float:
        """Measured - true mean crack width, px (a photo without cracks has mean width 0)."""
        return self.mean_width_px - self.true_mean_width_px

    def to_dict(self) -> dict:
        f1, precision, recall = (float(v[0]) for v in f1_scores(self.counts[:, None]))
        return {
            "photo": self.name,
            "group": self.group,
            "width": self.width,
            "height": self.height,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "iou": self.iou,
            "cracks": self.cracks,
            "true_cracks": self.true_cracks,
            "length_px": self.length_px,
            "true_length_px": self.true_length_px,
            "length_error": self.length_error,
            "mean_width_px": self.mean_width_px,
            "true_mean_width_px": self.true_mean_width_px,
            "width_error": self.width_error,
        }


def score_photo(result: CrackMap, truth: np.ndarray, measuring: Measuring, group: str = "") -> PhotoScore:
    """A scanned photo (its probability map, mask and cracks) against its true mask, whose cracks are measured as
    ``measuring`` measures the scan's (the same smallest crack)."""
    mask = result.mask.astype(np.float32)
    predicted = summarise(result.cracks)
    true = summarise(measuring.measure(truth, result.name))
    return PhotoScore(
        result.name,
        group,
        result.width,
        result.height,
        pixel_counts(mask, truth, AT_MASK)[:, 0],
        pixel_counts(mask, truth, AT_MASK, TOLERANCE)[:, 0],
        pixel_counts(result.probability, truth),
        pixel_counts(result.probability, truth, tolerance=TOLERANCE),
        predicted.cracks,
        true.cracks,
        predicted.total_length_px,
        true.total_length_px,
        predicted.mean_width_px,
        true.mean_width_px,
    )


def score_set(photos: list[PhotoScore]) -> dict:
    """A set's scores: pixels pooled over its photos; IoU also the mean over photos; lengths and widths as medians
    over photos; the share of photos within ``LENGTH_TOLERANCE`` with its 95% Wilson interval."""
    f1, precision, recall = (float(v[0]) for v in f1_scores(sum(p.counts for p in photos)[:, None]))
    f1_tolerant, precision_tolerant, recall_tolerant = (
        float(v[0]) for v in f1_scores(sum(p.counts_tolerant for p in photos)[:, None])
    )
    hits, predicted, _, true = sum(p.counts for p in photos)
    curve = f1_scores(sum(p.curve for p in photos))[0]
    curve_tolerant = f1_scores(sum(p.curve_tolerant for p in photos))[0]
    lengths = np.array([p.length_error for p in photos])
    widths = np.array([p.width_error for p in photos])
    within = int(np.sum(np.abs(lengths) <= LENGTH_TOLERANCE))
    return {
        "photos": len(photos),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_tolerant": f1_tolerant,
        "precision_tolerant": precision_tolerant,
        "recall_tolerant": recall_tolerant,
        "iou": float(hits / max(1, predicted + true - hits)),
        "mean_iou": float(np.mean([p.iou for p in photos])),
        "ods_f1": float(curve.max()),
        "ods_threshold": float(ODS_THRESHOLDS[curve.argmax()]),
        "ods_f1_tolerant": float(curve_tolerant.max()),
        "length_error": float(np.median(np.abs(lengths))),
        "length_bias": float(np.median(lengths)),
        "length_within": within / len(photos),
        "length_within_95ci": list(wilson(within, len(photos))),
        "width_error": float(np.median(np.abs(widths))),
        "width_bias": float(np.median(widths)),
    }
