"""A crack classifier as an exported graph, run by ONNX Runtime or OpenVINO: no torch, torchvision or Lightning.

    from crack_lightning import load_model
    model = load_model()                      # the shipped model; or load_model("run/best.ckpt"), load_model("m.onnx")
    result = model.predict(["a.jpg", "b.jpg"])
    result.labels, result.crack_probability
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import MAX_PIXELS, read_rgb, resize, to_rgb_array
from crack_lightning.runtime.exported import ExportedModel

ImageInput = str | os.PathLike | Image.Image | np.ndarray


def decide_labels(
    probabilities: np.ndarray, class_names: Sequence[str], crack_index: int, threshold: float = 0.5
) -> list[str]:
    """Crack when its probability reaches ``threshold``; otherwise the most probable other class."""
    others = np.array(probabilities, dtype=np.float32, copy=True).reshape(len(probabilities), len(class_names))
    crack = others[:, crack_index] >= threshold
    others[:, crack_index] = -1.0
    best_other = others.argmax(axis=1)
    return [class_names[crack_index] if c else class_names[o] for c, o in zip(crack.tolist(), best_other.tolist())]


@dataclass
class Predictions:
    """One entry per input image, in input order."""

    labels: list[str]
    crack_probability: np.ndarray  # (N,)
    probabilities: np.ndarray  # (N, classes), columns in ``class_names`` order
    class_names: list[str]


def as_rgb(image: ImageInput, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """A path, PIL image or ``uint8`` array ``(H, W, 3)`` as a ``uint8`` RGB array ``(H, W, 3)``."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise CrackLightningError(f"an image array must be uint8 (H, W, 3) RGB, not {image.dtype} {image.shape}")
        return image
    if isinstance(image, Image.Image):
        return to_rgb_array(image)
    return read_rgb(image, max_pixels)


def bounded_map(pool: ThreadPoolExecutor, function, items: Iterable, ahead: int) -> Iterator:
    """``pool.map`` that submits at most ``ahead`` items before their results are taken: bounded memory."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class Classifier(ExportedModel):
    """An exported crack classifier (see :class:`~crack_lightning.runtime.exported.ExportedModel` for the options)."""

    def __init__(self, graph: bytes, source: str = "", **options) -> None:
        super().__init__(graph, source, **options)
        meta = self.metadata
        if meta.get("task", "classification") != "classification" or "class_names" not in meta:
            raise CrackLightningError(f"{source}: not a crack_lightning classifier graph (no class_names in its metadata)")
        self.class_names: list[str] = json.loads(meta["class_names"])
        self.crack_class: str = meta["crack_class"]
        self.crack_index = self.class_names.index(self.crack_class)
        self.image_size = int(meta["image_size"])

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of a ``uint8`` batch ``(N, 3, S, S)`` at the model's size."""
        if self.tta == "hflip":
            return self.run_both(batch).reshape(2, len(batch), -1).mean(axis=0)
        if self.tta == "flips":
            mirrored = [batch, batch[..., ::-1], batch[..., ::-1, :], batch[..., ::-1, ::-1]]
            return self.session()(np.ascontiguousarray(np.concatenate(mirrored))).reshape(4, len(batch), -1).mean(axis=0)
        return self.session()(np.ascontiguousarray(batch))

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

    def predict(self, images: Iterable[ImageInput], batch_size: int = 32, threshold: float = 0.5) -> Predictions:
        """Classify image paths, PIL images or ``uint8`` RGB arrays ``(H, W, 3)``; an unreadable file is an error."""
        rows = []
        for _, probabilities, errors in self.predict_batches(images, batch_size):
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
