"""The one scan pipeline: every photo of a source through a task (a classifier's tile maps or a segmenter's crack
masks) into an output folder: its two CSV files, pictures, ``scan.json`` and ``report.html``, locked while it runs,
resumable when cut short (:class:`~crack_lightning.scanning.folder.ScanFolder`); shared out across processes with
:mod:`crack_lightning.scanning.shards`."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TypeVar

from crack_lightning.errors import CrackLightningError, OptionError, SharedError
from crack_lightning.io.images import count_reasons, skip_reason
from crack_lightning.io.scan_files import MAX_SIDE, REPORT, find_photos, picture_names
from crack_lightning.io.threads import WriteBehind
from crack_lightning.report.pages import write_report
from crack_lightning.scanning.folder import ScanFolder
from crack_lightning.scanning.geojson import map_counts, write_geojson
from crack_lightning.scanning.shards import ONE_PROCESS, Shards, merge_parts, open_part
from crack_lightning.scanning.tasks import ScanTask

T = TypeVar("T")


def from_first(shards: Shards, make: Callable[[], T]) -> T:
    """``make()`` run by the first process, its value in every process; its error (a
    :class:`~crack_lightning.errors.CrackLightningError`) raised in every process, printed by the first only."""
    value, error = None, None
    if shards.rank == 0:
        try:
            value = make()
        except CrackLightningError as err:
            if shards.world_size == 1:
                raise
            error = err
    kind, answer = shards.broadcast(("error", str(error)) if error else ("value", value))
    if error:
        raise error
    if kind == "error":
        raise SharedError(answer)
    return answer


def scan_to_folder(
    task: ScanTask,
    source: str | os.PathLike,
    output: str | os.PathLike,
    overwrite: bool = False,
    resume: bool = False,
    overlay_max_side: int = MAX_SIDE,
    progress: bool = True,
    report: bool = True,
    shards: Shards = ONE_PROCESS,
) -> dict[str, int]:
    """Every photo of ``source`` (a photo, a folder searched recursively, or a ``.txt`` list) into ``output``;
    returns counts of photos, those ``skipped`` (done before, with ``resume``), the task's unit (tiles or cracks),
    photos with cracks and errors (also by reason: ``unsupported type``, ``unreadable``, ``too large``), and of the
    georeferenced photos in ``tiles.geojson`` / ``cracks.geojson`` (``mapped``, ``map_left_out``).

    ``output`` is locked while the scan runs: a second scan of the same folder stops with an error. ``report``
    writes ``report.html`` from ``photos.csv`` at the end, so it lists every photo scanned so far, resumed or not
    (a page already there is brought up to date also without ``report``). ``shards``: this process's place among
    several sharing the photos (:mod:`crack_lightning.scanning.shards`); each scans its share, the first writes the
    CSV files, report and maps of all, as one process would, and every process returns the same counts.
    """
    from tqdm.auto import tqdm

    def listed() -> list[tuple[str, Path]]:
        photos = list(dict(find_photos(source)).items())  # a name listed twice is scanned once
        if not photos:
            raise OptionError("source", f"no images found in {source}")
        return photos

    # Every process scans from the first one's list: a folder listed by each could change while they start (this
    # scan's own --output inside --input appears).
    photos = from_first(shards, listed)
    settings = {"input": str(Path(source).expanduser().absolute()), **task.settings()}
    folder = None

    def opened() -> set[str]:  # the lock, the checks, what a resumed scan has done
        nonlocal folder
        folder = ScanFolder(
            output,
            settings,
            task.details_csv,
            task.result,
            task.same_scan,
            overwrite,
            resume,
            task.masks,
            overlay_max_side,
        )
        return folder.done

    done = from_first(shards, opened)
    with folder or nullcontext():
        out = Path(output).expanduser()
        names = picture_names([name for name, _ in photos] + list(done))
        todo = [(name, path) for name, path in photos if name not in done]
        counts = {"photos": 0, "skipped": 0, task.unit: 0, "crack_photos": 0, "errors": 0, **count_reasons([])}
        rows = (
            folder
            if shards.world_size == 1
            else open_part(out, task.details_csv, shards.rank, overlay_max_side, task.masks)
        )
        task.preview_side = overlay_max_side  # an orthomosaic is drawn from a copy this long, never decoded whole
        task.background = True
        mine = shards.share(todo)
        bar = tqdm(
            total=len(mine),
            unit="photo",
            disable=not progress or shards.rank > 0,
            dynamic_ncols=True,
            desc=f"process 1 of {shards.world_size} (its share)" if shards.world_size > 1 else None,
        )
        try:
            with WriteBehind(rows.write) as behind:  # a photo's pictures are written while the next one is made
                for result in task.results(mine):
                    behind.submit(result, names[result.name])  # its pictures are drawn while it finishes
                    result.finish()
                    counts["photos"] += 1
                    counts[task.unit] += task.count(result)
                    counts["crack_photos"] += task.cracked(result)
                    counts["errors"] += bool(result.error)
                    if result.error:  # by reason, for the summary line
                        counts[skip_reason(result.error)] += 1
                    bar.update(1)
                    bar.set_postfix({task.unit: counts[task.unit]})
                    del result  # the writer holds it until written
        finally:
            bar.close()
            if rows is not folder:
                rows.close()
        counts = {**shards.sum(counts), "skipped": len(photos) - len(todo)}
        shards.barrier()  # every part written
        if folder is not None:
            if shards.world_size > 1:
                merge_parts(
                    out,
                    task.details_csv,
                    folder.detail_columns,
                    folder.photo_columns,
                    {name: i for i, (name, _) in enumerate(photos)},
                )
            folder.finish()
            if report or (out / REPORT).exists():  # a page of an earlier run is kept in step with photos.csv
                write_report(out, task.page, dict(photos))
            counts.update(
                map_counts(*write_geojson(out, dict(photos), task.details_csv, task.geojson, task.map_feature))
            )
        return shards.broadcast(counts)
