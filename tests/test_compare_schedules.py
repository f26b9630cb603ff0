"""bench/compare_schedules.py's folds and statistics (the fits themselves are the CLI's, tested elsewhere)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "compare_schedules.py"
spec = importlib.util.spec_from_file_location("compare_schedules", SCRIPT)
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def samples(photos: int = 13, tiles: int = 3) -> list[tuple[str, int]]:
    return [
        (f"{'Positive' if p % 3 else 'Negative'}/photo{p}_tile{t}.jpg", int(p % 3 > 0))
        for p in range(photos)
        for t in range(tiles)
    ]


def test_stratified_folds_test_every_image_once_with_both_classes_in_each():
    data = samples()
    folds = compare.folds_of(data, 5, seed=1, group_pattern=None)
    assert sorted(s for f in folds for s in f) == sorted(data)
    for fold in folds:  # class counts differ by at most one between folds
        assert {y for _, y in fold} == {0, 1}
    for label in (0, 1):
        counts = [sum(y == label for _, y in f) for f in folds]
        assert max(counts) - min(counts) <= 1
    assert folds == compare.folds_of(data, 5, seed=1, group_pattern=None)  # seeded
    assert folds != compare.folds_of(data, 5, seed=2, group_pattern=None)


def test_grouped_folds_keep_each_photo_in_one_fold():
    data = samples()
    folds = compare.folds_of(data, 4, seed=0, group_pattern=r"photo\d+")
    assert sorted(s for f in folds for s in f) == sorted(data)
    where = {}
    for k, fold in enumerate(folds):
        for path, _ in fold:
            where.setdefault(path.split("/")[1].split("_")[0], set()).add(k)
    assert all(len(ks) == 1 for ks in where.values()) and len(where) == 13


def test_statistics():
    low, high = compare.wilson(996, 1000)
    assert low < 0.996 < high and high < 1 and math.isclose(low, 0.98977, abs_tol=1e-4)
    assert compare.mcnemar(1, 5) == pytest.approx(0.21875)  # 2 * P(X <= 1), X ~ Binomial(6, 1/2) = 2 * 7/64
    assert compare.mcnemar(0, 0) == 1.0
    images = [{"crack": True, "p": 0.9}, {"crack": False, "p": 0.2}, {"crack": True, "p": 0.0}]
    assert compare.log_loss(images) == pytest.approx((-math.log(0.9) - math.log(0.8) - math.log(1e-6)) / 3)
