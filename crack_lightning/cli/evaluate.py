"""``evaluate``: a segmenter's figures on photos with true masks, each photo scanned as ``scan`` scans it; without
torch. (A classifier is evaluated on patches by ``test``, through Lightning.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

from crack_lightning.api import evaluate, load_model
from crack_lightning.cli.options import CommandParser
from crack_lightning.cli.predict import model_options
from crack_lightning.errors import CrackLightningError, require_writable
from crack_lightning.evaluation.masked_photos import masked_photos
from crack_lightning.io.atomic import write_atomically
from crack_lightning.measure.measuring import Measuring
from crack_lightning.runtime.models import DEFAULT_SCAN_MODEL
from crack_lightning.scanning.options import DEFAULT_WINDOWS_PER_BATCH, GPU_WINDOWS

EVALUATE_OPTIONS = ("threshold", "low_threshold", "min_area", "window", "overlap", "batch_size")  # None: not given
FLAGS = {"model": "--ckpt_path", "source": "--input"}  # the library's names that are not the flag's (cli.main)


def parser() -> CommandParser:
    p = CommandParser(
        "evaluate",
        "Scan photos with true crack masks exactly as scan does (the segmenter's threshold, windows, post-processing "
        "and measuring) and print, for all photos and two halves of their groups: pixel precision, recall, F1 and "
        "IoU at the operating point, ODS F1, total crack length and mean width against the same measurement of the "
        "true masks. --output also writes them, with a row per photo, as JSON.",
    )
    model_options(p, DEFAULT_SCAN_MODEL)
    p.add_argument(
        "--input",
        type=str,
        required=True,
        help="A folder with images/NAME.jpg (any image type) and masks/NAME.png of the same size, grey above 127 = crack.",
    )
    p.add_argument(
        "--output",
        type=Optional[str],
        default=None,
        help="A JSON file for the figures, the settings and a row per photo.",
    )
    p.add_argument("--overwrite", type=bool, default=False, help="Replace an existing --output file.")
    p.add_argument(
        "--patches",
        type=Optional[str],
        default=None,
        help="A folder of patches without masks, Positive/ (crack) and Negative/ (sound): also the share of each in which a crack is found, with 95 percent Wilson intervals.",
    )
    p.add_argument(
        "--split_file",
        type=Optional[str],
        default=None,
        help="The split.csv of a segmenter's fit: only the photos of --split.",
    )
    p.add_argument("--split", type=str, default="val", help="Which split of --split_file to evaluate.")
    p.add_argument(
        "--limit",
        type=Optional[int],
        default=None,
        help="Only the first photos (and patches of each class), sorted by name.",
    )
    p.add_argument(
        "--threshold",
        type=Optional[float],
        default=None,
        help="As scan's: the crack probability from which a pixel is crack (default: the model's).",
    )
    p.add_argument(
        "--low_threshold",
        type=Optional[float],
        default=None,
        help="As scan's: hysteresis down to this probability (default: the model's).",
    )
    p.add_argument(
        "--min_area",
        type=Optional[int],
        default=None,
        help="As scan's: smallest crack kept, in both the scan's and the true masks (default: the model's, else "
        f"{Measuring.min_area}).",
    )
    p.add_argument(
        "--window", type=Optional[int], default=None, help="As scan's: window side in pixels (default: the model's)."
    )
    p.add_argument(
        "--overlap",
        type=Optional[int],
        default=None,
        help="As scan's: overlap of neighbouring windows (default: the model's).",
    )
    p.add_argument(
        "--batch_size",
        type=Optional[int],
        default=None,
        help=f"Windows per batch (default {DEFAULT_WINDOWS_PER_BATCH}, {GPU_WINDOWS} on a GPU).",
    )
    p.add_argument("--progress", type=bool, default=True, help="Show a progress bar.")
    return p


def run(argv: list[str]) -> None:
    o = parser().parse_args(argv)
    if o.output is not None:
        if Path(o.output).expanduser().exists() and not o.overwrite:
            raise CrackLightningError(f"--output: {o.output} exists; pass another file, or --overwrite true")
        require_writable(Path(o.output).expanduser().absolute().parent, "--output")
    masked_photos(o.input, o.split_file, o.split, o.limit)  # its problems before the model loads
    model = load_model(
        o.ckpt_path or DEFAULT_SCAN_MODEL, device=o.device, backend=o.backend, precision=o.precision, tta=o.tta
    )
    print(f"Model: {model.source}\nInference: {model.describe()}", file=sys.stderr)
    result = evaluate(
        o.input,
        model,
        o.patches,
        o.split_file,
        o.split,
        o.limit,
        o.progress,
        **{name: getattr(o, name) for name in EVALUATE_OPTIONS if getattr(o, name) is not None},
    )
    print(result.table())
    if o.output is not None:
        write_atomically(Path(o.output).expanduser(), json.dumps(result.to_dict(), indent=1) + "\n")
        print(f"Figures and a row per photo in {o.output}", file=sys.stderr)
