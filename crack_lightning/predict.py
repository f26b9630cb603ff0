"""Predict: classify images with a trained checkpoint, from Python or into a CSV file from the CLI."""

from __future__ import annotations

import csv
import heapq
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image
from torchvision.transforms import v2

from crack_lightning.data import MAX_PIXELS, predict_transform, read_rgb
from crack_lightning.errors import CrackLightningError
from crack_lightning.model import CrackClassifier

PREDICTIONS_CSV = "predictions.csv"


def decide_labels(
    probabilities: torch.Tensor, class_names: Sequence[str], crack_index: int, threshold: float = 0.5
) -> list[str]:
    """Crack when its probability reaches ``threshold``; otherwise the most probable other class."""
    others = probabilities.clone()
    others[:, crack_index] = -1.0
    best_other = others.argmax(dim=1)
    crack = probabilities[:, crack_index] >= threshold
    return [class_names[crack_index] if c else class_names[o] for c, o in zip(crack.tolist(), best_other.tolist())]


@dataclass
class Predictions:
    """What :func:`predict_images` returns, one entry per input image, in input order."""

    labels: list[str]
    crack_probability: torch.Tensor  # (N,)
    probabilities: torch.Tensor  # (N, classes), columns in ``class_names`` order
    class_names: list[str]


ImageInput = str | os.PathLike | Image.Image | torch.Tensor


def to_rgb_tensor(image: ImageInput, max_pixels: int | None = MAX_PIXELS) -> torch.Tensor:
    """A path, PIL image or RGB tensor (``uint8``, or float in [0, 1]) as a ``uint8`` RGB tensor ``(3, H, W)``."""
    if isinstance(image, torch.Tensor):
        return v2.functional.to_dtype(image, torch.uint8, scale=True)
    if isinstance(image, Image.Image):
        return v2.functional.pil_to_tensor(image.convert("RGB"))
    return read_rgb(image, max_pixels)


@torch.no_grad()
def predict_images(
    model: CrackClassifier,
    images: Iterable[ImageInput],
    batch_size: int = 32,
    threshold: float = 0.5,
    backend: str | None = None,
) -> Predictions:
    """Classify image paths, PIL images or ``uint8`` RGB tensors ``(3, H, W)`` with a loaded model, in batches.

    The model's own image size and normalisation (from its checkpoint) are applied; it runs on the
    device the model is on, in eval mode, by ``backend`` (``auto``, ``torch``, ``onnxruntime``, ``openvino``; default:
    the model's ``inference_backend``).
    """
    if model.preprocessing is None:
        raise CrackLightningError("the model has no preprocessing: load it from a checkpoint of a fit run")
    transform = predict_transform(model.preprocessing[0])
    network = model.inference_network(backend, takes_uint8=True)
    batches, batch = [], []

    def flush() -> None:
        batches.append(network(torch.stack(batch)).cpu())
        batch.clear()

    for image in images:
        batch.append(transform(to_rgb_tensor(image)))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    probabilities = torch.cat(batches) if batches else torch.empty(0, len(model.class_names))
    return Predictions(
        labels=decide_labels(probabilities, model.class_names, model.crack_index, threshold),
        crack_probability=probabilities[:, model.crack_index],
        probabilities=probabilities,
        class_names=model.class_names,
    )


class CSVPredictionWriter(BasePredictionWriter):
    """Write one CSV row per image: path, label, crack probability, one probability per class, error.

    Args:
        output: CSV file to write; ``null``: ``predictions.csv`` in the run's log directory.
        threshold: Crack probability from which an image is labelled as the crack class.
        overwrite: Replace an existing output file (otherwise an existing file is an error).
    """

    def __init__(self, output: str | None = None, threshold: float = 0.5, overwrite: bool = False) -> None:
        super().__init__(write_interval="batch")
        if not 0.0 <= threshold <= 1.0:
            raise CrackLightningError(f"--threshold: {threshold} is not a probability in [0, 1]")
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
            raise CrackLightningError(f"--output: {self.path} exists; pass another --output or --overwrite true")

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
        probabilities = prediction.float().cpu()
        labels = decide_labels(probabilities, pl_module.class_names, pl_module.crack_index, self.threshold)
        indices = batch_indices if batch_indices is not None else range(self.rows, self.rows + len(paths))
        for index, path, error, label, row in zip(indices, paths, errors, labels, probabilities.tolist()):
            if error:
                self._csv.writerow([index, path, "", "", *([""] * len(row)), error])
            else:
                self._csv.writerow([index, path, label, f"{row[pl_module.crack_index]:.6f}", *(f"{p:.6f}" for p in row), ""])
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
                writer.writerow(["path", "label", "crack_probability", *(f"probability_{c}" for c in pl_module.class_names), "error"])
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
            shown = ", ".join(self.errors[:10]) + (f" and {len(self.errors) - 10} more" if len(self.errors) > 10 else "")
            rank_zero_info(f"{len(self.errors)} files could not be read as images (see the error column): {shown}")
        rank_zero_info(f"Predictions written to {self.path}")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._partial.unlink(missing_ok=True)
