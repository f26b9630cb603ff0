"""The Python API: load a model, predict patches, scan photos; the commands are a thin layer over it. No torch
(except to export a checkpoint once).

    import crack_lightning
    model = crack_lightning.load_model()              # shipped segmenter; or a name, a .ckpt of fit, an .onnx
    result = model.scan("photo.jpg")                  # one photo: CrackMap (segmenter) or TileMap (classifier)
    crack_lightning.load_model("concrete-v1").predict(["a.jpg", "b.jpg"]).labels   # patches: the classifier
    result.summary, result.plot(), result.save("out")
    crack_lightning.scan("photos/", "results/", model=model)   # a folder: CSVs, pictures, report.html
    crack_lightning.evaluate("masked/").table()        # a segmenter on photos with true masks, scanned as scan does
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crack_lightning.errors import OptionError, require_writable
from crack_lightning.io.scan_files import MAX_SIDE
from crack_lightning.options import at_least
from crack_lightning.runtime import cuda
from crack_lightning.runtime.exported import cuda_precision
from crack_lightning.runtime.models import (
    DEFAULT_SCAN_MODEL,
    cache_graph,
    cached_graph_path,
    shipped_model,
)
from crack_lightning.runtime.onnx_file import with_metadata
from crack_lightning.runtime.options import RunOptions
from crack_lightning.tasks.segmentation import SEGMENTATION

if TYPE_CHECKING:
    from crack_lightning.evaluation.evaluate import Evaluation
    from crack_lightning.scanning.models import Classifier, Segmenter

__all__ = ["evaluate", "exported_graph", "load_model", "scan"]


def exported_graph(checkpoint: str | os.PathLike, option: str = "model") -> tuple[bytes, str]:
    """``(graph, how)``: the checkpoint's exported graph from the cache, or exported now (this imports torch) and
    cached; ``how`` says which, for the log."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise OptionError(option, f"no file {path}; pass a .ckpt written by `python -m crack_lightning fit`")
    cached = cached_graph_path(path)
    if cached.is_file():
        return cached.read_bytes(), f"exported graph cached in {cached}"
    from crack_lightning.export.onnx import export_checkpoint  # torch, once per checkpoint

    graph = export_checkpoint(path, option)
    return graph, cache_graph(cached, graph)


def load_model(
    model: str | os.PathLike | None = None,
    option: str = "model",
    device: str = RunOptions.device,
    **options: Any,
) -> Classifier | Segmenter:
    """A model: a :class:`~crack_lightning.scanning.models.Classifier`, or a
    :class:`~crack_lightning.scanning.models.Segmenter` when its graph says ``task: segmentation``. Both have
    ``predict(images)``, ``scan(photo)`` and ``describe()``.

    ``model`` is a shipped model's name (default: the shipped segmenter ``concrete-seg-v2``, as :func:`scan`'s; the
    shipped classifier is ``concrete-v1``), a checkpoint of ``fit`` (exported once, then cached), or an ``.onnx`` written by ``export``.
    ``option`` names ``model`` in error messages (the CLI passes its flag). ``device``: ``cpu`` (no torch),
    ``cuda`` (the checkpoint's network on the GPU through PyTorch, bf16; an ``.onnx`` needs its ``.ckpt`` beside
    it) or ``auto`` (``cuda`` where PyTorch sees a GPU and there is a checkpoint to run, else ``cpu``; no torch
    imported without an NVIDIA driver). ``options``: the other fields of
    :class:`~crack_lightning.runtime.options.RunOptions` (``backend``, ``precision``, ``tta``, ``threads``).
    """
    run = RunOptions.of("load_model", device=device, **options)
    asked, device = device, cuda.resolve_device(device)
    name = os.fspath(model) if model is not None else DEFAULT_SCAN_MODEL
    shipped = shipped_model(name)
    path = Path(name).expanduser()
    if shipped is not None:
        graph, source, checkpoint = shipped.graph.read_bytes(), shipped.describe(), shipped.checkpoint
    elif path.suffix == ".onnx":
        if not path.is_file():
            raise OptionError(option, f"no file {path}; pass an .onnx written by export, or a .ckpt")
        graph, source, checkpoint = path.read_bytes(), str(path), cuda.checkpoint_beside(path)
    elif device == "cuda":  # the checkpoint itself runs on the GPU: no export
        if not path.is_file():
            raise OptionError(option, f"no file {path}; pass a .ckpt written by `python -m crack_lightning fit`")
        graph, source, checkpoint = None, str(path), path
    else:
        graph, how = exported_graph(path, option)
        source, checkpoint = f"{path} ({how})", path
    from crack_lightning.scanning.models import model_from_graph  # the runtime the graph's task needs, and its scan

    if device == "cuda" and (checkpoint is not None or asked == "cuda"):
        if checkpoint is None:
            raise OptionError(
                "device",
                f"'cuda' runs the checkpoint the graph {source} came from, and none lies beside it (m.onnx -> m.ckpt); "
                "pass the .ckpt, or the device cpu",
            )
        from crack_lightning.export import gpu  # torch

        metadata, session, why = gpu.open_checkpoint(checkpoint, cuda_precision(run.precision), option)
        # a checkpoint run as it is has no exported graph: its graph's metadata stands for it
        graph = with_metadata(b"", metadata) if graph is None else graph
        return model_from_graph(
            graph, source, **{**vars(run), "device": "cuda"}, checkpoint=checkpoint, session=(session, why)
        )
    return model_from_graph(graph, source, **{**vars(run), "device": "cpu"})


