"""The README's scan picture: a photo made of the shipped sample patches, scanned with a checkpoint.

    python bench/scan_example.py CKPT            # writes bench/results/scan_example/{photo.jpg, overlays/, ...}

The photo is 8 x 5 patches (1816 x 1135 px) of never-trained sample images: sound concrete with a
line of crack patches running across it, so the overlay shows whether the map follows the crack.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from crack_lightning.data import sample_root
from crack_lightning.model import CrackClassifier
from crack_lightning.scan import scan_to_folder

PATCH = 227
CRACK_PATH = {(0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 2), (7, 2), (3, 0)}  # (column, row) of crack patches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "scan_example")
    parser.add_argument("--tile", type=int, default=PATCH)
    parser.add_argument("--stride", type=int, default=PATCH // 2)
    args = parser.parse_args()
    # The last sample images of each class: the test fixtures train on the first ones.
    crack = iter(sorted((sample_root() / "Positive").glob("*.jpg"))[::-1])
    sound = iter(sorted((sample_root() / "Negative").glob("*.jpg"))[::-1])
    photo = Image.new("RGB", (8 * PATCH, 5 * PATCH))
    for row in range(5):
        for column in range(8):
            with Image.open(next(crack if (column, row) in CRACK_PATH else sound)) as patch:
                photo.paste(patch.convert("RGB"), (column * PATCH, row * PATCH))
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "photo.jpg"
    photo.save(path, quality=92)
    model = CrackClassifier.load_from_checkpoint(args.ckpt, map_location="cpu")
    counts = scan_to_folder(model, path, args.output / "scan", args.tile, args.stride, masks=True, overwrite=True)
    print(f"{counts['tiles']} tiles; overlay in {args.output / 'scan' / 'overlays' / 'photo.jpg.png'}")


if __name__ == "__main__":
    main()
