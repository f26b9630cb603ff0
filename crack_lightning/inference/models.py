"""Which model to run: the model shipped in the package (by name), a checkpoint of ``fit``, or an exported ``.onnx``;
a classifier or a segmenter, as the graph's metadata says.

A checkpoint is exported once: the graph is cached under the user cache directory, keyed by the checkpoint's
sha256, so later runs start without torch. The shipped model comes exported already.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crack_lightning.errors import CrackLightningError
from crack_lightning.inference.onnx_file import read_metadata, write_atomically

if TYPE_CHECKING:
    from crack_lightning.inference.classifier import Classifier
    from crack_lightning.inference.segmenter import Segmenter

MODELS_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
DEFAULT_MODEL = "concrete-v1"
CACHE_VERSION = "1"  # bumped when the exporter's graph changes, so that older cached graphs are not reused


@dataclass(frozen=True)
class ShippedModel:
    """A trained model inside the package: its checkpoint (for ``test``, ``fit --model.init_from``), its exported
    graph (for ``predict`` and ``scan``) and its card (``<name>.json``: data, training command, metrics)."""

    name: str

    @property
    def checkpoint(self) -> Path:
        return MODELS_DIR / f"{self.name}.ckpt"

    @property
    def graph(self) -> Path:
        return MODELS_DIR / f"{self.name}.onnx"

    @cached_property
    def card(self) -> dict[str, Any]:
        return json.loads((MODELS_DIR / f"{self.name}.json").read_text())

    def describe(self) -> str:
        return f"the shipped model {self.name} ({self.card.get('summary', 'crack classifier')})"


def shipped_models() -> dict[str, ShippedModel]:
    """The models shipped in the package, by name."""
    return {p.stem: ShippedModel(p.stem) for p in sorted(MODELS_DIR.glob("*.json"))}


def shipped_model(name: str) -> ShippedModel | None:
    """The shipped model called ``name``, or None when ``name`` is not one (a path, say)."""
    return shipped_models().get(name)


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """``$CRACK_LIGHTNING_CACHE``, else ``$XDG_CACHE_HOME/crack_lightning``, else ``~/.cache/crack_lightning``."""
    if os.environ.get("CRACK_LIGHTNING_CACHE"):
        return Path(os.environ["CRACK_LIGHTNING_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crack_lightning"


def exported_graph(checkpoint: str | os.PathLike, option: str = "model") -> tuple[bytes, str]:
    """``(graph, how)``: the checkpoint's exported graph from the cache, or exported now (this imports torch) and
    cached; ``how`` says which, for the log."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise CrackLightningError(f"{option}: no file {path}; pass a .ckpt written by `python -m crack_lightning fit`")
    cached = cache_dir() / "graphs" / f"{sha256_of(path)}-v{CACHE_VERSION}.onnx"
    if cached.is_file():
        return cached.read_bytes(), f"exported graph cached in {cached}"
    from crack_lightning.inference.export import export_checkpoint  # torch, once per checkpoint

    graph = export_checkpoint(path, option)
    try:
        write_atomically(cached, graph)
        how = f"exported once to {cached}"
    except OSError as err:  # a read-only home: run from memory, export again next time
        how = f"exported in memory (cannot write the cache {cached.parent}: {err.strerror})"
    return graph, how


def model_from_graph(graph: bytes, source: str, **options: Any):
    """The :class:`~crack_lightning.inference.classifier.Classifier` or
    :class:`~crack_lightning.inference.segmenter.Segmenter` that runs ``graph``, as its metadata's ``task`` says."""
    from crack_lightning.inference.classifier import Classifier
    from crack_lightning.inference.segmenter import Segmenter

    kind = Segmenter if read_metadata(graph).get("task") == "segmentation" else Classifier
    return kind(graph, source, **options)


def load_model(
    model: str | os.PathLike | None = None, option: str = "model", device: str = "cpu", **options: Any
) -> Classifier | Segmenter:
    """A torch-free model: a :class:`~crack_lightning.inference.classifier.Classifier`, or a
    :class:`~crack_lightning.inference.segmenter.Segmenter` when the graph's metadata says ``task: segmentation``.
    ``model`` is a shipped model's name (default: the shipped ``concrete-v1``), a checkpoint of ``fit``, or an
    ``.onnx`` written by ``export``.

    ``option`` names ``model`` in error messages (the CLI passes its flag); ``device``: ``cpu``, ``cuda`` (the
    checkpoint's network on the GPU through PyTorch, bf16; an ``.onnx`` needs its ``.ckpt`` beside it) or ``auto``
    (``cuda`` where PyTorch sees a GPU and there is a checkpoint to run, else ``cpu``: no torch imported without an
    NVIDIA driver); ``options``: ``backend``, ``precision``, ``tta``, ``threads`` of the model.
    """
    from crack_lightning.inference.cuda import checkpoint_beside, resolve_device

    asked, device = device, resolve_device(device)
    name = str(model) if model is not None else DEFAULT_MODEL
    shipped = shipped_model(name)
    path = Path(name).expanduser()
    if shipped is not None:
        graph, source, checkpoint = shipped.graph.read_bytes(), shipped.describe(), shipped.checkpoint
    elif path.suffix == ".onnx":
        if not path.is_file():
            raise CrackLightningError(f"{option}: no file {path}; pass an .onnx written by export, or a .ckpt")
        graph, source, checkpoint = path.read_bytes(), str(path), checkpoint_beside(path)
    elif device == "cuda":  # the checkpoint itself runs: no export, only its metadata
        from crack_lightning.inference.cuda import metadata_graph

        if not path.is_file():
            raise CrackLightningError(f"{option}: no file {path}; pass a .ckpt written by `python -m crack_lightning fit`")
        graph, source, checkpoint = metadata_graph(path, option), str(path), path
    else:
        graph, how = exported_graph(path, option)
        source, checkpoint = f"{path} ({how})", path
    if device == "cuda" and (checkpoint is not None or asked == "cuda"):
        options.update(device="cuda", checkpoint=checkpoint)
    return model_from_graph(graph, source, **options)
