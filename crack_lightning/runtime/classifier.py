"""A crack classifier as an exported graph, run by ONNX Runtime or OpenVINO: no torch, torchvision or Lightning.

    from crack_lightning import load_model
    model = load_model("concrete-v1")         # the shipped classifier; or load_model("run/best.ckpt"), ("m.onnx")
    result = model.predict(["a.jpg", "b.jpg"])  # or one path, a folder, a PIL image, an array
    result.labels, result.crack_probability

The predictor only: :mod:`crack_lightning.scanning.models` adds ``scan`` (photos cut into tiles), which
:func:`crack_lightning.load_model`'s models have.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import MAX_PIXELS, ImageInput, as_rgb, find_images, read_rgb, resize
from crack_lightning.io.threads import bounded_map
from crack_lightning.runtime.exported import ExportedModel, mirrored_mean
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD, check_threshold, decide_labels
from crack_lightning.tasks.classification import CLASSIFICATION

Images = ImageInput | Iterable[ImageInput]  # one image, a folder or .txt list of them, or several


@dataclass
class Predictions:
    """One entry per input image, in input order."""

    labels: list[str]
    crack_probability: np.ndarray  # (N,)
    probabilities: np.ndarray  # (N, classes), columns in ``class_names`` order
    class_names: list[str]


def image_list(images: Images, option: str = "images") -> list[ImageInput]:
    """``images`` as a list: a folder (searched recursively) or ``.txt`` list its image paths, one path, PIL image or
    array a list of one."""
    if isinstance(images, (str, os.PathLike)):
        path = Path(images).expanduser()
        return list(find_images(path, option)) if path.is_dir() or path.suffix.lower() == ".txt" else [path]
    if isinstance(images, (Image.Image, np.ndarray)):
        return [images]
    return list(images)


class Classifier(ExportedModel):
    """An exported crack classifier (see :class:`~crack_lightning.runtime.exported.ExportedModel` for the options)."""

    def __init__(self, graph: bytes, source: str = "", **options) -> None:
        super().__init__(graph, source, **options)
        meta = self.metadata
        if meta.get("task", self.task) != self.task or "class_names" not in meta:
            raise CrackLightningError(
                f"{source}: not a crack_lightning classifier graph (no class_names in its metadata)"
            )
        self.class_names: list[str] = json.loads(meta["class_names"])
        self.crack_class: str = meta["crack_class"]
        self.crack_index = self.class_names.index(self.crack_class)
        self.image_size = int(meta["image_size"])

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of a ``uint8`` batch ``(N, 3, S, S)`` at the model's size."""
        return mirrored_mean(self.session(), batch, self.tta)

    def prepare(self, image: ImageInput, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
        """An image as the network takes it: ``uint8`` ``(3, S, S)``, resized to the model's size."""
        if isinstance(image, (str, os.PathLike)):  # one decode, resized in PIL: a quarter less CPU than via an array
            return read_rgb(image, max_pixels, self.image_size).transpose(2, 0, 1)
        return resize(as_rgb(image, max_pixels), self.image_size).transpose(2, 0, 1)

    def predict_batches(
        self, images: Iterable[ImageInput], batch_size: int = 32, max_pixels: int | None = MAX_PIXELS, workers: int = 2
    ) -> Iterator[tuple[list[int], np.ndarray, dict[int, str]]]:
        """``(indices, probabilities, errors)`` per batch; images decode in ``workers`` threads while the network
        runs (PIL and the runtimes release the GIL). An unreadable image is left out of its batch with its error."""

        def load(image: ImageInput) -> np.ndarray | str:
            try:
                return self.prepare(image, max_pixels)
            except CrackLightningError as err:
                return str(err)

        with ThreadPoolExecutor(max(1, workers)) as pool:
            indices, batch, errors = [], [], {}
            for index, item in enumerate(bounded_map(pool, load, images, 2 * batch_size)):
                if isinstance(item, str):
                    errors[index] = item
                else:
                    indices.append(index)
                    batch.append(item)
                if len(batch) == batch_size:
                    yield indices, self.probabilities(np.stack(batch)), errors
                    indices, batch, errors = [], [], {}
            if batch or errors:
                probabilities = self.probabilities(np.stack(batch)) if batch else np.empty((0, len(self.class_names)))
                yield indices, probabilities, errors

    task = CLASSIFICATION.name

    def predict(self, images: Images, batch_size: int = 32, threshold: float = DEFAULT_THRESHOLD) -> Predictions:
        """Classify patches: an image path, a folder or ``.txt`` list of them, a PIL image, a ``uint8`` RGB array
        ``(H, W, 3)``, or a list of these; an unreadable file is an error."""
        check_threshold(threshold)
        rows = []
        for _, probabilities, errors in self.predict_batches(image_list(images), batch_size):
            if errors:
                raise CrackLightningError(next(iter(errors.values())))
            rows.append(probabilities)
        probabilities = np.concatenate(rows) if rows else np.empty((0, len(self.class_names)), np.float32)
        return Predictions(
            labels=decide_labels(probabilities, self.class_names, self.crack_index, threshold),
            crack_probability=probabilities[:, self.crack_index],
            probabilities=probabilities,
            class_names=self.class_names,
        )
