"""Sound surfaces to draw on: photos of sound concrete, tiled into larger surfaces and varied in tone and texture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from crack_lightning.errors import OptionError
from crack_lightning.synth.cracks import field


def find_backgrounds(folders: Sequence[str | Path]) -> list[Path]:
    """Every image in the folders, sorted: a data set depends on the files, never on directory order."""
    found: list[Path] = []
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise OptionError(
                "backgrounds",
                f"no folder {folder}; pass folders of photos of sound concrete "
                "(e.g. the Negative/ folders of the concrete-crack data)",
            )
        found += sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not found:
        raise OptionError("backgrounds", f"no .jpg or .png images in {', '.join(map(str, folders))}")
    return found


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def surface(rng: np.random.Generator, backgrounds: Sequence[Path], size: int) -> np.ndarray:
    """A ``size`` x ``size`` ``float32`` RGB surface: sound patches scaled, tiled, feathered (or, some of the time,
    left with visible seams: edges between surfaces are not cracks either), then toned."""
    scale = rng.uniform(0.8, 1.5)
    first = _load(backgrounds[int(rng.integers(len(backgrounds)))])
    tile = int(round(first.shape[0] * scale))
    count = int(np.ceil(size / (tile - 16))) + 1
    overlap = 16
    span = count * (tile - overlap) + overlap
    canvas = np.zeros((span, span, 3), np.float32)
    weight = np.zeros((span, span, 1), np.float32)
    hard = rng.random() < 0.2
    ramp = np.minimum(np.arange(tile) + 1, tile - np.arange(tile)).astype(np.float32)
    feather = np.clip(ramp / overlap, 0, 1)
    window = (feather[:, None] * feather[None, :])[..., None] if not hard else np.ones((tile, tile, 1), np.float32)
    mean_tone = None
    for row in range(count):
        for col in range(count):
            patch = first if row == col == 0 else _load(backgrounds[int(rng.integers(len(backgrounds)))])
            if mean_tone is None:
                mean_tone = patch.mean(axis=(0, 1))
            elif not hard:  # neighbouring patches of one surface share a tone
                patch = patch - patch.mean(axis=(0, 1)) + mean_tone
            patch = np.asarray(
                Image.fromarray(np.clip(patch, 0, 255).astype(np.uint8)).resize((tile, tile), Image.BILINEAR),
                dtype=np.float32,
            )
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            patch = np.rot90(patch, int(rng.integers(4)))
            y, x = row * (tile - overlap), col * (tile - overlap)
            if hard:
                canvas[y : y + tile, x : x + tile] = patch
                weight[y : y + tile, x : x + tile] = 1
            else:
                canvas[y : y + tile, x : x + tile] += patch * window
                weight[y : y + tile, x : x + tile] += window
    canvas = canvas / np.maximum(weight, 1e-6)
    y, x = (int(rng.integers(0, span - size + 1)) for _ in range(2))
    return tone(rng, canvas[y : y + size, x : x + size])


def tone(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Lighting, colour cast, contrast and, some of the time, a coarse aggregate texture (asphalt, exposed stone)."""
    size = image.shape[:2]
    out = image
    if rng.random() < 0.4:
        grit = gaussian_filter(rng.standard_normal(size).astype(np.float32), rng.uniform(0.6, 1.8))
        grit = grit / (grit.std() + 1e-6)
        out = out + (grit * rng.uniform(6, 28))[..., None]
    mean = out.mean(axis=(0, 1))
    out = (out - mean) * rng.uniform(0.6, 1.6) + mean * rng.uniform(0.55, 1.25)
    out = out * (1 + rng.normal(0, 0.06, 3))  # white balance
    if rng.random() < 0.5:  # uneven light across the picture
        out = out * (1 + 0.25 * field(rng, size, size[0] / 3))[..., None]
    if rng.random() < 0.15:
        out = out.mean(axis=2, keepdims=True).repeat(3, axis=2)
    return np.clip(out, 0, 255)
