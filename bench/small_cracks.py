"""Segmenters on smaller cracks: photos with masks shrunk to a half and a third, as drone photos show cracks.

    python bench/small_cracks.py concrete-seg-v1 concrete-seg-v2 --photos PHOTOS [--factors 2 3] [--enlarge 1 2]

PHOTOS holds ``images/`` and ``masks/`` (``evaluate``'s layout). Each photo is shrunk by block means
(``PIL.Image.reduce``), its mask likewise, a pixel crack where at least a quarter of its block was: cracks a pixel or
two wide stay marked. Each model is then measured by ``crack_lightning.evaluate`` as ``scan`` runs it (its own
threshold and smallest crack) and, with ``--enlarge 2``, also run on the shrunk photos enlarged 2x (bicubic, its
probabilities shrunk back by area: four times the work): pixel ODS F1 over all photos and over the "hairline" photos,
whose true cracks are under 1.5 px wide on average. The shrunk photos live in a temporary folder only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HAIRLINE_PX = 1.5
QUARTER = 64  # a block's mean of a 0/255 mask from which the pixel is crack


def shrink_folder(source: Path, target: Path, factor: int) -> None:
    """``source``'s photos and masks ``factor`` times smaller (block means; a mask pixel crack from a quarter)."""
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True)
    for image_path in sorted((source / "images").iterdir()):
        image = Image.open(image_path).convert("RGB")
        mask = Image.open(source / "masks" / f"{image_path.stem}.png").convert("L")
        box = (0, 0, image.width // factor, image.height // factor)
        image.reduce(factor).crop(box).save(target / "images" / f"{image_path.stem}.png")
        small = np.asarray(mask.point(lambda v: 255 if v > 127 else 0).reduce(factor).crop(box))
        Image.fromarray(np.where(small >= QUARTER, 255, 0).astype(np.uint8)).save(
            target / "masks" / f"{image_path.stem}.png"
        )


def ods_f1(maps: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """ODS F1 as ``evaluate`` computes it: pixel counts per threshold summed over the photos, the best F1."""
    from crack_lightning.measure.cracks import f1_scores, pixel_counts

    return float(f1_scores(sum(pixel_counts(p, m) for p, m in zip(maps, masks)))[0].max())


def enlarged_maps(model, folder: Path, names: list[str], enlarge: int) -> list[np.ndarray]:
    """The model's probabilities (``uint8``) of each photo enlarged ``enlarge`` times, shrunk back to its size."""
    maps = []
    for name in names:
        photo = np.asarray(Image.open(folder / "images" / name).convert("RGB"))
        height, width = photo.shape[:2]
        big = cv2.resize(photo, (width * enlarge, height * enlarge), interpolation=cv2.INTER_CUBIC)
        probability = model.probability_map(big).astype(np.float32)
        maps.append(np.round(cv2.resize(probability, (width, height), interpolation=cv2.INTER_AREA)).astype(np.uint8))
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped model names, checkpoints or .onnx graphs")
    parser.add_argument("--photos", type=Path, required=True, help="a folder with images/ and masks/")
    parser.add_argument("--factors", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--enlarge", type=int, nargs="+", default=[1], help="2: also run on the photos enlarged 2x")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = parser.parse_args()
    import crack_lightning

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            folder = Path(tmp) / f"shrunk-{factor}"
            shrink_folder(args.photos, folder, factor)
            for name in args.models:
                model = crack_lightning.load_model(name, backend="onnxruntime", precision="32")
                result = crack_lightning.evaluate(folder, model=model).to_dict()
                photos = result["photos"]
                names = [row["photo"] for row in photos]
                hairline = [i for i, row in enumerate(photos) if row["true_mean_width_px"] < HAIRLINE_PX]
                figures = result["sets"]["all"]
                row = {
                    "model": name,
                    "factor": factor,
                    "f1": figures["f1"],
                    "ods_f1": figures["ods_f1"],
                    "width_error_px": figures["width_error"],
                    "hairline_photos": len(hairline),
                    "hairline_mean_f1": float(np.mean([photos[i]["f1"] for i in hairline])) if hairline else None,
                }
                masks = [
                    np.asarray(Image.open(folder / "masks" / Path(n).with_suffix(".png").name)) > 127 for n in names
                ]
                for enlarge in (e for e in args.enlarge if e > 1):
                    maps = enlarged_maps(model, folder, names, enlarge)
                    row[f"enlarged_{enlarge}x_ods_f1"] = ods_f1(maps, masks)
                    row[f"enlarged_{enlarge}x_hairline_ods_f1"] = ods_f1(
                        [maps[i] for i in hairline], [masks[i] for i in hairline]
                    )
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
