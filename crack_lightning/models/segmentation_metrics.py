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

from crack_lightning.measure.cracks import ODS_THRESHOLDS, f1_scores, pixel_counts


class ToleranceCounts(Metric):
    """Pixel counts at each ODS threshold with a distance tolerance (:func:`crack_lightning.measure.cracks.pixel_counts`),
    summed over photos; ``compute`` gives the best F1 over the thresholds (ODS F1)."""

    full_state_update = False

    def __init__(self, tolerance: int, thresholds: np.ndarray = ODS_THRESHOLDS) -> None:
        super().__init__()
        self.tolerance, self.thresholds = tolerance, thresholds
        self.add_state("counts", torch.zeros(4, len(thresholds), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, masks: torch.Tensor) -> None:
        for p, m in zip(probabilities.detach().float().cpu().numpy(), masks.cpu().numpy()):
            counts = pixel_counts(p[0], m[0] == 1, self.thresholds, self.tolerance)  # 2: ignored, not crack
            self.counts += torch.from_numpy(counts).to(self.counts.device)

    def compute(self) -> torch.Tensor:
        return torch.tensor(f1_scores(self.counts.cpu().numpy())[0].max(), dtype=torch.float32)


def stage_metrics(stage: str) -> nn.ModuleDict:
    """Pixel precision, recall, F1, IoU (at the model's threshold, set each epoch), the binned precision-recall
    curve of ODS F1, and the counts of ODS F1 with a 2-px tolerance."""
    scores = {"precision": BinaryPrecision(), "recall": BinaryRecall(), "f1": BinaryF1Score(), "iou": BinaryJaccardIndex()}
    return nn.ModuleDict({
        "scores": MetricCollection(scores, prefix=f"{stage}_"),
        "curve": BinaryPrecisionRecallCurve(thresholds=torch.from_numpy(ODS_THRESHOLDS).float()),
        "tolerant": ToleranceCounts(2),
    })
