"""Processes for a scan across GPUs, CPU processes or nodes, launched by Lightning. Importing this package brings no
torch: a scan in one process never needs it (:mod:`crack_lightning.distributed.processes` does)."""

from __future__ import annotations

from crack_lightning.scanning.shards import ONE_PROCESS, Shards


def start_processes(device: str, devices: int = 1, num_nodes: int = 1) -> tuple[Shards, int | None]:
    """This process's place among ``devices`` processes on each of ``num_nodes`` machines, launched here when that is
    more than one (``device``: ``auto``, ``cpu`` or ``cuda``), and the runtime threads each may use (``None``: all of
    them, the one process of an ordinary scan)."""
    if not (devices > 1 or num_nodes > 1):
        return ONE_PROCESS, None
    from crack_lightning.distributed.processes import launch, threads_per_process  # torch and Lightning
    from crack_lightning.runtime.cuda import resolve_device

    return launch(resolve_device(device), devices, num_nodes), threads_per_process(devices)
