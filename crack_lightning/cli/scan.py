"""``scan``: crack maps of whole photos, without torch; with a segmenter, every crack measured."""

from __future__ import annotations

import sys

from crack_lightning.api import load_model
from crack_lightning.cli.options import CommandParser, flags
from crack_lightning.cli.predict import model_options
from crack_lightning.distributed import start_processes
from crack_lightning.errors import CrackLightningError, require_writable
from crack_lightning.io.images import MAX_PIXELS, not_scanned
from crack_lightning.runtime.backends import cpu_count
from crack_lightning.io.scan_files import (
    CRACKS_CSV, CRACKS_GEOJSON, MASKS, MAX_SIDE, OVERLAYS, PHOTOS_CSV, REPORT, TILES_CSV, TILES_GEOJSON,
)
from crack_lightning.measure.measuring import DEFAULT_MIN_AREA
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD
from crack_lightning.runtime.models import DEFAULT_MODEL, DEFAULT_SCAN_MODEL
from crack_lightning.runtime.segmenter import DEFAULT_WINDOWS_PER_BATCH
from crack_lightning.scanning.geojson import map_line
from crack_lightning.scanning.pipeline import scan_to_folder
from crack_lightning.scanning.shards import Shards
from crack_lightning.scanning.options import DEFAULT_BATCH, DEFAULT_CONTEXT, DEFAULT_TILE
from crack_lightning.scanning.tasks import scan_task
from crack_lightning.tasks.registry import task_named

GPU_BATCH, GPU_WINDOWS = 256, 8  # tiles / segmenter windows a batch on a GPU: large batches keep it busy
SEGMENTER_OPTIONS = ("mm_per_px", "scale", "marker_mm", "window", "overlap", "low_threshold")  # None unless given
CLASSIFIER_OPTIONS = ("--tile", "--stride", "--context", "--masks")


