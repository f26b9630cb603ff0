"""``scan``: crack maps of whole photos, without torch."""

from __future__ import annotations

import sys

from crack_lightning.commands.options import CommandParser
from crack_lightning.commands.predict import model_options
from crack_lightning.errors import CrackLightningError, require_writable
from crack_lightning.images import MAX_PIXELS
from crack_lightning.inference.models import load_model
from crack_lightning.scan import DEFAULT_CONTEXT, DEFAULT_TILE, MASKS, OVERLAYS, PHOTOS_CSV, REPORT, TILES_CSV, scan_to_folder


def parser() -> CommandParser:
    p = CommandParser(
        "scan",
        "Cut each photo into square tiles, classify every tile, and write tiles.csv, photos.csv, a crack-probability "
        "overlay per photo and report.html (every photo, worst first) into --output.",
    )
    model_options(p)
    p.add_argument("--input", type=str, required=True, help="A photo, a folder of photos (searched recursively), or a .txt list of paths.")
    p.add_argument("--output", type=str, required=True, help="Folder for tiles.csv, photos.csv, overlays/, masks/ and report.html; one scan at a time writes into it.")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help="Tile side in photo pixels.")
    p.add_argument("--stride", type=int | None, default=None, help="Step between tiles in photo pixels (default: the tile, no overlap; tile/2 gives a smoother map).")
    p.add_argument("--context", type=float, default=DEFAULT_CONTEXT, help="Photo around each tile the network also sees, as a share of the tile side on each side.")
    p.add_argument("--batch_size", type=int, default=32, help="Tiles per batch.")
    p.add_argument("--threshold", type=float, default=0.5, help="Crack probability from which a tile is a crack.")
    p.add_argument("--masks", type=bool, default=False, help="Also write masks/<photo>.png, the probability map as 8-bit grey.")
    p.add_argument("--overlay_max_side", type=int, default=4096, help="Longest side of an overlay; larger photos are drawn smaller.")
    p.add_argument("--report", type=bool, default=True, help="Write report.html: the photos worst first with their crack maps, to open in a browser (offline).")
    p.add_argument("--overwrite", type=bool, default=False, help="Replace the scan results already in --output.")
    p.add_argument("--resume", type=bool, default=False, help="Skip the photos already in --output's photos.csv (a scan that was cut short); the same --tile, --stride, --context, --threshold and model.")
    p.add_argument("--max_pixels", type=int, default=MAX_PIXELS, help="Largest photo accepted, in pixels, checked from its header.")
    p.add_argument("--progress", type=bool, default=True, help="Show a progress bar.")
    return p


def run(argv: list[str]) -> None:
    o = parser().parse_args(argv)
    if o.overwrite and o.resume:
        raise CrackLightningError("--overwrite and --resume exclude each other; pass one of them")
    for name in ("tile", "batch_size", "overlay_max_side", "max_pixels") + (("stride",) if o.stride is not None else ()):
        if getattr(o, name) < 1:
            raise CrackLightningError(f"--{name}: {getattr(o, name)}; pass a whole number of at least 1")
    require_writable(o.output, "--output")  # before the model loads: a checkpoint may take seconds to export
    classifier = load_model(o.ckpt_path, backend=o.backend, precision=o.precision, tta=o.tta)
    print(f"Model: {classifier.source}", file=sys.stderr)
    print(f"Inference: {classifier.describe()}", file=sys.stderr)
    stride = o.stride or o.tile
    counts = scan_to_folder(
        classifier, o.input, o.output, o.tile, stride, o.batch_size, o.threshold, o.masks, o.overwrite, o.resume,
        o.overlay_max_side, o.progress, o.max_pixels, o.context, o.report,
    )
    skipped = f", {counts['skipped']} already done" if counts["skipped"] else ""
    print(
        f"Scanned {counts['photos'] - counts['errors']} photos ({counts['tiles']} tiles of {o.tile} px, stride "
        f"{stride}){skipped}: {counts['crack_photos']} with cracks, {counts['errors']} unreadable (see photos.csv)."
    )
    print(f"Results in {o.output}: {TILES_CSV}, {PHOTOS_CSV}, {OVERLAYS}/" + (f", {MASKS}/" if o.masks else "")
          + (f", {REPORT} (open it in a browser)" if o.report else ""))
