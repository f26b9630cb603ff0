"""The processes of ``scan --devices N`` (and ``crack_lightning.scan(..., devices=N)``), launched by Lightning
Fabric's ``ddp`` strategy as Lightning's predict launches its own: the command (or script) starts again in one
process per device, each on its own GPU or with its share of the CPU cores, and they talk over torch.distributed
(NCCL on GPUs, gloo on CPUs). What they tell each other is :class:`~crack_lightning.scanning.shards.Shards`'s.
"""

from __future__ import annotations

import torch
from lightning.fabric import Fabric

from crack_lightning.errors import CrackLightningError
from crack_lightning.runtime.backends import cpu_count
from crack_lightning.scanning.shards import Shards


class FabricShards(Shards):
    """This process's place among Fabric's processes."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric
        self.rank, self.world_size = fabric.global_rank, fabric.world_size

    def barrier(self) -> None:
        self.fabric.barrier()

    def broadcast(self, value):
        return self.fabric.broadcast(value, src=0)

    def sum(self, counts: dict[str, int]) -> dict[str, int]:
        keys = sorted(counts)
        values = torch.tensor([counts[k] for k in keys], dtype=torch.int64, device=self.fabric.device)
        return dict(zip(keys, self.fabric.all_reduce(values, reduce_op="sum").tolist()))


def launch(device: str, devices: int, num_nodes: int = 1) -> FabricShards:
    """Start ``devices`` processes on each of ``num_nodes`` machines (this one becomes the first) and return this
    process's place: ``device`` ``cuda`` puts one on each GPU (``devices`` at most the GPUs), ``cpu`` shares the
    cores out."""
    if devices < 1 or num_nodes < 1:
        raise CrackLightningError(f"--devices {devices}, --num_nodes {num_nodes}: pass 1 or more of each")
    if device == "cuda" and devices > torch.cuda.device_count():
        raise CrackLightningError(
            f"--devices {devices}: this machine has {torch.cuda.device_count()} GPUs; pass at most that many"
        )
    fabric = Fabric(
        accelerator="cuda" if device == "cuda" else "cpu", devices=devices, num_nodes=num_nodes, strategy="ddp"
    )
    fabric.launch()
    return FabricShards(fabric)


def threads_per_process(devices: int) -> int:
    """A CPU process's runtime threads when ``devices`` processes share this machine's cores."""
    return max(1, cpu_count() // devices)
