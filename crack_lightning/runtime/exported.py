"""What every exported model shares: its graph, its metadata, and a runtime session made on first use."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from crack_lightning.errors import CrackLightningError, OptionError
from crack_lightning.runtime.backends import RUNTIME_NAMES, Session, choose_backend, open_session, resolve_precision
from crack_lightning.runtime.onnx_file import read_metadata


def cuda_precision(precision: str) -> str:
    """A GPU's precision: ``32``, else ``bf16`` (``auto`` included); a one-line error for anything else."""
    resolve_precision(precision)  # the same one-line error for a wrong value
    return "32" if precision == "32" else "bf16"


# Test-time augmentation, the one vocabulary of predict, scan and test: each value's mirror images, as the axes of an
# (N, C, H, W) batch that are flipped (hflip: left-right; flips: left-right, top-bottom and both).
MIRRORS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "hflip": ((), (3,)),
    "flips": ((), (3,), (2,), (2, 3)),
}
TTA = tuple(MIRRORS)
Run = Callable[[np.ndarray], np.ndarray]


def mirrored_mean(run: Run, batch: np.ndarray, tta: str, spatial: bool = False) -> np.ndarray:
    """``run(batch)`` averaged over ``batch``'s mirror images (``tta``). Per-image outputs (class probabilities) come
    from one run of every view together; ``spatial`` outputs (per-pixel maps) are mirrored back, and run one view
    at a time, so that memory stays that of one view."""
    views = MIRRORS[tta]
    if len(views) == 1:
        return run(np.ascontiguousarray(batch))
    if not spatial:
        together = np.concatenate([np.flip(batch, axes) if axes else batch for axes in views])
        return run(np.ascontiguousarray(together)).reshape(len(views), len(batch), -1).mean(axis=0)
    total = None
    for axes in views:
        answer = np.asarray(run(np.ascontiguousarray(np.flip(batch, axes))), dtype=np.float32)
        answer = np.flip(answer, axes) if axes else answer
        total = answer.copy() if total is None else total + answer
    return total / len(views)


class ExportedModel:
    """An exported graph run by ONNX Runtime or OpenVINO.

    Args:
        graph: The ONNX graph (bytes) written by :mod:`crack_lightning.export.onnx`.
        source: What it was loaded from, for log lines.
        backend: ``auto``, ``onnxruntime`` or ``openvino`` (see :func:`~crack_lightning.runtime.backends.choose_backend`).
        precision: ``32``; ``bf16`` (OpenVINO's bf16 where the CPU computes it natively, about 1.5-2x faster,
            probabilities within about 0.01); ``auto``: ``bf16`` where the CPU computes it natively, else ``32``.
        tta: ``hflip`` averages each input's probabilities with its mirror image's (twice the compute); ``flips`` with
            its three mirror images (left-right, top-bottom, both; four times the compute).
        threads: Threads of the runtime; ``None``: one per core.
        device: ``cpu`` (the runtimes above) or ``cuda``: ``session`` runs the checkpoint's network on the GPU
            (:mod:`crack_lightning.export.gpu`), bf16 unless ``precision`` is ``32``; ``backend`` is unused then.
        checkpoint: The checkpoint the graph came from (``device: cuda`` runs it instead of the graph).
        session: ``(run, why)`` of ``device: cuda``, made by :func:`crack_lightning.load_model`.
    """

    def __init__(
        self,
        graph: bytes,
        source: str = "",
        backend: str = "auto",
        precision: str = "32",
        tta: str = "none",
        threads: int | None = None,
        device: str = "cpu",
        checkpoint: str | os.PathLike | None = None,
        session: tuple[Session, str] | None = None,
    ) -> None:
        if tta not in TTA:
            raise OptionError("tta", f"{tta!r}; pass one of {', '.join(TTA)}")
        self.graph, self.source, self.metadata = graph, source, read_metadata(graph)
        self.tta, self.threads, self.device, self.checkpoint = tta, threads, device, checkpoint
        self._session: Session | None = None
        self._opening = threading.Lock()
        if device == "cuda":
            if session is None:
                raise CrackLightningError(
                    f"{source}: device cuda needs its session; load it with crack_lightning.load_model"
                )
            self.precision = cuda_precision(precision)
            self._session, why = session
            self.backend, self.backend_reason = "cuda", why
            return
        self.precision = resolve_precision(precision)
        self.backend, self.backend_reason = choose_backend(backend, self.precision)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **options):
        """Load an ``.onnx`` file written by ``export`` (or the checkpoint cache)."""
        return cls(Path(path).read_bytes(), str(path), **options)

    def details(self) -> str:
        """More for :meth:`describe`, after the runtime (", windows of 512 px")."""
        return ""

    def describe(self) -> str:
        """One line: which runtime computes what, for the log."""
        mirrored = {
            "hflip": ", averaged with the mirror image",
            "flips": ", averaged with the three mirror images",
        }.get(self.tta, "")
        return f"{RUNTIME_NAMES[self.backend]} ({self.backend_reason}){self.details()}{mirrored}"

    def session(self) -> Session:
        """The runtime's session, opened on first use; one for every thread (the lock keeps threads that start
        together from each opening one)."""
        if self._session is None:
            with self._opening:
                if self._session is None:
                    self._session = open_session(self.graph, self.backend, self.precision, self.threads)
        return self._session
