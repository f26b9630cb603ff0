"""A segmenter evaluated through the product: each photo of a folder with true masks scanned by the scan's own task
(:func:`crack_lightning.scanning.tasks.scan_task`, as ``scan`` and ``model.scan(photo)`` run it) and
scored against its mask (:mod:`crack_lightning.evaluation.scores`); the figures of all photos and of the two halves
of their groups, per-photo rows, JSON and a Markdown table."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crack_lightning.errors import CrackLightningError
from crack_lightning.evaluation.masked_photos import halves, masked_photos, read_truth
from crack_lightning.evaluation.patches import failed, patch_shares
from crack_lightning.evaluation.scores import LENGTH_TOLERANCE, TOLERANCE, PhotoScore, score_photo, score_set
from crack_lightning.evaluation.table import patch_table, score_table

if TYPE_CHECKING:
    from crack_lightning.scanning.tasks import CrackTask


@dataclass
class Evaluation:
    """A segmenter's figures on photos with true masks: ``sets`` (``all``, ``half 1``, ``half 2``: the scores of
    :func:`~crack_lightning.evaluation.scores.score_set`), ``photos`` (a :class:`PhotoScore` each), ``patches`` (with
    ``patches=``: crack found in crack and sound patches), ``settings`` (the model and the scan's options)."""

    settings: dict
    photos: list[PhotoScore]
    sets: dict[str, dict]
    patches: dict | None = None
    seconds: float = 0.0  # the photos' scan, measuring included (not the true masks' measuring)
    megapixels: float = 0.0

    def to_dict(self) -> dict:
        return {
            **self.settings,
            "tolerance_px": TOLERANCE,
            "length_tolerance": LENGTH_TOLERANCE,
            "sets": self.sets,
            "patches": self.patches,
            "seconds": self.seconds,
            "megapixels": self.megapixels,
            "photos": [p.to_dict() for p in self.photos],
        }

    def table(self) -> str:
        """The figures as Markdown: a row per set, then the patches."""
        text = score_table(self.sets, self.settings["threshold"], self.settings.get("low_threshold"))
        rate = self.megapixels / self.seconds if self.seconds else 0.0
        text += (
            f"\n\nScanned {len(self.photos)} photos, {self.megapixels:.1f} MP in {self.seconds:.1f} s ({rate:.2f} MP/s, "
            f"measuring included; {self.settings.get('inference', '')})."
        )
        return text + ("\n\n" + patch_table(self.patches) if self.patches else "")

    def __str__(self) -> str:
        return self.table()


def evaluate_task(
    task: CrackTask,
    source: str | os.PathLike,
    patches: str | os.PathLike | None = None,
    split_file: str | os.PathLike | None = None,
    split: str = "val",
    limit: int | None = None,
    progress: bool = False,
) -> Evaluation:
    """Scan the photos of ``source`` (``images/`` and ``masks/``; those of ``split`` in ``split_file``, the first
    ``limit``) with ``task`` and score them; ``patches``: a folder of ``Positive/`` and ``Negative/`` patches too."""
    photos = masked_photos(source, split_file, split, limit)
    by_name = {p.name: p for p in photos}
    scores: list[PhotoScore] = []
    started = time.perf_counter()
    results = task.results((p.name, p.image) for p in photos)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(photos), unit="photo")
    seconds = 0.0
    for result in results:
        seconds += time.perf_counter() - started
        photo = by_name[result.name]
        if result.error:
            raise CrackLightningError(failed(str(photo.image), result.error))
        truth = read_truth(photo, (result.height, result.width))
        scores.append(score_photo(result, truth, task.measuring, photo.group))
        started = time.perf_counter()
    sets = {"all": score_set(scores)}
    for half, groups in halves([s.group for s in scores]).items():
        chosen = [s for s in scores if s.group in groups]
        if chosen:
            sets[half] = score_set(chosen)
    settings = {"data": str(source), **task.settings(), "inference": task.model.describe()}
    if split_file is not None:
        settings.update(split_file=str(split_file), split=split)
    return Evaluation(
        settings,
        scores,
        sets,
        patch_shares(task, patches, limit) if patches is not None else None,
        seconds,
        sum(s.width * s.height for s in scores) / 1e6,
    )
