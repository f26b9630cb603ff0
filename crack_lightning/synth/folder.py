"""A synthetic data set on disk, in the layout the segmenter trains on: ``images/NAME.jpg`` and ``masks/NAME.png``.

``synth.json`` records what made it (synthesiser version, seed, size, count, the background files' names and
hash), so that a second run into the same folder adds the missing samples of the same data set, or refuses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from crack_lightning.errors import OptionError
from crack_lightning.synth.sample import SYNTH_VERSION, SampleSpec, synthesise

MANIFEST = "synth.json"


def sample_name(index: int) -> str:
    return f"synth-{index:06d}"


def backgrounds_digest(backgrounds: Sequence[Path]) -> str:
    """A hash of the background files' names and bytes: the same digest, the same pixels."""
    digest = hashlib.sha256()
    for path in backgrounds:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _write(spec: SampleSpec, index: int, backgrounds: Sequence[Path], output: Path) -> None:
    jpeg, mask = synthesise(spec, index, backgrounds)
    name = sample_name(index)
    for folder, suffix, write in (
        ("images", ".jpg", lambda p: p.write_bytes(jpeg)),
        ("masks", ".png", lambda p: Image.fromarray(mask.astype(np.uint8) * 255).save(p, format="PNG")),
    ):
        final = output / folder / (name + suffix)
        partial = final.with_name(final.name + ".partial")
        write(partial)
        os.replace(partial, final)  # a killed run never leaves half a file under its final name


def _write_chunk(args: tuple[SampleSpec, list[int], list[Path], Path]) -> int:
    spec, indices, backgrounds, output = args
    for index in indices:
        _write(spec, index, backgrounds, output)
    return len(indices)


def write_dataset(
    spec: SampleSpec, backgrounds: Sequence[Path], output: str | Path, count: int, workers: int = 1
) -> int:
    """Write samples ``0 .. count - 1`` into ``output`` (those not there yet); return how many were written."""
    output = Path(output).expanduser()
    if count < 1:
        raise OptionError("count", f"{count}; pass 1 or more")
    manifest = {
        "synth_version": SYNTH_VERSION,
        **asdict(spec),
        "backgrounds": len(backgrounds),
        "backgrounds_sha256": backgrounds_digest(backgrounds),
    }
    path = output / MANIFEST
    if path.is_file():
        earlier = json.loads(path.read_text())
        earlier_count = earlier.pop("count", 0)
        if earlier != manifest:
            raise OptionError(
                "output",
                f"{output} holds another synthetic data set ({path} differs: seed, size, "
                "backgrounds or synthesiser version); pass a new folder",
            )
        count = max(count, earlier_count)
    elif output.exists() and any(output.iterdir()):
        raise OptionError("output", f"{output} is not empty and holds no {MANIFEST}; pass a new or empty folder")
    for folder in ("images", "masks"):
        (output / folder).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**manifest, "count": count}, indent=2) + "\n")
    todo = [
        i
        for i in range(count)
        if not (
            (output / "images" / (sample_name(i) + ".jpg")).is_file()
            and (output / "masks" / (sample_name(i) + ".png")).is_file()
        )
    ]
    if workers <= 1:
        return _write_chunk((spec, todo, list(backgrounds), output))
    chunks = [(spec, todo[k :: workers * 4], list(backgrounds), output) for k in range(workers * 4)]
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(_write_chunk, chunks))