def parser() -> CommandParser:
    p = CommandParser(
        "scan",
        "Find and measure the cracks of whole photos with the shipped segmenter (default): a crack probability per "
        "pixel, masks/, overlays that draw the cracks, cracks.csv (length and width of each crack), photos.csv and "
        "report.html (every photo, worst first) into --output. With a classifier (--ckpt_path concrete-v1): each "
        "photo cut into square tiles, every tile classified, tiles.csv, photos.csv, a crack-probability overlay per photo.",
    )
    model_options(p, DEFAULT_SCAN_MODEL)
    p.add_argument("--input", type=str, required=True, help="A photo, a folder of photos (searched recursively; scan results inside it are left out), or a .txt list of paths.")
    p.add_argument("--output", type=str, required=True, help="Folder for the CSV files, overlays/, masks/ and report.html; one scan at a time writes into it.")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help="Classifier: tile side in photo pixels.")
    p.add_argument("--stride", type=int | None, default=None, help="Classifier: step between tiles in photo pixels (default: the tile, no overlap; tile/2 gives a smoother map).")
    p.add_argument("--context", type=float, default=DEFAULT_CONTEXT, help="Classifier: photo around each tile the network also sees, as a share of the tile side on each side.")
    p.add_argument("--batch_size", type=int | None, default=None, help=f"Tiles per batch (default {DEFAULT_BATCH}); a segmenter's windows per batch (default {DEFAULT_WINDOWS_PER_BATCH}).")
    p.add_argument("--threshold", type=float | None, default=None, help=f"Crack probability from which a tile is a crack (default {DEFAULT_THRESHOLD}); a segmenter's pixel (default: the model's).")
    p.add_argument("--low_threshold", type=float | None, default=None, help="Segmenter: hysteresis: pixels from this crack probability up to --threshold are crack where they touch crack pixels (the edges and faint stretches of a crack); default: the model's low_threshold, else none (docs/segmentation.md). A value at or above --threshold turns it off.")
    p.add_argument("--masks", type=bool, default=False, help="Classifier: also write masks/<photo>.png, the probability map as 8-bit grey (a segmenter always writes them).")
    p.add_argument("--mm_per_px", type=float | None, default=None, help="Segmenter: the photos' scale in millimetres per pixel; fills cracks.csv's mm columns and width classes (default: each photo's own, see --scale).")
    p.add_argument("--scale", type=str | None, default=None, help="Segmenter: each photo's scale: auto (the default: a marker card in the photo, printed by the marker command, else a GeoTIFF's pixel size, else a nadir drone photo's metadata, else none), none (pixels only) or mm per pixel (as --mm_per_px, which wins).")
    p.add_argument("--marker_mm", type=float | None, default=None, help="Segmenter: the printed marker's side in mm as your ruler measures it, when it is not the size printed on the card (a printer that scaled the page).")
    p.add_argument("--min_area", type=int, default=DEFAULT_MIN_AREA, help="Segmenter: smallest crack kept, in crack pixels (8-connected).")
    p.add_argument("--width_limits_mm", type=str, default="0.1,0.3,1.0", help="Segmenter: crack widths in mm that separate the width classes, comma-separated, increasing.")
    p.add_argument("--width_classes", type=str, default="hairline,fine,medium,wide", help="Segmenter: names of the width classes, one more than --width_limits_mm, by a crack's widest point.")
    p.add_argument("--window", type=int | None, default=None, help="Segmenter: window side in pixels (default: the model's, 512).")
    p.add_argument("--overlap", type=int | None, default=None, help="Segmenter: overlap of neighbouring windows in pixels, blended (default: the model's, 64).")
    p.add_argument("--overlay_max_side", type=int, default=MAX_SIDE, help="Longest side of an overlay; larger photos are drawn smaller.")
    p.add_argument("--report", type=bool, default=True, help="Write report.html: the photos worst first with their crack maps, to open in a browser (offline).")
    p.add_argument("--overwrite", type=bool, default=False, help="Replace the scan results already in --output.")
    p.add_argument("--resume", type=bool, default=False, help="Skip the photos already in --output's photos.csv (a scan that was cut short); the same options and model.")
    p.add_argument("--max_pixels", type=int, default=MAX_PIXELS, help="Largest photo accepted, in pixels, checked from its header.")
    p.add_argument("--progress", type=bool, default=True, help="Show a progress bar.")
    p.add_argument("--devices", type=int, default=1,
                   help="Processes sharing the photos, launched by Lightning (ddp), each with its share of the CPU cores; "
                        "with --device cuda they share the GPUs round-robin, so that measuring and drawing, which run on "
                        "the CPU, run in parallel. One set of CSV files, pictures and report, the rows of one process; "
                        "launching takes seconds, so it is for many cores and many photos.")
    p.add_argument("--num_nodes", type=int, default=1,
                   help="Machines sharing the photos, --devices processes on each; start the command on each as "
                        "Lightning's multi-node ddp asks (MASTER_ADDR, NODE_RANK...), --output on a shared file system.")
    return p


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def numbers(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise CrackLightningError(f"{option}: {text!r}; pass numbers separated by commas, e.g. 0.1,0.3,1.0") from None


def run(argv: list[str]) -> None:
    o = parser().parse_args(argv)
    if o.overwrite and o.resume:
        raise CrackLightningError("--overwrite and --resume exclude each other; pass one of them")
    # The scan's own options are checked by the library (named as flags by `flags()`); these before the model loads.
    for name in ("overlay_max_side", "max_pixels", "devices", "num_nodes"):
        if getattr(o, name) < 1:
            raise CrackLightningError(f"--{name}: {getattr(o, name)}; pass a whole number of at least 1")
    require_writable(o.output, "--output")  # before the model loads: a checkpoint may take seconds to export
    shards, threads = start_processes(o.device, o.devices, o.num_nodes)
    model = load_model(o.ckpt_path or DEFAULT_SCAN_MODEL, "--ckpt_path", o.device, backend=o.backend,
                       precision=o.precision, tta=o.tta, threads=threads)
    given = [a.split("=", 1)[0] for a in argv if a.split("=", 1)[0] in CLASSIFIER_OPTIONS]
    if o.ckpt_path is None and given:  # scan's default was the classifier until 0.3: say how to get its tile maps
        raise CrackLightningError(f"{', '.join(given)}: tile options of a classifier; scan's default model "
                                  f"{DEFAULT_SCAN_MODEL} is a segmenter: add --ckpt_path {DEFAULT_MODEL} for tile maps")
    say = print if shards.rank == 0 else (lambda *args, **kwargs: None)  # one summary, not one per process
    say(f"Model: {model.source}", file=sys.stderr)
    say(f"Inference: {model.describe()}" + (f", {shards.world_size} processes" if shards.world_size > 1 else ""), file=sys.stderr)
    workers = min(8, threads or cpu_count()) if model.device == "cuda" else 0  # the GPU is not kept waiting
    task_named(model.task, model.source).part("command")(o, model, shards, workers, say)  # run_classifier...


def run_classifier(o, model, shards: Shards, workers: int, say) -> None:
    given = [f"--{name}" for name in SEGMENTER_OPTIONS if getattr(o, name) is not None]
    if given:
        raise CrackLightningError(f"{', '.join(given)}: for a segmentation model; {model.source} is a classifier")
    gpu = model.device == "cuda"
    threshold = {} if o.threshold is None else {"threshold": o.threshold}
    with flags():
        task = scan_task(model, tile=o.tile, stride=o.stride, context=o.context, **threshold,
                         batch_size=o.batch_size or (GPU_BATCH if gpu else DEFAULT_BATCH), masks=o.masks,
                         max_pixels=o.max_pixels, workers=workers)
    stride = task.stride
    counts = scan_to_folder(task, o.input, o.output, o.overwrite, o.resume, o.overlay_max_side, o.progress, o.report, shards)
    skipped = f", {counts['skipped']} already done" if counts["skipped"] else ""
    say(
        f"Scanned {counts['photos'] - counts['errors']} photos ({counts['tiles']} tiles of {o.tile} px, stride "
        f"{stride}){skipped}: {counts['crack_photos']} with cracks, {not_scanned(counts)} (see photos.csv)."
    )
    say(f"Results in {o.output}: {TILES_CSV}, {PHOTOS_CSV}, {OVERLAYS}/" + (f", {MASKS}/" if o.masks else "")
        + (f", {REPORT} (open it in a browser)" if o.report else ""))
    if map_line(counts, TILES_GEOJSON):
        say(map_line(counts, TILES_GEOJSON))


def run_segmenter(o, segmenter, shards: Shards, workers: int, say) -> None:
    gpu = segmenter.device == "cuda"
    limits = numbers(o.width_limits_mm, "--width_limits_mm")
    with flags():
        task = scan_task(
            segmenter,
            threshold=o.threshold, low_threshold=o.low_threshold, mm_per_px=o.mm_per_px, scale=o.scale,
            marker_mm=o.marker_mm, min_area=o.min_area, width_limits_mm=limits,
            width_classes=tuple(c.strip() for c in o.width_classes.split(",")), window=o.window, overlap=o.overlap,
            batch_size=o.batch_size or (GPU_WINDOWS if gpu else DEFAULT_WINDOWS_PER_BATCH), max_pixels=o.max_pixels,
            workers=workers,
        )
    counts = scan_to_folder(task, o.input, o.output, o.overwrite, o.resume, o.overlay_max_side, o.progress, o.report, shards)
    skipped = f", {counts['skipped']} already done" if counts["skipped"] else ""
    say(f"Scanned {plural(counts['photos'] - counts['errors'], 'photo')}{skipped}: {plural(counts['cracks'], 'crack')} "
          f"in {plural(counts['crack_photos'], 'photo')}, {not_scanned(counts)} (see photos.csv).")
    say(f"Results in {o.output}: {CRACKS_CSV}, {PHOTOS_CSV}, {MASKS}/, {OVERLAYS}/"
        + (f", {REPORT} (open it in a browser)" if o.report else ""))
    if map_line(counts, CRACKS_GEOJSON):
        say(map_line(counts, CRACKS_GEOJSON))
