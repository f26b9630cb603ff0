"""A label for each image or tile from its class probabilities, the same in predict, scan and Lightning's predict."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crack_lightning.errors import OptionError

DEFAULT_THRESHOLD = 0.5  # a crack from this probability: predict, a classifier's scan, Lightning's predict
NO_DATA = "no data"  # tiles.csv's label of a tile in an orthomosaic's empty area (alpha 0, no-data value)


def check_threshold(threshold: float) -> float:
    """``threshold``, or an error naming it when it is no probability."""
    if not 0.0 <= threshold <= 1.0:
        raise OptionError("threshold", f"{threshold} is not a probability in [0, 1]")
    return threshold


def decide_labels(
    probabilities: np.ndarray, class_names: Sequence[str], crack_index: int, threshold: float = DEFAULT_THRESHOLD
) -> list[str]:
    """Crack when its probability reaches ``threshold``; otherwise the most probable other class."""
    others = np.array(probabilities, dtype=np.float32, copy=True).reshape(len(probabilities), len(class_names))
    crack = others[:, crack_index] >= threshold
    others[:, crack_index] = -1.0
    best_other = others.argmax(axis=1)
    return [class_names[crack_index] if c else class_names[o] for c, o in zip(crack.tolist(), best_other.tolist())]
