"""The one scan pipeline: every photo of a source through a task (a classifier's tile maps or a segmenter's crack
masks) into an output folder: its two CSV files, pictures, ``scan.json`` and ``report.html``, locked while it runs,
resumable when cut short (:class:`~crack_lightning.scanning.folder.ScanFolder`)."""

from __future__ import annotations

import os
from pathlib import Path

from crack_lightning.errors import CrackLightningError
from crack_lightning.io.images import count_reasons, skip_reason
from crack_lightning.io.scan_files import REPORT, find_photos, picture_names
from crack_lightning.report.pages import write_report
from crack_lightning.scanning.folder import ScanFolder
from crack_lightning.scanning.geojson import map_counts, write_geojson
from crack_lightning.scanning.tasks import ScanTask


def scan_to_folder(
    task: ScanTask,
    source: str | os.PathLike,
    output: str | os.PathLike,
    overwrite: bool = False,
    resume: bool = False,
    overlay_max_side: int = 4096,
    progress: bool = True,
    report: bool = True,
) -> dict[str, int]:
    """Every photo of ``source`` (a photo, a folder searched recursively, or a ``.txt`` list) into ``output``;
    returns counts of photos, those ``skipped`` (done before, with ``resume``), the task's unit (tiles or cracks),
    photos with cracks and errors (also by reason: ``unsupported type``, ``unreadable``, ``too large``), and of the
    georeferenced photos in ``tiles.geojson`` / ``cracks.geojson`` (``mapped``, ``map_left_out``).

    ``output`` is locked while the scan runs: a second scan of the same folder stops with an error. ``report``
    writes ``report.html`` from ``photos.csv`` at the end, so it lists every photo scanned so far, resumed or not
    (a page already there is brought up to date also without ``report``).
    """
    from tqdm.auto import tqdm

    photos = list(dict(find_photos(source)).items())  # a name listed twice is scanned once
    if not photos:
        raise CrackLightningError(f"--input: no images found in {source}")
    settings = {"input": str(Path(source).expanduser().absolute()), **task.settings()}
    with ScanFolder(
        output, settings, task.details_csv, task.result, task.same_scan, overwrite, resume, task.masks, overlay_max_side
    ) as writer:
        names = picture_names([name for name, _ in photos] + list(writer.done))
        todo = [(name, path) for name, path in photos if name not in writer.done]
        counts = {
            "photos": 0,
            "skipped": len(photos) - len(todo),
            task.unit: 0,
            "crack_photos": 0,
            "errors": 0,
            **count_reasons([]),
        }
        task.preview_side = overlay_max_side  # an orthomosaic is drawn from a copy this long, never decoded whole
        bar = tqdm(total=len(todo), unit="photo", disable=not progress, dynamic_ncols=True)
        try:
            for result in task.results(todo):
                writer.write(result, names[result.name])
                result.image = None
                counts["photos"] += 1
                counts[task.unit] += task.count(result)
                counts["crack_photos"] += task.cracked(result)
                counts["errors"] += bool(result.error)
                if result.error:  # by reason, for the summary line
                    counts[skip_reason(result.error)] += 1
                bar.update(1)
                bar.set_postfix({task.unit: counts[task.unit]})
        finally:
            bar.close()
        writer.finish()
        if report or (writer.dir / REPORT).exists():  # a page of an earlier run is kept in step with photos.csv
            write_report(writer.dir, task.page, dict(photos))
        counts.update(map_counts(*write_geojson(writer.dir, dict(photos), task.details_csv)))
    return counts
