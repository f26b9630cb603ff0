"""``scan``: crack maps of whole photos, without torch; with a segmenter, every crack measured. A thin layer over
:func:`crack_lightning.scan`: the flags given are its options (their defaults, and their checks, are the options
objects': :class:`~crack_lightning.scanning.options.TileOptions`, :class:`~crack_lightning.scanning.options.CrackOptions`)."""

from __future__ import annotations

import sys

from crack_lightning.api import scan
from crack_lightning.cli.options import CommandParser
from crack_lightning.cli.predict import model_options
from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import not_scanned
from crack_lightning.io.scan_files import (
    CRACKS_CSV,
    CRACKS_GEOJSON,
    MASKS,
    MAX_SIDE,
    OVERLAYS,
    PHOTOS_CSV,
    REPORT,
    TILES_CSV,
    TILES_GEOJSON,
)
from crack_lightning.measure.measuring import Measuring
from crack_lightning.runtime.models import DEFAULT_MODEL, DEFAULT_SCAN_MODEL
from crack_lightning.scanning.geojson import map_line
from crack_lightning.scanning.options import (
    DEFAULT_BATCH,
    DEFAULT_WINDOWS_PER_BATCH,
    GPU_BATCH,
    GPU_WINDOWS,
    CrackOptions,
    TileOptions,
)
from crack_lightning.tasks.registry import TASKS

# The options of one task only (the others' flags are refused by the library, naming the flag).
CLASSIFIER_OPTIONS = ("tile", "stride", "context", "masks")
SEGMENTER_OPTIONS = (
    "low_threshold",
    "mm_per_px",
    "scale",
    "marker_mm",
    "min_area",
    "width_limits_mm",
    "width_classes",
    "window",
    "overlap",
)
SCAN_OPTIONS = (*CLASSIFIER_OPTIONS, *SEGMENTER_OPTIONS, "threshold", "batch_size", "max_pixels")  # None: not given
FLAGS = {"source": "--input", "model": "--ckpt_path"}  # the library's names that are not the flag's (cli.main)


