"""A classifier's scan: cut whole photos into tiles, classify every tile, and map where the cracks are (a
:class:`~crack_lightning.results.maps.TileMap` per photo). NumPy and PIL only; the model is any classifier with
``probabilities``, ``image_size``, ``class_names`` and ``crack_index`` (:class:`crack_lightning.runtime.classifier.Classifier`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import MAX_PIXELS, ImageInput, as_rgb, resize
from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.io.threads import bounded_map
from crack_lightning.io.tiff_windows import Orthomosaic, windowed_tiff
from crack_lightning.results.maps import TileMap
from crack_lightning.results.tiling import Box, context_window, tile_boxes
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD, NO_DATA, decide_labels
from crack_lightning.scanning.options import DEFAULT_BATCH, DEFAULT_CONTEXT, TileOptions
from crack_lightning.scanning.scan_windows import scan_tiff

if TYPE_CHECKING:
    from crack_lightning.runtime.classifier import Classifier

PRECUT_TILES = (
    512  # with workers, a photo of at most this many tiles is cut in its decoding thread (<= 80 MB at 227 px)
)


def scan_photos(
    classifier: Classifier,
    photos: Iterable[tuple[str, ImageInput]],
    tile: int,
    stride: int,
    batch_size: int = DEFAULT_BATCH,
    keep_images: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    context: float = DEFAULT_CONTEXT,
    threshold: float = DEFAULT_THRESHOLD,
    workers: int = 0,
    preview_side: int = MAX_SIDE,
) -> Iterator[TileMap]:
    """Classify every tile of each ``(name, photo)``; yields each photo's :class:`TileMap` in input order.

    With ``context`` > 0 the network sees each tile with ``context * tile`` pixels of the photo around it (a crack
    along a tile's edge is then inside what it sees); the probability is the tile's. Each window is resized to the
    classifier's input size (:func:`crack_lightning.io.images.resize`) and handed over as ``uint8``, as ``predict`` does.

    Batches run across photo boundaries, so small photos do not waste batch slots; only the photos with tiles in
    flight are held. An unreadable photo is yielded with its ``error`` and no tiles. Tiles are labelled crack from
    ``threshold``. A tiled or very large TIFF (an orthomosaic) is read a band at a time
    (:mod:`crack_lightning.scanning.scan_windows`); its ``image`` is then a copy at most ``preview_side`` long.

    ``workers`` > 0: photos decode ``workers`` ahead in threads and each batch's windows are resized in ``workers``
    threads (PIL releases the GIL), so that a fast network (a GPU) is not left waiting for one core; the same
    answers, more memory (up to ``workers`` decoded photos ahead).
    """
    TileOptions(tile, stride, context, threshold, batch_size)  # the checks, with the errors naming the option
    margin = round(context * tile)
    size, classes = classifier.image_size, len(classifier.class_names)
    in_flight: deque[TileMap] = deque()
    pending: list[tuple[TileMap, int, np.ndarray]] = []  # (photo, first tile, uint8 windows (n, 3, S, S))
    pending_tiles = 0

    def classify() -> None:
        nonlocal pending_tiles
        if not pending:
            return
        probabilities = classifier.probabilities(np.concatenate([windows for _, _, windows in pending]))
        offset = 0
        for scan, start, windows in pending:
            scan.probabilities[start : start + len(windows)] = probabilities[offset : offset + len(windows)]
            scan.classified += len(windows)
            offset += len(windows)
        pending.clear()
        pending_tiles = 0

    def finished() -> Iterator[TileMap]:
        while in_flight and in_flight[0].complete:
            scan = in_flight.popleft()
            if not scan.error:
                scan.labels = decide_labels(
                    scan.probabilities, classifier.class_names, classifier.crack_index, threshold
                )
                if scan.no_data is not None:
                    scan.labels = [
                        NO_DATA if empty else label for label, empty in zip(scan.labels, scan.no_data.tolist())
                    ]
            yield scan

    def cut(image: np.ndarray, boxes: list[Box]) -> np.ndarray:
        height, width = image.shape[:2]
        windows = [context_window(box, margin, width, height) for box in boxes]
        return np.stack([resize(image[y : y + h, x : x + w], size) for x, y, w, h in windows])

    def load(item: tuple[str, ImageInput]) -> tuple[str, np.ndarray | str | Orthomosaic, np.ndarray | None]:
        """The photo decoded, and in a worker thread its windows resized too where they are few (bounded memory)."""
        name, photo = item
        if isinstance(photo, (str, os.PathLike)) and windowed_tiff(photo):
            return name, Orthomosaic(photo), None  # read a band at a time below, never decoded whole
        try:
            image = as_rgb(photo, max_pixels)
        except CrackLightningError as err:
            return name, str(err), None
        boxes = tile_boxes(image.shape[1], image.shape[0], tile, stride) if workers > 0 else []
        return name, image, cut(image, boxes) if 0 < len(boxes) <= PRECUT_TILES else None

    with ExitStack() as stack:
        decoding = cutting = None
        if workers > 0:  # two pools: windows to resize must not queue behind photos still to decode
            decoding = stack.enter_context(ThreadPoolExecutor(workers))
            cutting = stack.enter_context(ThreadPoolExecutor(workers))
        loaded = map(load, photos) if decoding is None else bounded_map(decoding, load, photos, workers)
        for name, image, precut in loaded:
            scan = TileMap(name, class_names=classifier.class_names, crack_index=classifier.crack_index)
            in_flight.append(scan)
            if isinstance(image, Orthomosaic):
                classify()  # the photos before it finish first, in order
                try:
                    scan_tiff(
                        classifier,
                        scan,
                        image.path,
                        tile,
                        stride,
                        margin,
                        batch_size,
                        max_pixels,
                        preview_side if keep_images else None,
                    )
                except CrackLightningError as err:
                    scan.error, scan.boxes, scan.classified, scan.image = str(err), [], 0, None
                yield from finished()
                continue
            if isinstance(image, str):
                scan.error = image
                yield from finished()
                continue
            scan.height, scan.width = image.shape[:2]
            scan.boxes = tile_boxes(scan.width, scan.height, tile, stride)
            scan.probabilities = np.empty((len(scan.boxes), classes), np.float32)
            scan.image = image if keep_images else None
            start = 0
            while start < len(scan.boxes):
                chunk = scan.boxes[start : start + batch_size - pending_tiles]
                if precut is not None:
                    crops = precut[start : start + len(chunk)]
                elif cutting is None or len(chunk) < 2 * workers:
                    crops = cut(image, chunk)
                else:
                    parts = [chunk[i::workers] for i in range(workers)]  # interleaved: put back in order below
                    done = list(cutting.map(partial(cut, image), parts))
                    crops = np.empty((len(chunk), *done[0].shape[1:]), np.uint8)
                    for i, part in enumerate(done):
                        crops[i::workers] = part
                pending.append((scan, start, crops.transpose(0, 3, 1, 2)))
                pending_tiles += len(chunk)
                start += len(chunk)
                if pending_tiles >= batch_size:
                    classify()
                    yield from finished()
            del image, precut
    classify()
    yield from finished()


def scan_photo(
    classifier: Classifier,
    photo: ImageInput,
    tile: int,
    stride: int,
    batch_size: int = DEFAULT_BATCH,
    context: float = DEFAULT_CONTEXT,
    max_pixels: int | None = MAX_PIXELS,
) -> tuple[list[Box], np.ndarray, np.ndarray]:
    """Scan one photo (path, PIL image or ``uint8`` RGB array ``(H, W, 3)``).

    Returns the tile boxes ``(x, y, width, height)``, their crack probabilities ``(tiles,)`` and the per-pixel crack
    probability map ``(height, width)``.
    """
    (scan,) = scan_photos(
        classifier,
        [("photo", photo)],
        tile,
        stride,
        batch_size,
        keep_images=False,
        max_pixels=max_pixels,
        context=context,
    )
    if scan.error:
        raise CrackLightningError(scan.error)
    return scan.boxes, scan.crack_probability, scan.probability_map()
