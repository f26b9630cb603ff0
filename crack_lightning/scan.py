"""Scan: cut whole photos into tiles, classify every tile, and map where the cracks are."""

from __future__ import annotations

import csv
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.transforms import v2

from crack_lightning.data import MAX_PIXELS, find_images, predict_transform
from crack_lightning.errors import CrackLightningError
from crack_lightning.model import CrackClassifier
from crack_lightning.predict import ImageInput, decide_labels, to_rgb_tensor

TILES_CSV = "tiles.csv"
PHOTOS_CSV = "photos.csv"
OVERLAYS = "overlays"
MASKS = "masks"
TILE_COLUMNS = ["photo", "x", "y", "width", "height", "crack_probability", "label"]
PHOTO_COLUMNS = ["photo", "width", "height", "tiles", "crack_tiles", "max_crack_probability", "label", "error"]
COLORMAP = "turbo"
# Chosen with bench/scan_quality.py on 300 real crack photos (README, "How well it finds cracks").
DEFAULT_TILE = 128  # photo pixels
DEFAULT_CONTEXT = 0.125  # share of the tile side seen around it on each side: a crack along an edge is seen whole
Box = tuple[int, int, int, int]  # x, y, width, height in the photo's pixels


def tile_positions(length: int, tile: int, stride: int) -> list[int]:
    """Start of each tile along one side: every ``stride`` pixels, the last one shifted in to end at the edge."""
    if length <= tile:
        return [0]
    positions = list(range(0, length - tile + 1, stride))
    if positions[-1] + tile < length:
        positions.append(length - tile)
    return positions


def tile_boxes(width: int, height: int, tile: int, stride: int) -> list[Box]:
    """Tiles covering the whole photo, row by row; a side shorter than ``tile`` is covered by one tile as long as it."""
    w, h = min(tile, width), min(tile, height)
    return [(x, y, w, h) for y in tile_positions(height, tile, stride) for x in tile_positions(width, tile, stride)]


def context_window(box: Box, margin: int, width: int, height: int) -> Box:
    """The tile grown by ``margin`` pixels on every side, shifted (not cut) to stay inside the photo."""
    x, y, w, h = box
    w2, h2 = min(w + 2 * margin, width), min(h + 2 * margin, height)
    x2 = min(max(0, x - margin), width - w2)
    y2 = min(max(0, y - margin), height - h2)
    return x2, y2, w2, h2


def probability_rows(
    boxes: Sequence[Box],
    crack_probability: torch.Tensor,
    width: int,
    height: int,
    size: tuple[int, int] | None = None,
    block: int = 256,
) -> Iterator[torch.Tensor]:
    """The per-pixel crack probability map in blocks of rows: the mean over the tiles covering each pixel.

    The tiles form a grid, so the mean separates into a row and a column average: two small matrices
    and one product per block, with no per-pixel count buffer. ``size`` ``(height, width)`` samples the
    map at another resolution (pixel centres scaled), for an overlay of a huge photo.
    """
    xs = sorted({b[0] for b in boxes})
    ys = sorted({b[1] for b in boxes})
    w, h = boxes[0][2], boxes[0][3]
    grid = torch.zeros(len(ys), len(xs))
    column, row = {x: i for i, x in enumerate(xs)}, {y: j for j, y in enumerate(ys)}
    for (x, y, _, _), p in zip(boxes, crack_probability.tolist()):
        grid[row[y], column[x]] = p
    out_height, out_width = size or (height, width)

    def coverage(starts: list[int], tile: int, length: int, samples: int) -> torch.Tensor:
        # Where each output pixel's centre falls in the photo, then which tiles cover it, as row weights.
        pixels = ((torch.arange(samples) + 0.5) * (length / samples)).floor().clamp(max=length - 1)[:, None]
        starts_t = torch.tensor(starts)[None, :]
        covered = ((pixels >= starts_t) & (pixels < starts_t + tile)).float()
        return covered / covered.sum(dim=1, keepdim=True)

    right = grid @ coverage(xs, w, width, out_width).T  # (rows of tiles, out_width)
    rows = coverage(ys, h, height, out_height)
    for start in range(0, out_height, block):
        yield rows[start : start + block] @ right


