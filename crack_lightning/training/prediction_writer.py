"""The CSV writer of Lightning's ``predict`` (several devices, DDP): one row per image, the same file as the torch-free
``predict`` writes (:mod:`crack_lightning.scanning.predictions`)."""

from __future__ import annotations

import csv
import heapq
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info

from crack_lightning.errors import OptionError
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD, decide_labels
from crack_lightning.scanning.predictions import PREDICTIONS_CSV, format_row, header


class CSVPredictionWriter(BasePredictionWriter):
    """Write one CSV row per image: path, label, crack probability, one probability per class, error.

    Args:
        output: CSV file to write; ``null``: ``predictions.csv`` in the run's log directory.
        threshold: Crack probability from which an image is labelled as the crack class.
        overwrite: Replace an existing output file (otherwise an existing file is an error).
    """

    def __init__(
        self, output: str | None = None, threshold: float = DEFAULT_THRESHOLD, overwrite: bool = False
    ) -> None:
        super().__init__(write_interval="batch")
        if not 0.0 <= threshold <= 1.0:
            raise OptionError("threshold", f"{threshold} is not a probability in [0, 1]")
        self.output = output
        self.threshold = threshold
        self.overwrite = overwrite
        self.path: Path | None = None
        self.rows = 0
        self.cracks = 0
        self.errors: list[str] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "predict":
            return
        self.path = Path(self.output) if self.output else Path(trainer.log_dir or ".") / PREDICTIONS_CSV
        if self.path.exists() and not self.overwrite:
            raise OptionError("output", f"{self.path} exists; pass another file, or overwrite it")

    def _part(self, rank: int) -> Path:
        assert self.path is not None
        return self.path.with_name(f"{self.path.name}.rank{rank}.partial")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Each process writes its rows, with their dataset index, to a part file of its own; the output appears
        # only once every image is done, assembled in path order by the first process.
        self._partial = self._part(trainer.global_rank)
        self._file = open(self._partial, "w", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self.rows = 0  # this process's rows; _assemble counts the whole output

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        _, paths, errors = batch
        probabilities = prediction.float().cpu().numpy()
        labels = decide_labels(probabilities, pl_module.class_names, pl_module.crack_index, self.threshold)
        indices = batch_indices if batch_indices is not None else range(self.rows, self.rows + len(paths))
        for index, path, error, label, row in zip(indices, paths, errors, labels, probabilities.tolist()):
            self._csv.writerow([index, *format_row(path, label, row, pl_module.crack_index, error)])
        self.rows += len(paths)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._file.close()
        trainer.strategy.barrier("predictions written")
        if trainer.is_global_zero:
            self._assemble(trainer.world_size, pl_module)
        trainer.strategy.barrier("predictions assembled")

    def _assemble(self, world_size: int, pl_module: L.LightningModule) -> None:
        """Merge the part files by dataset index (each is in index order) into the output; no row twice."""
        assert self.path is not None
        parts = [open(self._part(rank), newline="") for rank in range(world_size)]
        whole = self.path.with_name(self.path.name + ".partial")
        crack_class = pl_module.hparams.crack_class
        try:
            with open(whole, "w", newline="") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(header(pl_module.class_names))
                last, self.rows, self.cracks, self.errors = None, 0, 0, []
                for row in heapq.merge(*(csv.reader(part) for part in parts), key=lambda r: int(r[0])):
                    if row[0] == last:  # a sampler that pads repeats an image
                        continue
                    last = row[0]
                    writer.writerow(row[1:])
                    self.rows += 1
                    if row[-1]:
                        self.errors.append(row[1])
                    self.cracks += row[2] == crack_class
            os.replace(whole, self.path)
        finally:
            for part in parts:
                part.close()
                Path(part.name).unlink(missing_ok=True)
        rank_zero_info(
            f"Predicted {self.rows - len(self.errors)} images: {self.cracks} {crack_class} "
            f"(crack probability >= {self.threshold:g})."
        )
        if self.errors:
            shown = ", ".join(self.errors[:10]) + (
                f" and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
            )
            rank_zero_info(f"{len(self.errors)} files could not be read as images (see the error column): {shown}")
        rank_zero_info(f"Predictions written to {self.path}")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._partial.unlink(missing_ok=True)
