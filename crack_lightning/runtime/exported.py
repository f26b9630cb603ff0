"""What every exported model shares: its graph, its metadata, and a runtime session made on first use."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crack_lightning.errors import CrackLightningError
from crack_lightning.runtime.backends import RUNTIME_NAMES, Session, choose_backend, open_session, resolve_precision
from crack_lightning.runtime.onnx_file import read_metadata

TTA = ("none", "hflip", "flips")  # flips: the input and its left-right, top-bottom and both mirror images


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
    """

    def __init__(
        self, graph: bytes, source: str = "", backend: str = "auto", precision: str = "32", tta: str = "none",
        threads: int | None = None,
    ) -> None:
        if tta not in TTA:
            raise CrackLightningError(f"tta={tta!r}: pass one of {', '.join(TTA)}")
        self.graph, self.source, self.metadata = graph, source, read_metadata(graph)
        self.tta, self.threads, self.precision = tta, threads, resolve_precision(precision)
        self.backend, self.backend_reason = choose_backend(backend, self.precision)
        self._session: Session | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike, **options):
        """Load an ``.onnx`` file written by ``export`` (or the checkpoint cache)."""
        return cls(Path(path).read_bytes(), str(path), **options)

    def details(self) -> str:
        """More for :meth:`describe`, after the runtime (", windows of 512 px")."""
        return ""

    def describe(self) -> str:
        """One line: which runtime computes what, for the log."""
        mirrored = {"hflip": ", averaged with the mirror image", "flips": ", averaged with the three mirror images"}.get(self.tta, "")
        return f"{RUNTIME_NAMES[self.backend]} ({self.backend_reason}){self.details()}{mirrored}"

    def session(self) -> Session:
        if self._session is None:
            self._session = open_session(self.graph, self.backend, self.precision, self.threads)
        return self._session

    def run_both(self, batch: np.ndarray) -> np.ndarray:
        """The graph's output for ``batch`` followed by its output for the mirrored batch, in one run."""
        return self.session()(np.ascontiguousarray(np.concatenate([batch, batch[..., ::-1]])))
