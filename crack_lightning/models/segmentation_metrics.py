"""Pixel metrics of crack masks, as torchmetrics: scores at the threshold, the precision-recall curve of ODS F1,
and ODS F1 with a distance tolerance."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryF1Score,
    BinaryJaccardIndex,
    BinaryPrecision,
    BinaryPrecisionRecallCurve,
    BinaryRecall,
)

from crack_lightning.measure.cracks import ODS_THRESHOLDS, disk, f1_scores, pixel_counts


def disk_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The maximum of ``x`` ``(N, 1, H, W)`` over a disk of ``radius`` px around each pixel, zero outside the image:
    ``scipy.ndimage.maximum_filter`` with ``footprint=disk(radius)``, on ``x``'s device."""
    padded = torch.nn.functional.pad(x, (radius,) * 4)
    height, width = x.shape[-2:]
    out = torch.zeros_like(x)
    for row, col in np.argwhere(disk(radius)):  # the footprint's offsets, shifted by the radius
        out = torch.maximum(out, padded[..., row : row + height, col : col + width])
    return out


def tolerant_counts(
    probabilities: torch.Tensor, truth: torch.Tensor, thresholds: torch.Tensor, tolerance: int
) -> torch.Tensor:
    """:func:`crack_lightning.measure.cracks.pixel_counts` of a batch ``(N, 1, H, W)``, summed over it, computed on
    the batch's device (a GPU's validation does not wait for the CPU): ``(4, T)`` counts."""
    p, truth = probabilities.float(), truth.bool()
    if tolerance > 0:
        near_truth = disk_max(truth.float(), tolerance) > 0  # within tolerance of a true pixel (Euclidean)
        near_prediction = disk_max(p, tolerance)
    else:
        near_truth, near_prediction = truth, p

    def predicted_at(values: torch.Tensor) -> torch.Tensor:
        # How many values are >= each threshold: np.searchsorted(side="right") is bucketize(right=True).
        levels = torch.bucketize(values, thresholds, right=True)
        return torch.bincount(levels, minlength=len(thresholds) + 1).flip(0).cumsum(0).flip(0)[1:]

    true_pixels = truth.sum().expand(len(thresholds))
    return torch.stack(
        [predicted_at(p[near_truth]), predicted_at(p.flatten()), predicted_at(near_prediction[truth]), true_pixels]
    ).long()


class ToleranceCounts(Metric):
    """Pixel counts at each ODS threshold with a distance tolerance (:func:`tolerant_counts`), summed over photos;
    ``compute`` gives the best F1 over the thresholds (ODS F1)."""

    full_state_update = False

    def __init__(self, tolerance: int, thresholds: np.ndarray = ODS_THRESHOLDS) -> None:
        super().__init__()
        self.tolerance = tolerance
        self.add_state("counts", torch.zeros(4, len(thresholds), dtype=torch.long), dist_reduce_fx="sum")
        self.register_buffer("thresholds", torch.from_numpy(np.asarray(thresholds, dtype=np.float32)), persistent=False)

    def update(self, probabilities: torch.Tensor, masks: torch.Tensor) -> None:
        truth = masks == 1  # 2: ignored, not crack
        if probabilities.device.type != "cpu":  # no copy to the CPU and wait: counted where the batch is
            self.counts += tolerant_counts(probabilities.detach(), truth, self.thresholds, self.tolerance)
            return
        # On a CPU SciPy's distance transform is 2.5x faster than the shifted maxima (22 against 55 ms a 544 x 384 photo).
        for p, t in zip(probabilities.detach().float().numpy(), truth.numpy()):
            self.counts += torch.from_numpy(pixel_counts(p[0], t[0], self.thresholds.numpy(), self.tolerance))

    def compute(self) -> torch.Tensor:
        return torch.tensor(f1_scores(self.counts.cpu().numpy())[0].max(), dtype=torch.float32)


def stage_metrics(stage: str) -> nn.ModuleDict:
    """Pixel precision, recall, F1, IoU (at the model's threshold, set each epoch), the binned precision-recall
    curve of ODS F1, and the counts of ODS F1 with a 2-px tolerance."""
    scores = {
        "precision": BinaryPrecision(),
        "recall": BinaryRecall(),
        "f1": BinaryF1Score(),
        "iou": BinaryJaccardIndex(),
    }
    return nn.ModuleDict(
        {
            "scores": MetricCollection(scores, prefix=f"{stage}_"),
            "curve": BinaryPrecisionRecallCurve(thresholds=torch.from_numpy(ODS_THRESHOLDS).float()),
            "tolerant": ToleranceCounts(2),
        }
    )
