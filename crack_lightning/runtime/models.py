"""The model files: the models shipped in the package (by name: a classifier or a segmenter, each with its exported
graph, checkpoint and card), the cache of graphs exported from checkpoints (keyed by the checkpoint's sha256, so
later runs start without torch). :func:`crack_lightning.load_model` puts them together with the model that runs a
graph (:func:`crack_lightning.scanning.models.model_from_graph`)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from crack_lightning.io.atomic import write_atomically
from crack_lightning.tasks.registry import task_named

MODELS_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
DEFAULT_MODEL = "concrete-v1"  # predict, test, export: the shipped classifier
DEFAULT_SCAN_MODEL = "concrete-seg-v2"  # load_model, scan: the shipped segmenter measures cracks; concrete-v1 tiles
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
        what = task_named(self.card.get("task")).what
        return f"the shipped model {self.name} ({self.card.get('summary', what)})"


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


def file_records(*paths: Path) -> dict[str, dict[str, Any]]:
    """A model card's ``files``: each shipped file's sha256 and size, by name (checked by the tests of the models)."""
    return {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size} for p in paths}


def cache_dir() -> Path:
    """``$CRACK_LIGHTNING_CACHE``, else ``$XDG_CACHE_HOME/crack_lightning``, else ``~/.cache/crack_lightning``."""
    if os.environ.get("CRACK_LIGHTNING_CACHE"):
        return Path(os.environ["CRACK_LIGHTNING_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crack_lightning"


def cached_graph_path(checkpoint: Path) -> Path:
    """Where the graph exported from ``checkpoint`` is cached."""
    return cache_dir() / "graphs" / f"{sha256_of(checkpoint)}-v{CACHE_VERSION}.onnx"


def cache_graph(path: Path, graph: bytes) -> str:
    """Store an exported graph at ``path`` in the cache; returns how, for the log."""
    try:
        write_atomically(path, graph)
        return f"exported once to {path}"
    except OSError as err:  # a read-only home: run from memory, export again next time
        return f"exported in memory (cannot write the cache {path.parent}: {err.strerror})"
