"""A scan shared out across processes (``scan --devices N``): which photos each process scans, the part files it
writes its rows to, and how the first process folds every part into the one ``photos.csv`` and details CSV, in the
order a single process writes them. Pictures need no folding: each process saves its own photos' pictures.

The processes themselves are launched by Lightning (:mod:`crack_lightning.distributed.processes`); this module
knows them only through :class:`Shards`, and imports no torch.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from crack_lightning.io.atomic import replacing
from crack_lightning.io.scan_files import PHOTOS_CSV, read_photo_rows
from crack_lightning.scanning.result_writer import ResultWriter, cut_partial_line

T = TypeVar("T")


class Shards:
    """A process's place among a scan's processes and what they tell each other. This base class is the one process
    of an ordinary scan; :class:`crack_lightning.distributed.processes.FabricShards` is one of several."""

    rank = 0
    world_size = 1

    def barrier(self) -> None:
        """Wait until every process gets here."""

    def broadcast(self, value: Any) -> Any:
        """The first process's ``value``, in every process."""
        return value

    def sum(self, counts: dict[str, int]) -> dict[str, int]:
        """``counts`` added up over the processes (the same keys in each)."""
        return counts

    def share(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items``: every ``world_size``-th, so that large and small photos spread evenly."""
        return list(items[self.rank :: self.world_size])


ONE_PROCESS = Shards()


def part_path(folder: Path, name: str, rank: int) -> Path:
    """The hidden file where process ``rank`` writes the rows meant for ``folder/name``."""
    return folder / f".{name}.rank{rank}.part"


def part_ranks(folder: Path) -> list[int]:
    """The ranks whose ``photos.csv`` parts lie in ``folder`` (a scan across processes, running or killed)."""
    found = (
        p.name.removeprefix(f".{PHOTOS_CSV}.rank").removesuffix(".part")
        for p in folder.glob(f".{PHOTOS_CSV}.rank*.part")
    )
    return sorted(int(rank) for rank in found if rank.isdigit())


def open_part(folder: Path, details_csv: str, rank: int, overlay_max_side: int, masks: bool) -> ResultWriter:
    """A writer of process ``rank``'s rows into its part files (appended to: a killed run's complete rows stay)."""
    opened = [open(part_path(folder, name, rank), "a", newline="") for name in (details_csv, PHOTOS_CSV)]
    return ResultWriter(folder, *opened, overlay_max_side=overlay_max_side, masks=masks)


def complete_rows(path: Path, width: int) -> list[list[str]]:
    """The rows of a CSV part with ``width`` fields, a last line cut short by a kill dropped first."""
    if not path.is_file():
        return []
    cut_partial_line(path)
    with open(path, newline="") as f:
        return [row for row in csv.reader(f) if len(row) == width]


def rows_of(path: Path, width: int, photos: set[str], skip_header: Sequence[str] | None = None) -> Iterator[list[str]]:
    """The rows of the CSV ``path`` with ``width`` fields whose photo (first field) is in ``photos``, streamed."""
    if not path.is_file():
        return
    header = list(skip_header or ())
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if len(row) == width and row[0] in photos and row != header:
                yield row


def merge_parts(
    folder: Path,
    details_csv: str,
    detail_columns: Sequence[str],
    photo_columns: Sequence[str],
    order: dict[str, int] | None = None,
) -> int:
    """Fold the part files in ``folder`` into ``photos.csv`` and ``details_csv``; returns the photos folded in.

    A photo counts when its row is in a part (its detail rows come before it); its rows in a part replace any it
    has in the main files, so a merge cut short and run again gives the same files. ``order``: each photo's place
    in the scan's photo list, by which every row is sorted (as one process writes them); ``None`` appends the parts'
    photos after the main files' in rank order (a resume, which sorts nothing).
    """
    ranks = part_ranks(folder)
    if not ranks:
        return 0
    parts = [complete_rows(part_path(folder, PHOTOS_CSV, rank), len(photo_columns)) for rank in ranks]
    from_parts = [{row[0] for row in rows} for rows in parts]
    folded = set().union(*from_parts)
    main = [list(row.values()) for row in read_photo_rows(folder, list(photo_columns)) if row["photo"] not in folded]
    kept = {row[0] for row in main}

    def key(row: list[str]) -> int:
        return 0 if order is None else order.get(row[0], len(order))

    details: list[Iterable[list[str]]] = [rows_of(folder / details_csv, len(detail_columns), kept, detail_columns)]
    details += [
        rows_of(part_path(folder, details_csv, rank), len(detail_columns), done)
        for rank, done in zip(ranks, from_parts)
    ]
    # Details first, photos.csv last: a kill between the two leaves the parts, and the next merge replaces the rows.
    for name, columns, sources in ((details_csv, detail_columns, details), (PHOTOS_CSV, photo_columns, [main, *parts])):
        with replacing(folder / name, hidden=True) as partial, open(partial, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(heapq.merge(*(sorted(s, key=key) if isinstance(s, list) else s for s in sources), key=key))
    for rank in ranks:
        for name in (details_csv, PHOTOS_CSV):
            part_path(folder, name, rank).unlink(missing_ok=True)
    return len(folded)
