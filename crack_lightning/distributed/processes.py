"""The processes of ``scan --devices N`` (and ``crack_lightning.scan(..., devices=N)``), launched by Lightning
Fabric's ``ddp`` strategy as Lightning's predict launches its own: the command (or script) starts again in each
process, each with its share of the CPU cores and, with ``--device cuda``, a GPU (shared round-robin), and they
talk over torch.distributed (gloo). What they tell each other is :class:`~crack_lightning.scanning.shards.Shards`'s.
"""

from __future__ import annotations

import torch
from lightning.fabric import Fabric

from crack_lightning.options import at_least
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
    process's place. With ``device`` ``cuda`` the processes share this machine's GPUs round-robin: more processes than
    GPUs keep a GPU busy while each process decodes, measures and draws its own photos on its own CPU cores."""
    at_least("devices", devices)
    at_least("num_nodes", num_nodes)
    # The processes only tell each other which photos are done, a barrier and their counts: gloo on the CPU does
    # that also between GPU processes, and leaves them free to share a GPU (NCCL wants one GPU a process).
    fabric = Fabric(accelerator="cpu", devices=devices, num_nodes=num_nodes, strategy="ddp")
    fabric.launch()
    if device == "cuda":
        torch.cuda.set_device(fabric.local_rank % torch.cuda.device_count())
    return FabricShards(fabric)


def threads_per_process(devices: int) -> int:
    """A CPU process's runtime threads when ``devices`` processes share this machine's cores."""
    return max(1, cpu_count() // devices)