def parser() -> CommandParser:
    p = CommandParser(
        "scan",
        "Find and measure the cracks of whole photos with the shipped segmenter (default): a crack probability per "
        "pixel, masks/, overlays that draw the cracks, cracks.csv (length and width of each crack), photos.csv and "
        "report.html (every photo, worst first) into --output. With a classifier (--ckpt_path concrete-v1): each "
        "photo cut into square tiles, every tile classified, tiles.csv, photos.csv, a crack-probability overlay per photo.",
    )
    model_options(p, DEFAULT_SCAN_MODEL)
    p.add_argument(
        "--input",
        type=str,
        required=True,
        help="A photo, a folder of photos (searched recursively; scan results inside it are left out), or a .txt list of paths.",
    )
    p.add_argument(
        "--output",
        type=str,
        required=True,
        help="Folder for the CSV files, overlays/, masks/ and report.html; one scan at a time writes into it.",
    )
    p.add_argument(
        "--tile",
        type=int | None,
        default=None,
        help=f"Classifier: tile side in photo pixels (default {TileOptions.tile}).",
    )
    p.add_argument(
        "--stride",
        type=int | None,
        default=None,
        help="Classifier: step between tiles in photo pixels (default: the tile, no overlap; tile/2 gives a smoother map).",
    )
    p.add_argument(
        "--context",
        type=float | None,
        default=None,
        help=f"Classifier: photo around each tile the network also sees, as a share of the tile side on each side (default {TileOptions.context}).",
    )
    p.add_argument(
        "--batch_size",
        type=int | None,
        default=None,
        help=f"Tiles per batch (default {DEFAULT_BATCH}, {GPU_BATCH} on a GPU); a segmenter's windows per batch (default {DEFAULT_WINDOWS_PER_BATCH}, {GPU_WINDOWS} on a GPU).",
    )
    p.add_argument(
        "--threshold",
        type=float | None,
        default=None,
        help=f"Crack probability from which a tile is a crack (default {TileOptions.threshold}); a segmenter's pixel (default: the model's).",
    )
    p.add_argument(
        "--low_threshold",
        type=float | None,
        default=None,
        help="Segmenter: hysteresis: pixels from this crack probability up to --threshold are crack where they touch crack pixels (the edges and faint stretches of a crack); default: the model's low_threshold, else none (docs/segmentation.md). A value at or above --threshold turns it off.",
    )
    p.add_argument(
        "--masks",
        type=bool | None,
        default=None,
        help="Classifier: also write masks/<photo>.png, the probability map as 8-bit grey (a segmenter always writes them).",
    )
    p.add_argument(
        "--mm_per_px",
        type=float | None,
        default=None,
        help="Segmenter: the photos' scale in millimetres per pixel; fills cracks.csv's mm columns and width classes (default: each photo's own, see --scale).",
    )
    p.add_argument(
        "--scale",
        type=str | None,
        default=None,
        help="Segmenter: each photo's scale: auto (the default: a marker card in the photo, printed by the marker command, else a GeoTIFF's pixel size, else a nadir drone photo's metadata, else none), none (pixels only) or mm per pixel (as --mm_per_px, which wins).",
    )
    p.add_argument(
        "--marker_mm",
        type=float | None,
        default=None,
        help="Segmenter: the printed marker's side in mm as your ruler measures it, when it is not the size printed on the card (a printer that scaled the page).",
    )
    p.add_argument(
        "--min_area",
        type=int | None,
        default=None,
        help="Segmenter: smallest crack kept, in crack pixels (8-connected; default: the model's, else "
        f"{Measuring.min_area}).",
    )
    p.add_argument(
        "--width_limits_mm",
        type=str | None,
        default=None,
        help=f"Segmenter: crack widths in mm that separate the width classes, comma-separated, increasing (default {','.join(map(str, CrackOptions.width_limits_mm))}).",
    )
    p.add_argument(
        "--width_classes",
        type=str | None,
        default=None,
        help=f"Segmenter: names of the width classes, one more than --width_limits_mm, by a crack's widest point (default {','.join(CrackOptions.width_classes)}).",
    )
    p.add_argument(
        "--window", type=int | None, default=None, help="Segmenter: window side in pixels (default: the model's, 512)."
    )
    p.add_argument(
        "--overlap",
        type=int | None,
        default=None,
        help="Segmenter: overlap of neighbouring windows in pixels, blended (default: the model's, 64).",
    )
    p.add_argument(
        "--overlay_max_side",
        type=int,
        default=MAX_SIDE,
        help="Longest side of an overlay; larger photos are drawn smaller.",
    )
    p.add_argument(
        "--report",
        type=bool,
        default=True,
        help="Write report.html: the photos worst first with their crack maps, to open in a browser (offline).",
    )
    p.add_argument("--overwrite", type=bool, default=False, help="Replace the scan results already in --output.")
    p.add_argument(
        "--resume",
        type=bool,
        default=False,
        help="Skip the photos already in --output's photos.csv (a scan that was cut short); the same options and model.",
    )
    p.add_argument(
        "--max_pixels",
        type=int | None,
        default=None,
        help=f"Largest photo accepted, in pixels, checked from its header (default {TileOptions.max_pixels}).",
    )
    p.add_argument("--progress", type=bool, default=True, help="Show a progress bar.")
    p.add_argument(
        "--devices",
        type=int,
        default=1,
        help="Processes sharing the photos, launched by Lightning (ddp), each with its share of the CPU cores; "
        "with --device cuda they share the GPUs round-robin, so that measuring and drawing, which run on "
        "the CPU, run in parallel. One set of CSV files, pictures and report, the rows of one process; "
        "launching takes seconds, so it is for many cores and many photos.",
    )
    p.add_argument(
        "--num_nodes",
        type=int,
        default=1,
        help="Machines sharing the photos, --devices processes on each; start the command on each as "
        "Lightning's multi-node ddp asks (MASTER_ADDR, NODE_RANK...), --output on a shared file system.",
    )
    return p


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def numbers(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CrackLightningError(f"{option}: {text!r}; pass numbers separated by commas, e.g. 0.1,0.3,1.0") from None


def scan_options(o) -> dict:
    """The scan options given (the library's defaults for the others)."""
    given = {name: getattr(o, name) for name in SCAN_OPTIONS if getattr(o, name) is not None}
    if "width_limits_mm" in given:
        given["width_limits_mm"] = numbers(given["width_limits_mm"], "--width_limits_mm")
    if "width_classes" in given:
        given["width_classes"] = tuple(c.strip() for c in given["width_classes"].split(","))
    return given


def run(argv: list[str]) -> None:
    o = parser().parse_args(argv)
    options = scan_options(o)
    given = [f"--{name}" for name in CLASSIFIER_OPTIONS if name in options]
    if o.ckpt_path is None and given:  # scan's default was the classifier until 0.3: say how to get its tile maps
        raise CrackLightningError(
            f"{', '.join(given)}: tile options of a classifier; scan's default model "
            f"{DEFAULT_SCAN_MODEL} is a segmenter: add --ckpt_path {DEFAULT_MODEL} for tile maps"
        )
    first: list[str] = []  # the lines logged: only the first process logs, and prints the one summary

    def log(line: str) -> None:
        first.append(line)
        print(line, file=sys.stderr)

    counts = scan(
        o.input,
        o.output,
        o.ckpt_path or DEFAULT_SCAN_MODEL,
        o.overwrite,
        o.resume,
        o.report,
        o.progress,
        o.overlay_max_side,
        o.devices,
        o.num_nodes,
        log,
        backend=o.backend,
        precision=o.precision,
        tta=o.tta,
        device=o.device,
        **options,
    )
    if not first:
        return
    # The task that scanned, by the unit its counts name: its part of the command prints the summary.
    task = next(t for t in TASKS.values() if t.part("scan").unit in counts)
    task.part("command")(o, counts, options)


def segmenter_summary(o, counts: dict[str, int], options: dict) -> None:
    """The scan command's summary of a segmenter's scan (the segmentation task's ``command``)."""
    skipped = f", {counts['skipped']} already done" if counts["skipped"] else ""
    print(
        f"Scanned {plural(counts['photos'] - counts['errors'], 'photo')}{skipped}: {plural(counts['cracks'], 'crack')} "
        f"in {plural(counts['crack_photos'], 'photo')}, {not_scanned(counts)} (see photos.csv)."
    )
    files_line(o, counts, f"{CRACKS_CSV}, {PHOTOS_CSV}, {MASKS}/, {OVERLAYS}/", CRACKS_GEOJSON)


def classifier_summary(o, counts: dict[str, int], options: dict) -> None:
    """The scan command's summary of a classifier's scan (the classification task's ``command``)."""
    skipped = f", {counts['skipped']} already done" if counts["skipped"] else ""
    tiles = TileOptions.of("scan", **{k: v for k, v in options.items() if k in ("tile", "stride")})
    print(
        f"Scanned {counts['photos'] - counts['errors']} photos ({counts['tiles']} tiles of {tiles.tile} px, stride "
        f"{tiles.stride}){skipped}: {counts['crack_photos']} with cracks, {not_scanned(counts)} (see photos.csv)."
    )
    files_line(o, counts, f"{TILES_CSV}, {PHOTOS_CSV}, {OVERLAYS}/" + (f", {MASKS}/" if o.masks else ""), TILES_GEOJSON)


def files_line(o, counts: dict[str, int], files: str, geojson: str) -> None:
    print(f"Results in {o.output}: {files}" + (f", {REPORT} (open it in a browser)" if o.report else ""))
    mapped = map_line(counts, geojson)
    if mapped:
        print(mapped)
