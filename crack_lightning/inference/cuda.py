"""``--device``: the network on a CUDA GPU through PyTorch (bf16), for ``predict`` and ``scan``.

The CPU path stays torch-free: torch is imported only once a CUDA device is asked for, or when ``auto`` finds an
NVIDIA driver. A GPU session is a drop-in for a CPU runtime's: ``uint8`` NumPy batch in, float32 NumPy out, the same
network as the exported graph (the checkpoint's LightningModule, normalisation and softmax or sigmoid included), so
the probabilities match the CPU path's within bf16's rounding.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.inference.backends import Session

DEVICES = ("auto", "cpu", "cuda")


def nvidia_driver() -> bool:
    """Whether an NVIDIA driver is loaded, read without importing torch (Linux: its /proc and /dev entries)."""
    if os.name == "nt":
        return True  # no cheap test there: let torch answer
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidiactl").exists()


def cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA device; torch is not imported where no NVIDIA driver is."""
    if importlib.util.find_spec("torch") is None or not nvidia_driver():
        return False
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``: ``auto`` is ``cuda`` where PyTorch sees a CUDA device; one-line errors for the rest."""
    if device not in DEVICES:
        raise CrackLightningError(f"--device: {device!r}; pass one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if device == "cuda":
        raise CrackLightningError("--device cuda: PyTorch sees no CUDA GPU on this machine; pass --device cpu or auto")
    return "cpu"


def checkpoint_beside(graph: Path) -> Path | None:
    """The checkpoint an exported graph came from, where it lies beside it (``m.onnx`` -> ``m.ckpt``)."""
    candidate = graph.with_suffix(".ckpt")
    return candidate if candidate.is_file() else None


def metadata_graph(checkpoint: str | os.PathLike, option: str = "--ckpt_path") -> bytes:
    """The metadata a checkpoint's exported graph would carry, with no graph: what ``device: cuda`` needs of a ``.ckpt``
    (it runs the checkpoint itself), without exporting it (no ONNX exporter needed on a GPU machine)."""
    from crack_lightning.checkpoints import SEGMENTATION, checkpoint_task, load_checkpoint, load_segmenter
    from crack_lightning.inference.export import classifier_metadata, segmenter_metadata
    from crack_lightning.inference.onnx_file import with_metadata

    if checkpoint_task(checkpoint) == SEGMENTATION:
        return with_metadata(b"", segmenter_metadata(load_segmenter(checkpoint, option)))
    return with_metadata(b"", classifier_metadata(load_checkpoint(checkpoint, option)))


def torch_session(
    checkpoint: str | os.PathLike, device: str = "cuda", precision: str = "bf16", option: str = "--ckpt_path"
) -> tuple[Session, str]:
    """``(run, why)``: ``run(uint8 (N, 3, H, W)) -> float32`` probabilities of the checkpoint's network on ``device``
    (``cuda``; ``cpu`` for tests), as its exported graph answers (class probabilities, or pixel probabilities
    ``(N, 1, H, W)``); ``why`` names the precision and the GPU, for the log.

    ``precision``: ``bf16`` (CUDA autocast; the normalisation and the softmax or sigmoid stay float32) or ``32``.
    """
    import torch

    from crack_lightning.checkpoints import SEGMENTATION, checkpoint_task, load_checkpoint, load_segmenter
    from crack_lightning.inference.export import Normalised

    if checkpoint_task(checkpoint) == SEGMENTATION:
        model = load_segmenter(checkpoint, option)
        network = Normalised(model.net, model.hparams.mean, model.hparams.std, activation="sigmoid")
    else:
        model = load_checkpoint(checkpoint, option)
        _, mean, std = model.preprocessing
        network = Normalised(model.network(), mean, std)
    cuda = device == "cuda"
    target = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device(device)
    network = network.to(target).eval().requires_grad_(False).to(memory_format=torch.channels_last)
    bf16 = cuda and precision != "32" and torch.cuda.is_bf16_supported()
    if cuda:
        torch.backends.cudnn.benchmark = True  # a scan repeats a few input shapes: cuDNN's search pays off

    def run(batch: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(np.ascontiguousarray(batch))
        if cuda:  # pinned: the copy to the GPU runs without the CPU waiting on it
            images = images.pin_memory().to(target, non_blocking=True)
        with torch.inference_mode(), torch.autocast(target.type, dtype=torch.bfloat16, enabled=bf16):
            out = network(images.contiguous(memory_format=torch.channels_last))
        return out.float().cpu().numpy()

    name = torch.cuda.get_device_name(target) if cuda else "the CPU (PyTorch)"
    return run, f"{'bf16' if bf16 else 'float32'} on {name}"
