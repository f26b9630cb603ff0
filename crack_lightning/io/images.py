"""Image files: header checks, decoding to RGB and resizing, with PIL and NumPy only (no torch).

Both inference paths (the torch-free one and Lightning's ``predict``) read and resize through these functions,
so they hand the network the same pixels.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.io.formats import HEIF_EXTENSIONS, read_other_format, register_heif
from crack_lightning.io.pixels import pil_to_rgb8

MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # PIL's decompression-bomb limit (about 89 MP)
# torchvision.datasets.folder.IMG_EXTENSIONS (without importing torchvision), and HEIC/HEIF, phones' default format
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp") + HEIF_EXTENSIONS
# The three reasons a file is not scanned, as their errors word them (photos.csv keeps only the text)
UNSUPPORTED, UNREADABLE, TOO_LARGE = "unsupported type", "unreadable", "too large"


@contextmanager
def own_pixel_limit() -> Iterator[None]:
    """PIL's decompression-bomb check steps aside: ours ran on the header, with the user's limit."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def check_pixels(path: str | os.PathLike, width: int, height: int, max_pixels: int | None = MAX_PIXELS) -> None:
    """An error when a ``width`` x ``height`` image is over ``max_pixels`` (None: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise CrackLightningError(
            f"{path}: {width}x{height} = {width * height / 1e6:.0f} MP is over the limit of {max_pixels / 1e6:.0f} MP; "
            "shrink it, or raise the limit (max_pixels) if you trust the file"
        )


def unreadable(path: str | os.PathLike, err: OSError | str) -> CrackLightningError:
    if Path(path).suffix.lower() not in IMG_EXTENSIONS:  # not an image we know, rather than a broken one
        return CrackLightningError(
            f"{path}: {UNSUPPORTED} ({Path(path).suffix or 'no extension'}); convert it to JPEG, PNG, TIFF or HEIC, "
            "or move it out of the folder"
        )
    return CrackLightningError(f"{path}: cannot be read as an image ({err}); remove or replace it")


def skip_reason(error: str) -> str:
    """Why a file was not scanned, from its error text: unsupported type, too large or unreadable."""
    if f": {UNSUPPORTED} (" in error:
        return UNSUPPORTED
    return TOO_LARGE if " MP is over the limit of " in error else UNREADABLE


def count_reasons(errors: Iterable[str]) -> dict[str, int]:
    """How many of ``errors`` (empty ones left out) have each :func:`skip_reason`, every reason present."""
    reasons = [skip_reason(e) for e in errors if e]
    return {r: reasons.count(r) for r in (UNSUPPORTED, UNREADABLE, TOO_LARGE)}


def not_scanned(errors: Iterable[str] | dict[str, int]) -> str:
    """Error texts (or :func:`count_reasons`) for a summary: "3 not scanned (2 unsupported type, 1 unreadable)"."""
    counts = errors if isinstance(errors, dict) else count_reasons(errors)
    total = sum(counts.get(r, 0) for r in (UNSUPPORTED, UNREADABLE, TOO_LARGE))
    by_reason = ", ".join(f"{counts[r]} {r}" for r in (UNSUPPORTED, UNREADABLE, TOO_LARGE) if counts.get(r))
    return f"{total} not scanned ({by_reason})" if total else "0 not scanned"


@contextmanager
def open_checked(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> Iterator[Image.Image]:
    """The image at ``path`` opened (its header read, nothing decoded yet) and checked against ``max_pixels``; an
    unreadable file, here or while the caller decodes it, is one error naming the file."""
    try:
        if os.path.getsize(path) == 0:
            raise unreadable(path, "empty file")
        register_heif()
        with own_pixel_limit():
            try:
                im = Image.open(path)
            except OSError:
                # what PIL cannot open (e.g. float RGB TIFF) may be read otherwise; else PIL's error stands
                im = read_other_format(path, lambda width, height: check_pixels(path, width, height, max_pixels))
                if im is None:
                    raise
        with im:
            check_pixels(path, *im.size, max_pixels)
            yield im
    except OSError as err:
        raise unreadable(path, err) from err


def image_header(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> tuple[int, int]:
    """Width and height from the file's header, without decoding it; an error for unreadable or oversized files."""
    with open_checked(path, max_pixels) as im:
        return im.size


def read_rgb(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS, size: int | None = None) -> np.ndarray:
    """Decode an image file (any mode: grey, RGBA, CMYK...) to a ``uint8`` RGB array ``(H, W, 3)``, EXIF-rotated,
    resized to ``(size, size)`` as :func:`resize` does when ``size`` is given.

    The header is checked first: files over ``max_pixels`` pixels are refused before any decoding.
    """
    with open_checked(path, max_pixels) as im:
        image = upright_rgb(im)
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image)


def upright_rgb(image: Image.Image) -> Image.Image:
    """A PIL image in 8-bit RGB mode (16-bit and float scaled: :mod:`crack_lightning.io.pixels`), turned as its EXIF
    orientation says."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image) if image.getexif().get(0x0112, 1) != 1 else image
    return pil_to_rgb8(image)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """A PIL image as a ``uint8`` RGB array ``(H, W, 3)``, turned as its EXIF orientation says."""
    return np.asarray(upright_rgb(image))


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """A ``uint8`` ``(H, W, 3)`` array resized to ``(size, size, 3)``, antialiased bilinear (PIL's, as torchvision's
    antialiased resize computes it, within one grey level); unchanged when it has that size already."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def find_images(source: str | os.PathLike, option: str = "source", every_file: bool = False) -> list[Path]:
    """Image files: a folder searched recursively, one image file, or a ``.txt`` file listing paths (one a line).

    ``every_file``: a folder's files of any type, so that the caller can say why it skips one (``scan``)."""
    source = Path(source).expanduser()
    if source.is_dir():
        return sorted(
            (p for p in source.rglob("*") if p.is_file() and (every_file or p.suffix.lower() in IMG_EXTENSIONS)),
            key=lambda p: p.relative_to(source).as_posix(),
        )
    if source.suffix.lower() in (".txt", ".lst", ".list") and source.is_file():
        try:
            text = source.read_text()
        except (OSError, UnicodeDecodeError) as err:
            why = err.strerror if isinstance(err, OSError) else "not a text file"
            raise OptionError(
                option, f"cannot read the list {source} ({why}); pass a .txt list of paths, one a line"
            ) from err
        lines = (line.strip() for line in text.splitlines())
        # Relative paths in a list are relative to the list's folder, so a list travels with its images.
        return [source.parent / line for line in lines if line and not line.startswith("#")]
    if source.is_file():
        return [source]
    raise OptionError(option, f"no file or folder {source}; pass a folder of images, an image, or a .txt list of paths")


ImageInput = str | os.PathLike | Image.Image | np.ndarray  # what predict and scan take for one image


def as_rgb(image: ImageInput, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """A path, PIL image or ``uint8`` array ``(H, W, 3)`` as a ``uint8`` RGB array ``(H, W, 3)``."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise CrackLightningError(f"an image array must be uint8 (H, W, 3) RGB, not {image.dtype} {image.shape}")
        return image
    if isinstance(image, Image.Image):
        return to_rgb_array(image)
    if not isinstance(image, (str, os.PathLike)):
        raise CrackLightningError(
            f"cannot read a {type(image).__name__} as an image; pass a path, a PIL image or a uint8 (H, W, 3) array"
        )
    return read_rgb(image, max_pixels)
