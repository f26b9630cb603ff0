"""The models :func:`crack_lightning.load_model` gives: a runtime's predictor (:mod:`crack_lightning.runtime`) that
also scans photos. The runtime knows nothing of scans; here each model finds its scan by its ``task``
(:func:`crack_lightning.scanning.tasks.scan_task`; these classes are the ``predictor`` of the tasks
:mod:`crack_lightning.tasks` registers), imported on first use (SciPy and scikit-image, which predict
never needs).

    model = crack_lightning.load_model()
    result = model.scan("photo.jpg")      # a CrackMap (segmenter) or a TileMap (classifier): summary, plot(), save()
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import ImageInput
from crack_lightning.runtime import classifier, segmenter
from crack_lightning.runtime.classifier import Images, image_list
from crack_lightning.runtime.onnx_file import read_metadata
from crack_lightning.tasks.registry import task_named

if TYPE_CHECKING:
    from crack_lightning.results.maps import CrackMap, PhotoResult
    from crack_lightning.scanning.tasks import ScanTask


class Scans:
    """``scan_task`` and ``scan`` for a runtime model (mixed in before it)."""

    def scan_task(self, **options: Any) -> ScanTask:
        """How :meth:`scan` and :func:`crack_lightning.scan` scan photos with this model: options as
        :func:`~crack_lightning.scanning.tasks.scan_task` takes them."""
        from crack_lightning.scanning.tasks import scan_task

        return scan_task(self, **options)

    def scan(self, photo: ImageInput, **options: Any) -> PhotoResult:
        """Scan one photo (path, PIL image or ``uint8`` ``(H, W, 3)`` array): a classifier's
        :class:`~crack_lightning.results.maps.TileMap`, a segmenter's :class:`~crack_lightning.results.maps.CrackMap`
        (its cracks measured); ``options`` as :meth:`scan_task`'s."""
        name = str(photo) if isinstance(photo, (str, os.PathLike)) else "photo"
        (result,) = self.scan_task(**options).results([(name, photo)])
        if result.error:
            raise CrackLightningError(result.error)
        return result


class Classifier(Scans, classifier.Classifier):
    """A crack classifier that predicts patches and scans photos into tile maps."""


class Segmenter(Scans, segmenter.Segmenter):
    """A crack segmenter that scans photos into crack masks, its cracks measured."""

    def predict(self, images: Images, **options: Any) -> list[CrackMap]:
        """:meth:`scan` of each image (a path, a folder or ``.txt`` list of them, a PIL image, an array, or a list of
        these), as the classifier's ``predict`` takes them; an unreadable file is an error."""
        return [self.scan(image, **options) for image in image_list(images)]


def model_from_graph(graph: bytes, source: str, **options: Any) -> Any:
    """The model that runs ``graph``: the ``predictor`` of the task its metadata names (:mod:`crack_lightning.tasks`;
    a classifier without one, which checks the graph is one)."""
    return task_named(read_metadata(graph).get("task"), source).part("predictor")(graph, source, **options)