def scan(
    source: str | os.PathLike,
    output: str | os.PathLike,
    model: Classifier | Segmenter | str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    report: bool = True,
    progress: bool = False,
    overlay_max_side: int = MAX_SIDE,
    devices: int = 1,
    num_nodes: int = 1,
    log: Callable[[str], None] | None = None,
    **options: Any,
) -> dict[str, int]:
    """Scan every photo of ``source`` (a photo, a folder searched recursively, or a ``.txt`` list) into the folder
    ``output``, as the ``scan`` command does: the CSV files, pictures, ``scan.json`` and ``report.html``; locked
    while it runs, ``resume`` finishes a scan cut short, ``overwrite`` replaces one. Returns counts: ``photos``,
    ``skipped``, the task's unit (``tiles`` or ``cracks``), ``crack_photos``, ``errors``...

    ``model``: a loaded model, or what :func:`load_model` takes (default: the shipped segmenter ``concrete-seg-v2``,
    which measures cracks; ``"concrete-v1"``, the shipped classifier, draws tile maps). ``options``: how the model
    runs (:class:`~crack_lightning.runtime.options.RunOptions`' fields, when ``model`` is not loaded yet) and how it
    scans (a classifier: :class:`~crack_lightning.scanning.options.TileOptions`' fields; a segmenter:
    :class:`~crack_lightning.scanning.options.CrackOptions`'); another name is an error naming it. ``log``: called
    with a line naming the model and one saying how it runs, before the scan (from the first process only).

    ``devices`` > 1 (or ``num_nodes`` > 1) shares the photos out across processes launched by Lightning's ``ddp``
    strategy, each with its share of the CPU cores (with ``device="cuda"`` sharing the GPUs round-robin): this
    script starts again in each (as with
    Lightning's Trainer), each loads ``model`` (so pass a name or path, not a loaded model), and the first writes
    the files; every process gets the counts.
    """
    # Imported on use: the pipeline brings SciPy and scikit-image (crack measurement), which `import crack_lightning`
    # and predict never need.
    from crack_lightning.distributed import start_processes
    from crack_lightning.scanning.pipeline import scan_to_folder
    from crack_lightning.scanning.tasks import scan_task

    if overwrite and resume:
        raise OptionError("resume", "excludes overwrite; pass one of them")
    for name, value in (("overlay_max_side", overlay_max_side), ("devices", devices), ("num_nodes", num_nodes)):
        at_least(name, value)
    loaded = not (model is None or isinstance(model, (str, os.PathLike)))
    run = RunOptions.take(options)
    if loaded and (devices > 1 or num_nodes > 1):
        raise OptionError(
            "model", f"devices={devices} loads it in each process; pass its name or path, not a loaded model"
        )
    if loaded and run:
        raise OptionError(next(iter(run)), "says how a model loads; pass it to load_model, or the model's name here")
    require_writable(output, "output")  # before the model loads: a checkpoint may take seconds to export
    shards, threads = start_processes(run.get("device", RunOptions.device), devices, num_nodes)
    if threads is not None:
        run.setdefault("threads", threads)
    if not loaded:
        model = load_model(model, **run)
    task = scan_task(model, **options)
    if log is not None and shards.rank == 0:
        log(f"Model: {model.source}")
        log(f"Inference: {model.describe()}" + (f", {shards.world_size} processes" if shards.world_size > 1 else ""))
    return scan_to_folder(task, source, output, overwrite, resume, overlay_max_side, progress, report, shards)


def evaluate(
    source: str | os.PathLike,
    model: Segmenter | str | os.PathLike | None = None,
    patches: str | os.PathLike | None = None,
    split_file: str | os.PathLike | None = None,
    split: str = "val",
    limit: int | None = None,
    progress: bool = False,
    **options: Any,
) -> Evaluation:
    """A segmenter's figures on photos with true masks (``source``: ``images/NAME.jpg`` and ``masks/NAME.png``, 255
    = crack), each photo scanned exactly as :func:`scan` scans it: pixel precision, recall, F1 and IoU at the
    operating point, ODS F1, crack length and width errors, for all photos and two halves of their groups (an
    :class:`~crack_lightning.evaluation.evaluate.Evaluation`: ``table()``, ``to_dict()``, ``photos``).

    ``model`` as for :func:`scan` (default ``concrete-seg-v2``); ``options``: how it runs and scans, as for
    :func:`scan` (``threshold``, ``low_threshold``, ``min_area``, ``window``...). ``patches``: a folder of
    ``Positive/`` and ``Negative/`` patches without masks, in which the share with a crack found is counted.
    ``split_file`` (a fit's ``split.csv``): only its ``split`` photos; ``limit``: the first photos only.
    """
    from crack_lightning.evaluation.evaluate import evaluate_task  # scanning: SciPy and scikit-image
    from crack_lightning.scanning.tasks import scan_task

    if model is None or isinstance(model, (str, os.PathLike)):
        model = load_model(DEFAULT_SCAN_MODEL if model is None else model, **RunOptions.take(options))
    if model.task != SEGMENTATION.name:
        raise OptionError(
            "model",
            f"{model.source} is a classifier; evaluate takes a segmenter (the command `test` evaluates a classifier "
            "on patches)",
        )
    return evaluate_task(scan_task(model, **options), source, patches, split_file, split, limit, progress)
