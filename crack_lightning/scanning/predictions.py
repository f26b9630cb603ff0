"""``predict``'s CSV without torch: one row per image (path, label, crack probability, each class's probability,
error), written to a temporary file that replaces the output only once every image is done."""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from crack_lightning.errors import OptionError, require_writable
from crack_lightning.io.atomic import replacing
from crack_lightning.io.images import MAX_PIXELS, find_images
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD, check_threshold, decide_labels
from crack_lightning.scanning.options import DEFAULT_BATCH

if TYPE_CHECKING:
    from crack_lightning.runtime.classifier import Classifier

PREDICTIONS_CSV = "predictions.csv"


def header(class_names: Sequence[str]) -> list[str]:
    return ["path", "label", "crack_probability", *(f"probability_{c}" for c in class_names), "error"]


def format_row(path: str, label: str, probabilities: Sequence[float], crack_index: int, error: str = "") -> list[str]:
    """One CSV row; an unreadable image has its error and empty values."""
    if error:
        return [path, "", "", *([""] * len(probabilities)), error]
    return [path, label, f"{probabilities[crack_index]:.6f}", *(f"{p:.6f}" for p in probabilities), ""]


def process_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_partials(output: Path) -> list[Path]:
    """Remove ``<output>.<pid>.partial`` files left by a killed run (their pid is no longer alive); returns them."""
    removed = []
    for partial in output.parent.glob(f"{glob.escape(output.name)}.*.partial"):
        pid = partial.name[len(output.name) + 1 : -len(".partial")]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            partial.unlink(missing_ok=True)
            removed.append(partial)
    return removed


def predict_to_csv(
    classifier: Classifier,
    source: str | os.PathLike,
    output: str | os.PathLike = PREDICTIONS_CSV,
    threshold: float = DEFAULT_THRESHOLD,
    overwrite: bool = False,
    batch_size: int = DEFAULT_BATCH,
    max_pixels: int | None = MAX_PIXELS,
    option: str = "source",
    workers: int = 2,
) -> dict[str, int]:
    """Classify every image of ``source`` (folder, image or ``.txt`` list) into the CSV ``output``; returns counts.
    ``option`` names ``source`` in error messages; ``workers``: threads decoding images while the network runs.

    The output appears whole when every image is done (an interrupted run leaves the previous file, or none).
    """
    check_threshold(threshold)
    output = Path(output).expanduser()
    require_writable(output.absolute().parent, "output")
    if output.exists() and not overwrite:
        raise OptionError("output", f"{output} exists; pass another file, or overwrite it")
    paths = find_images(source, option)
    if not paths:
        raise OptionError(option, f"no images found in {source}")
    if output.parent.is_dir():
        remove_stale_partials(output)
    names = classifier.class_names
    counts = {"images": len(paths), "cracks": 0, "errors": 0}
    try:
        with replacing(output) as partial, open(partial, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header(names))
            for indices, probabilities, errors in classifier.predict_batches(paths, batch_size, max_pixels, workers):
                labels = decide_labels(probabilities, names, classifier.crack_index, threshold)
                rows = {
                    i: format_row(str(paths[i]), label, p, classifier.crack_index)
                    for i, label, p in zip(indices, labels, probabilities.tolist())
                }
                rows.update({i: format_row(str(paths[i]), "", [0.0] * len(names), 0, e) for i, e in errors.items()})
                writer.writerows(rows[i] for i in sorted(rows))
                counts["cracks"] += labels.count(classifier.crack_class)
                counts["errors"] += len(errors)
    except OSError as err:
        raise OptionError("output", f"cannot write {output} ({err.strerror}); pass a writable path") from err
    return counts