def probability_map(
    boxes: Sequence[Box], crack_probability: torch.Tensor, width: int, height: int, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Per-pixel crack probability ``(height, width)`` (or ``size``): the mean over the tiles covering each pixel."""
    return torch.cat(list(probability_rows(boxes, crack_probability, width, height, size)))


@dataclass
class PhotoScan:
    """One photo's scan: its tiles with their crack probabilities, or the error that stopped it."""

    name: str
    width: int = 0
    height: int = 0
    boxes: list[Box] = field(default_factory=list)
    probabilities: torch.Tensor = field(default_factory=lambda: torch.empty(0, 0))  # (tiles, classes)
    crack_index: int = 0
    image: torch.Tensor | None = None  # uint8 (3, H, W), kept for the overlay
    error: str = ""
    _done: int = 0

    @property
    def complete(self) -> bool:
        return self._done == len(self.boxes)

    @property
    def crack_probability(self) -> torch.Tensor:
        """Crack probability of each tile ``(tiles,)``."""
        return self.probabilities[:, self.crack_index]

    def probability_map(self) -> torch.Tensor:
        """Per-pixel crack probability ``(height, width)``, overlapping tiles averaged."""
        return probability_map(self.boxes, self.crack_probability, self.width, self.height)


def scan_photos(
    model: CrackClassifier,
    photos: Iterable[tuple[str, ImageInput]],
    tile: int,
    stride: int,
    batch_size: int = 32,
    precision: str = "32",
    keep_images: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    context: float = DEFAULT_CONTEXT,
    backend: str | None = None,
) -> Iterator[PhotoScan]:
    """Classify every tile of each ``(name, photo)``; yields each photo's :class:`PhotoScan` in input order.

    With ``context`` > 0 the network sees each tile with ``context * tile`` pixels of the photo around it
    (a crack along a tile's edge is then inside what it sees); the probability is the tile's.

    Tiles are cut as views of the decoded photo and classified in batches that run across photo
    boundaries, so small photos do not waste batch slots; only the photos with tiles in flight are held.
    An unreadable photo is yielded with its ``error`` and no tiles.
    """
    if context < 0:
        raise CrackLightningError(f"--context: {context}; pass 0 (the tile alone) or a positive share of the tile")
    margin = round(context * tile)
    if tile < 1 or stride < 1:
        raise CrackLightningError(f"--tile and --stride must be positive pixel counts (got {tile} and {stride})")
    if model.preprocessing is None:
        raise CrackLightningError("the model has no preprocessing: load it from a checkpoint of a fit run")
    resize = predict_transform(model.preprocessing[0])  # uint8 tiles at the model's size; the network normalises
    crack_index = model.crack_index
    device = model.device
    network = model.inference_network(backend, precision, takes_uint8=True)
    in_flight: deque[PhotoScan] = deque()
    pending: list[tuple[PhotoScan, int, torch.Tensor]] = []
    pending_tiles = 0

    def classify() -> None:
        nonlocal pending_tiles
        if not pending:
            return
        batch = torch.cat([t for _, _, t in pending]).to(device)
        probabilities = network(batch).cpu()
        offset = 0
        for scan, start, tiles in pending:
            scan.probabilities[start : start + len(tiles)] = probabilities[offset : offset + len(tiles)]
            scan._done += len(tiles)
            offset += len(tiles)
        pending.clear()
        pending_tiles = 0

    def finished() -> Iterator[PhotoScan]:
        while in_flight and in_flight[0].complete:
            yield in_flight.popleft()

    for name, photo in photos:
        scan = PhotoScan(name, crack_index=crack_index)
        in_flight.append(scan)
        try:
            image = to_rgb_tensor(photo, max_pixels)
        except CrackLightningError as err:
            scan.error = str(err)
            yield from finished()
            continue
        scan.height, scan.width = image.shape[1:]
        scan.boxes = tile_boxes(scan.width, scan.height, tile, stride)
        scan.probabilities = torch.empty(len(scan.boxes), len(model.class_names))
        scan.image = image if keep_images else None
        start = 0
        while start < len(scan.boxes):
            chunk = scan.boxes[start : start + batch_size - pending_tiles]
            windows = [context_window(box, margin, scan.width, scan.height) for box in chunk]
            crops = torch.stack([image[:, y : y + h, x : x + w] for x, y, w, h in windows])
            pending.append((scan, start, resize(crops)))
            pending_tiles += len(chunk)
            start += len(chunk)
            if pending_tiles >= batch_size:
                classify()
                yield from finished()
        del image
    classify()
    yield from finished()


def scan_photo(
    model: CrackClassifier,
    photo: ImageInput,
    tile: int,
    stride: int,
    batch_size: int = 32,
    precision: str = "32",
    context: float = DEFAULT_CONTEXT,
    backend: str | None = None,
) -> tuple[list[Box], torch.Tensor, torch.Tensor]:
    """Scan one photo (path, PIL image or ``uint8`` RGB tensor).

    Returns the tile boxes ``(x, y, width, height)``, their crack probabilities ``(tiles,)`` and the
    per-pixel crack probability map ``(height, width)``.
    """
    (scan,) = scan_photos(
        model, [("photo", photo)], tile, stride, batch_size, precision, keep_images=False, context=context, backend=backend
    )
    if scan.error:
        raise CrackLightningError(scan.error)
    return scan.boxes, scan.crack_probability, scan.probability_map()


# -- pictures ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _colormap() -> torch.Tensor:
    import matplotlib

    return torch.tensor(matplotlib.colormaps[COLORMAP](torch.linspace(0, 1, 256).numpy())[:, :3] * 255).to(torch.uint8)


def overlay(scan: PhotoScan, max_side: int = 4096) -> Image.Image:
    """The photo with the crack probability blended over it and a colour bar.

    Colour follows the probability and so does opacity (up to 60%), so sound concrete stays visible
    and cracks stand out. Photos longer than ``max_side`` pixels are drawn at that length. Built a
    block of rows at a time, so a huge photo costs little more than the picture itself.
    """
    image = scan.image
    height, width = image.shape[1:]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    if scale < 1.0:
        image = v2.functional.resize(image, list(size), antialias=True)
    lut = _colormap()
    blended = torch.empty(size[0], size[1], 3, dtype=torch.uint8)
    start = 0
    for crack in probability_rows(scan.boxes, scan.crack_probability, scan.width, scan.height, size):
        crack = crack.clamp(0, 1)
        stop = start + len(crack)
        colours = lut[(crack * 255).round().long()].float()  # (rows, w, 3)
        alpha = (crack * 0.6)[..., None]
        photo = image[:, start:stop].permute(1, 2, 0).float()
        blended[start:stop] = (photo * (1 - alpha) + colours * alpha).round().to(torch.uint8)
        start = stop
    del image
    picture = Image.fromarray(blended.numpy())
    del blended
    _draw_colour_bar(picture)
    return picture


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _draw_colour_bar(picture: Image.Image) -> None:
    width, height = picture.size
    unit = max(8, min(width, height) // 24)
    bar_w, bar_h = unit, max(unit * 3, height // 3)
    font = _font(max(8, unit * 3 // 4))
    labels = ("1.0", "0.5", "0.0")
    text_w = max(font.getbbox(t)[2] for t in labels + ("crack",))
    box_w, box_h = bar_w + text_w + unit * 3 // 2, bar_h + unit * 2
    if box_w + 4 > width or box_h + 4 > height:
        return  # too small a photo for a legible bar
    left, top = width - box_w - unit // 2, unit // 2
    draw = ImageDraw.Draw(picture)
    draw.rectangle([left, top, left + box_w, top + box_h], fill=(255, 255, 255))
    draw.text((left + unit // 2, top + unit // 4), "crack", fill=(0, 0, 0), font=font)
    lut = _colormap()
    bar_top, bar_left = top + unit + unit // 4, left + unit // 2
    for i in range(bar_h):
        colour = tuple(lut[round(255 * (1 - i / max(1, bar_h - 1)))].tolist())
        draw.line([bar_left, bar_top + i, bar_left + bar_w, bar_top + i], fill=colour)
    for label, fraction in zip(labels, (0.0, 0.5, 1.0)):
        y = bar_top + fraction * (bar_h - 1)
        text_h = font.getbbox(label)[3]
        draw.text((bar_left + bar_w + unit // 4, y - text_h / 2), label, fill=(0, 0, 0), font=font)


def mask_image(scan: PhotoScan) -> Image.Image:
    """The crack probability map at the photo's size as 8-bit grey: 0 = sure no crack, 255 = sure crack."""
    mask = torch.empty(scan.height, scan.width, dtype=torch.uint8)
    start = 0
    for crack in probability_rows(scan.boxes, scan.crack_probability, scan.width, scan.height):
        mask[start : start + len(crack)] = (crack.clamp(0, 1) * 255).round().to(torch.uint8)
        start += len(crack)
    return Image.fromarray(mask.numpy(), mode="L")


# -- the scan command ----------------------------------------------------------------------------------


def find_photos(source: str | os.PathLike) -> list[tuple[str, Path]]:
    """``(name, path)`` of each photo in a folder (recursively), one file, or a ``.txt`` list of paths.

    Names are paths relative to the folder (or to the list's folder), or the file's name.
    """
    source = Path(source).expanduser()
    paths = find_images(source, option="--input")
    base = source if source.is_dir() else source.parent
    named = []
    for path in paths:
        try:
            named.append((path.relative_to(base).as_posix(), path))
        except ValueError:
            named.append((str(path), path))
    return named


def output_name(photo: str, suffix: str = ".png") -> PurePath:
    """Where a photo's picture goes under ``overlays/`` or ``masks/``: its name plus ``suffix``, kept inside the folder."""
    path = PurePath(photo)
    parts = ["_" if p == ".." else p for p in path.parts[len(path.anchor and [path.anchor]):]]
    return PurePath(*parts[:-1], parts[-1] + suffix)


class ScanWriter:
    """Writes ``tiles.csv``, ``photos.csv``, overlays and masks into one folder, a photo at a time.

    Every photo's rows are flushed when it is done, ``photos.csv`` last, so an interrupted scan keeps
    what it finished and ``resume`` knows what that was.
    """

    def __init__(
        self,
        output: str | os.PathLike,
        crack_class: str,
        overwrite: bool = False,
        resume: bool = False,
        masks: bool = False,
        overlay_max_side: int = 4096,
    ) -> None:
        self.dir = Path(output).expanduser()
        self.crack_class = crack_class
        self.masks = masks
        self.overlay_max_side = overlay_max_side
        self.done: set[str] = set()
        ours = [self.dir / n for n in (TILES_CSV, PHOTOS_CSV, OVERLAYS, MASKS) if (self.dir / n).exists()]
        if ours and resume:
            self.done = self._resume()
        elif ours and overwrite:
            for path in ours:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        elif ours:
            raise CrackLightningError(
                f"--output: {self.dir} already holds scan results; pass another --output, --resume true to "
                "finish that scan, or --overwrite true to replace it"
            )
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._tiles = open(self.dir / TILES_CSV, "a", newline="")
            self._photos = open(self.dir / PHOTOS_CSV, "a", newline="")
        except OSError as err:
            raise CrackLightningError(f"--output: cannot write into {self.dir} ({err.strerror}); pass a writable folder") from err
        self.tiles_csv = csv.writer(self._tiles, lineterminator="\n")
        self.photos_csv = csv.writer(self._photos, lineterminator="\n")
        if self._tiles.tell() == 0:
            self.tiles_csv.writerow(TILE_COLUMNS)
        if self._photos.tell() == 0:
            self.photos_csv.writerow(PHOTO_COLUMNS)

    def _resume(self) -> set[str]:
        done: set[str] = set()
        if (self.dir / PHOTOS_CSV).is_file():
            with open(self.dir / PHOTOS_CSV, newline="") as f:
                done = {row["photo"] for row in csv.DictReader(f)}
        tiles = self.dir / TILES_CSV
        if tiles.is_file():
            # Tiles of a photo cut short before its photos.csv row: drop them, the photo is scanned again.
            partial = tiles.with_name(TILES_CSV + ".partial")
            with open(tiles, newline="") as src, open(partial, "w", newline="") as dst:
                reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
                writer.writerow(next(reader, TILE_COLUMNS))
                writer.writerows(row for row in reader if row and row[0] in done)
            os.replace(partial, tiles)
        return done

    def write(self, scan: PhotoScan, labels: list[str]) -> None:
        """Write one photo's tiles (with their ``labels``), pictures and summary row."""
        if scan.error:
            self.photos_csv.writerow([scan.name, "", "", 0, 0, "", "", scan.error])
            self._photos.flush()
            return
        for (x, y, w, h), p, label in zip(scan.boxes, scan.crack_probability.tolist(), labels):
            self.tiles_csv.writerow([scan.name, x, y, w, h, f"{p:.6f}", label])
        self._tiles.flush()
        pictures = {OVERLAYS: lambda: overlay(scan, self.overlay_max_side)}
        if self.masks:
            pictures[MASKS] = lambda: mask_image(scan)
        for folder, picture in pictures.items():
            path = self.dir / folder / output_name(scan.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            picture().save(path, compress_level=1)  # zlib's fastest level: 4x faster to write than the default, files ~1.3x larger
        crack_tiles = sum(label == self.crack_class for label in labels)
        others = [label for label in labels if label != self.crack_class]
        label = self.crack_class if crack_tiles else max(set(others), key=others.count)
        self.photos_csv.writerow(
            [scan.name, scan.width, scan.height, len(scan.boxes), crack_tiles,
             f"{scan.crack_probability.max().item():.6f}", label, ""]
        )
        self._photos.flush()

    def close(self) -> None:
        self._tiles.close()
        self._photos.close()


def scan_to_folder(
    model: CrackClassifier,
    source: str | os.PathLike,
    output: str | os.PathLike,
    tile: int,
    stride: int,
    batch_size: int = 32,
    threshold: float = 0.5,
    masks: bool = False,
    overwrite: bool = False,
    resume: bool = False,
    overlay_max_side: int = 4096,
    precision: str = "32",
    progress: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    context: float = DEFAULT_CONTEXT,
    backend: str | None = None,
) -> dict[str, int]:
    """The ``scan`` command: every photo of ``source`` into ``output``; returns counts of photos, tiles and errors."""
    from tqdm.auto import tqdm

    if not 0.0 <= threshold <= 1.0:
        raise CrackLightningError(f"--threshold: {threshold} is not a probability in [0, 1]")
    photos = find_photos(source)
    if not photos:
        raise CrackLightningError(f"--input: no images found in {source}")
    writer = ScanWriter(output, model.hparams.crack_class, overwrite, resume, masks, overlay_max_side)
    todo = [(name, path) for name, path in photos if name not in writer.done]
    counts = {"photos": 0, "skipped": len(photos) - len(todo), "tiles": 0, "crack_photos": 0, "errors": 0}
    bar = tqdm(total=len(todo), unit="photo", disable=not progress, dynamic_ncols=True)
    try:
        for scan in scan_photos(model, todo, tile, stride, batch_size, precision, max_pixels=max_pixels, context=context,
                                backend=backend):
            labels = [] if scan.error else decide_labels(scan.probabilities, model.class_names, model.crack_index, threshold)
            writer.write(scan, labels)
            scan.image = None
            counts["photos"] += 1
            counts["tiles"] += len(scan.boxes)
            counts["errors"] += bool(scan.error)
            counts["crack_photos"] += model.hparams.crack_class in labels
            bar.update(1)
            bar.set_postfix(tiles=counts["tiles"])
    finally:
        bar.close()
        writer.close()
    return counts
