"""One synthetic sample: a sound surface, cracks with their exact mask, look-alikes without one, a camera."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crack_lightning.synth.camera import photograph
from crack_lightning.synth.cracks import draw_crack
from crack_lightning.synth.distractors import DISTRACTORS
from crack_lightning.synth.paths import crack_strokes
from crack_lightning.synth.raster import coverage, mask_of
from crack_lightning.synth.surfaces import surface

SYNTH_VERSION = "1"  # change when a sample's pixels change for the same seed, index and backgrounds


@dataclass(frozen=True)
class SampleSpec:
    """What a data set's samples are drawn from: its seed, picture size and the share of crack-free samples."""

    seed: int = 0
    size: int = 384
    sound_share: float = 0.15  # samples with look-alikes only: most inspection pictures have no crack
    distractor_rate: float = 1.2  # look-alikes per sample, on average


def crack_width(rng: np.random.Generator) -> float:
    """A crack's base width in px: log-uniform from 1 to 14, as hairlines outnumber wide cracks."""
    return float(np.exp(rng.uniform(0.0, np.log(14.0))))


def synthesise(spec: SampleSpec, index: int, backgrounds: Sequence[Path]) -> tuple[bytes, np.ndarray]:
    """Sample ``index``: JPEG bytes of the picture and its ``bool`` ``(H, W)`` crack mask."""
    rng = np.random.default_rng([spec.seed, index])
    size = (spec.size, spec.size)
    image = surface(rng, backgrounds, spec.size)
    mask = np.zeros(size, bool)
    names = sorted(DISTRACTORS)
    layers: list[tuple[str, float]] = []
    if rng.random() >= spec.sound_share:
        count = 1 + rng.poisson(0.6)
        layers += [("crack", crack_width(rng)) for _ in range(count)]
    layers += [(names[int(rng.integers(len(names)))], 0.0) for _ in range(rng.poisson(spec.distractor_rate))]
    for i in rng.permutation(len(layers)):  # cracks and look-alikes overlap in any order
        kind, width = layers[i]
        if kind == "crack":
            cover = coverage(crack_strokes(rng, size, width), size)
            image = draw_crack(rng, image, cover, width)
            mask |= mask_of(cover)
        else:
            before = image
            image = DISTRACTORS[kind](rng, image)
            # A look-alike drawn over a crack hides it where it is opaque: no mask where the crack no longer shows.
            hidden = np.abs(image - before).mean(axis=2) > 60
            mask &= ~hidden
    return photograph(rng, image), mask
