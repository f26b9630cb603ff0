"""Issue 31's GPU measurements in one run, one markdown table (and ``--json``): fit speed against the loader alone, GPU
busy share, the segmenter's epoch time (CPU recipe and GPU recipe), scan MP/s on the GPU against the CPU path, and the
training losses around the unfreeze epoch (this code's schedule, and the schedule before the unfreeze fix).

    python bench/gpu.py --patches DATA/concrete-crack --photos DATA/crack-photos --json gpu.json --profile prof
    python bench/gpu.py --quick --patches DATA/concrete-crack --photos DATA/crack-photos      # CPU, 1-3 minutes

``--patches``: an ImageFolder of patches (``Negative/``, ``Positive/``); ``--photos``: ``images/`` and ``masks/``.
About 4-6 minutes on an H200 with 16 cores. Each row is guarded: a row that fails prints its error and the table says
so; the others still run. The models, data and Trainers are built directly from ``configs/*.yaml`` (read with PyYAML),
not through the CLI, so jsonargparse is not needed. Needs torch, torchvision, lightning, torchmetrics, PIL, PyYAML;
the CPU scan rows need ONNX Runtime (or OpenVINO), the segmenter's CPU scan row also onnx and onnxscript (export).
``--profile DIR`` runs each segmenter fit under Lightning's SimpleProfiler and writes its report there (where an
epoch's time goes, before and after the GPU recipe). Figures are of this machine in this sitting: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]

CONFIGS = REPO / "configs"
# The fine-tune phase's start as it was before the unfreeze fix (issue 31: the backbone at its full rate from its
# first step, with a fresh Adam state): compared with this code's schedule, which warms the rate up.
BEFORE_FIX = {"warmup_steps": 0}
# Candidates for the GPU's unfreeze jump (3.4x with the 20-step warm-up on the H200, none on a CPU: docs/training.md)
UNFREEZE_VARIANTS = ['warm-up 60={"warmup_steps": 60}', 'backbone lr/10={"backbone_lr": 2e-5}']


# ---------------------------------------------------------------------------------------------------------- table
class Table:
    """Rows of (measure, value, note); a failing row is one row saying so, with its error."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, measure: str, value: Any, note: str = "") -> None:
        if isinstance(value, float):
            value = round(value, 4)
        self.rows.append({"measure": measure, "value": value, "note": note})
        print(f"  {measure}: {value} {note}", flush=True)

    def guarded(self, name: str, function: Callable[[], None]) -> None:
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            function()
        except Exception as err:
            traceback.print_exc()
            self.add(name, "failed", f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)

    def markdown(self) -> str:
        lines = ["| measure | value | note |", "| --- | --- | --- |"]
        lines += [f"| {r['measure']} | {r['value']} | {r['note']} |" for r in self.rows]
        return "\n".join(lines)


def merged(*files: str) -> dict[str, Any]:
    """Configs merged as LightningCLI merges several ``--config`` files: later keys win, nested dicts merge."""

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    config: dict[str, Any] = {}
    for name in files:
        config = merge(config, yaml.safe_load((CONFIGS / name).read_text()) or {})
    return config


def synchronize() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------------------------------- GPU busy
class GpuBusy:
    """nvidia-smi's ``utilization.gpu`` (the share of time a kernel was running) sampled every 100 ms; falls back to
    ``torch.cuda.utilization()`` (pynvml) polled in a thread. ``share(intervals)``: the mean within those intervals."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.process: subprocess.Popen | None = None
        self.running = False
        self.source = "none"

    def start(self) -> None:
        import torch

        if not torch.cuda.is_available():
            return
        index = torch.cuda.current_device()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:  # nvidia-smi numbers every GPU of the machine, torch only the visible ones
            index = visible.split(",")[index].strip()
        self.running = True
        if shutil.which("nvidia-smi"):
            self.source = "nvidia-smi utilization.gpu, 100 ms samples"
            self.process = subprocess.Popen(
                [
                    "nvidia-smi",
                    f"--id={index}",
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "100",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            threading.Thread(target=self._read, daemon=True).start()
        else:
            self.source = "torch.cuda.utilization(), 100 ms polls"
            threading.Thread(target=self._poll, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.strip())))
            except ValueError:
                pass

    def _poll(self) -> None:
        import torch

        while self.running:
            try:
                self.samples.append((time.perf_counter(), float(torch.cuda.utilization())))
            except Exception:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        self.running = False
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def share(self, intervals: list[tuple[float, float]]) -> float | None:
        values = [p for t, p in list(self.samples) if any(a <= t <= b for a, b in intervals)]
        return sum(values) / len(values) / 100 if values else None


# ------------------------------------------------------------------------------------------------ epoch records
def epoch_recorder():
    """A callback recording, per epoch: the training part's seconds and images, validation's seconds, the mean
    training loss (over every step, weighted by batch size) and ``val_acc`` / ``val_ods_f1``."""
    from lightning.pytorch.callbacks import Callback

    class EpochRecorder(Callback):
        def __init__(self) -> None:
            self.epochs: dict[int, dict[str, float]] = {}

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            synchronize()
            self.current = {"start": time.perf_counter(), "val_s": 0.0, "images": 0, "loss_sum": 0.0}
            self.losses: list = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            n = int(batch[0].shape[0])
            self.current["images"] += n
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.losses.append(loss.detach().float() * n)  # summed at the epoch's end: no sync every step

        def on_validation_epoch_start(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                synchronize()
                self.val_start = time.perf_counter()

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                synchronize()
                self.current["val_s"] += time.perf_counter() - self.val_start

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            synchronize()
            c = self.current
            c["end"] = time.perf_counter()
            c["epoch_s"] = c["end"] - c["start"]
            c["train_s"] = c["epoch_s"] - c["val_s"]
            c["train_loss"] = float(sum(self.losses).item()) / max(1, c["images"]) if self.losses else float("nan")
            for key in ("val_loss", "val_acc", "val_ods_f1"):
                if key in trainer.callback_metrics:
                    c[key] = float(trainer.callback_metrics[key])
            self.epochs[trainer.current_epoch] = c

    return EpochRecorder()


def trainer_options(section: dict[str, Any], quick: bool) -> dict[str, Any]:
    """The Trainer options of a config's ``trainer`` section that matter here; CPU and the CPU's precision when quick."""
    from crack_lightning.training.precision import auto_precision

    if quick:
        precision, _ = auto_precision("cpu")
        return {"accelerator": "cpu", "devices": 1, "precision": precision, "deterministic": False}
    options = {
        k: section[k] for k in ("accelerator", "devices", "precision", "deterministic", "benchmark") if k in section
    }
    if options.get("precision") is None:
        options["precision"], _ = auto_precision(str(options.get("accelerator", "auto")))
    return options


# -------------------------------------------------------------------------------------------------- classifier
def classifier_fit(args, work: Path, finetuning: dict[str, Any] | None = None):
    """The classifier of ``configs/default.yaml`` + ``configs/gpu.yaml`` fitted for the config's epochs, no early stopping
    (quick: one frozen and two fine-tune epochs on a few images at 160 px, on the CPU)."""
    import lightning as L

    from crack_lightning import CrackClassifier, CrackDataModule
    from crack_lightning.training.callbacks import TwoPhaseFinetuning

    config = merged("default.yaml", "gpu.yaml")
    L.seed_everything(config.get("seed_everything", 42), verbose=False)
    data_options = {k: v for k, v in config["data"].items() if k != "root"}
    data_options["num_workers"] = min(data_options.get("num_workers") or 0, max(0, (os.cpu_count() or 1) - 1))
    finetune_options = {**config["finetuning"], **(finetuning or {})}
    if args.quick:
        data_options.update(batch_size=16, image_size=160, max_per_root=args.max_patches or 40, num_workers=0)
        finetune_options["unfreeze_at_epoch"] = 1
    elif args.max_patches:
        data_options["max_per_root"] = args.max_patches
    data = CrackDataModule(root=str(args.patches), **data_options)
    model = CrackClassifier(**{**config["model"], "weights": "bundled"})  # no network needed, the same on every machine
    recorder = epoch_recorder()
    trainer = L.Trainer(
        # the config's whole schedule (6 epochs): the last epoch's val_acc is the held-out accuracy of each schedule
        **trainer_options(config["trainer"], args.quick),
        max_epochs=finetune_options["unfreeze_at_epoch"] + 2 if args.quick else config["trainer"].get("max_epochs", 6),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(work),
        callbacks=[TwoPhaseFinetuning(**finetune_options), recorder],
    )
    trainer.fit(model, data)
    return recorder, data, model, finetune_options["unfreeze_at_epoch"], trainer


def loader_alone(data) -> float:
    """img/s of the training DataLoader alone (decode + the loader's augmentation), its workers already started."""
    loader = data.train_dataloader()
    iterator = iter(loader)
    next(iterator)  # workers started, first batch in
    start, images = time.perf_counter(), 0
    for batch in iterator:
        images += int(batch[0].shape[0])
    return images / (time.perf_counter() - start) if images else float("nan")


def unfreeze_rows(table: Table, label: str, recorder, unfreeze: int) -> None:
    before, at = recorder.epochs[unfreeze - 1], recorder.epochs[unfreeze]
    ratio = at["train_loss"] / before["train_loss"]
    losses = ", ".join(f"{e['train_loss']:.3f}" for _, e in sorted(recorder.epochs.items()))
    accs = ", ".join(f"{e.get('val_acc', float('nan')):.4f}" for _, e in sorted(recorder.epochs.items()))
    last = recorder.epochs[max(recorder.epochs)]
    table.add(
        f"unfreeze, {label}: train loss epoch {unfreeze - 1} -> {unfreeze}",
        f"{before['train_loss']:.3f} -> {at['train_loss']:.3f} ({ratio:.2f}x)",
        f"held-out val_acc after the last epoch {last.get('val_acc', float('nan')):.4f}; "
        f"train loss by epoch {losses}; val_acc by epoch {accs}",
    )


def classifier_rows(table: Table, args, work: Path, busy: GpuBusy) -> None:
    busy_start = len(busy.samples)
    recorder, data, model, unfreeze, trainer = classifier_fit(args, work / "fit")
    epochs = recorder.epochs
    device = str(trainer.strategy.root_device)
    for phase, epoch in (("frozen", unfreeze - 1), ("fine-tune", unfreeze + 1)):
        e = epochs[epoch]
        table.add(
            f"classifier fit img/s, {phase} phase (epoch {epoch}, training part)",
            e["images"] / e["train_s"],
            f"{device}, {trainer.precision}, batch {data.hparams.batch_size}, {data.hparams.image_size} px, "
            f"{data.num_workers} workers; validation {e['val_s']:.2f} s",
        )
    # epoch 0 holds cuDNN's warm-up; the busy share is the training parts of the later epochs
    intervals = [(e["start"], e["start"] + e["train_s"]) for k, e in epochs.items() if k > 0]
    share = busy.share(intervals) if len(busy.samples) > busy_start else None
    table.add(
        "GPU busy share during fit (training parts, epochs 1+)", "n/a" if share is None else f"{share:.0%}", busy.source
    )
    unfreeze_rows(table, "this code", recorder, unfreeze)
    rate = loader_alone(data)
    fine = epochs[unfreeze + 1]
    table.add(
        "classifier loader alone img/s",
        rate,
        f"{data.num_workers} workers; fit fine-tune phase = {fine['images'] / fine['train_s'] / rate:.2f}x of it",
    )


def unfreeze_before_fix_row(table: Table, args, work: Path) -> None:
    recorder, _, _, unfreeze, _ = classifier_fit(args, work / "fit-before", BEFORE_FIX)
    unfreeze_rows(table, f"before the fix {BEFORE_FIX}", recorder, unfreeze)


def unfreeze_variant_row(table: Table, args, work: Path, variant: str) -> None:
    """The whole fit again with other fine-tuning options (``NAME=JSON``): its unfreeze epoch and held-out val_acc."""
    name, options = variant.split("=", 1)
    recorder, _, _, unfreeze, _ = classifier_fit(args, work / f"fit-{len(table.rows)}", json.loads(options))
    unfreeze_rows(table, f"{name} {options}", recorder, unfreeze)


# --------------------------------------------------------------------------------------------------- segmenter
def segmenter_fit(args, work: Path, label: str, files: tuple[str, ...], epochs: int, minutes: float | None = None):
    """Fit the segmenter of ``files`` on ``--photos``; returns the recorder, the trainer and the checkpoint written."""
    import lightning as L
    from lightning.pytorch.profilers import SimpleProfiler

    from crack_lightning.data.segmentation import SegmentationDataModule
    from crack_lightning.models.segmenter import CrackSegmenter

    config = merged(*files)
    L.seed_everything(config.get("seed_everything", 42), verbose=False)
    model_options = {**config["model"]["init_args"], "weights": "bundled", "preview_images": 0}
    data_options = {k: v for k, v in config["data"]["init_args"].items() if k != "root"}
    if data_options.get("num_workers"):
        data_options["num_workers"] = min(data_options["num_workers"], max(0, (os.cpu_count() or 1) - 1))
    if args.quick:
        data_options.update(crop_size=128, batch_size=4, num_workers=0, val_fraction=0.5, val_batch_size=1)
    data = SegmentationDataModule(root=str(args.photos), **data_options)
    if args.quick:  # a few photos: the script's check, not a measurement
        from crack_lightning.data.segmentation import find_photos

        data.splits = {"train": [], "val": [], "test": []}
        photos = find_photos(data.root)[:7]
        data.splits.update(train=photos[:5], val=photos[5:7])
    model = CrackSegmenter(**model_options)
    profiler = SimpleProfiler(dirpath=str(args.profile), filename=f"segment-{label}") if args.profile else None
    recorder = epoch_recorder()
    trainer = L.Trainer(
        **trainer_options(config["trainer"], args.quick),
        max_epochs=epochs,
        max_time={"minutes": minutes} if minutes else None,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(work),
        callbacks=[recorder],
        profiler=profiler,
    )
    trainer.fit(model, data)
    checkpoint = work / f"segment-{label}.ckpt"
    trainer.save_checkpoint(checkpoint)
    if profiler is not None:
        # the report is sorted by total time: its head says where an epoch's time goes
        print("\n".join(profiler.summary().splitlines()[:24]), flush=True)
    return recorder, trainer, data, checkpoint


def segmenter_rows(
    table: Table,
    args,
    work: Path,
    label: str,
    files: tuple[str, ...],
    epochs: int,
    minutes: float | None,
    state: dict[str, Any],
    busy: GpuBusy,
) -> None:
    first = len(busy.samples)
    recorder, trainer, data, checkpoint = segmenter_fit(args, work / f"segment-{label}", label, files, epochs, minutes)
    timed = [e for k, e in sorted(recorder.epochs.items()) if k > 0] or list(recorder.epochs.values())
    mean = sum(e["epoch_s"] for e in timed) / len(timed)
    train = sum(e["train_s"] for e in timed) / len(timed)
    best = max((e.get("val_ods_f1", float("nan")) for e in recorder.epochs.values()), default=float("nan"))
    hp = data.hparams
    share = busy.share([(e["start"], e["start"] + e["train_s"]) for e in timed]) if len(busy.samples) > first else None
    table.add(
        f"GPU busy share, segmenter {label} (training parts)", "n/a" if share is None else f"{share:.0%}", busy.source
    )
    table.add(
        f"segmenter epoch s, {label} ({' + '.join(files)})",
        mean,
        f"train {train:.2f} s + val {mean - train:.2f} s, mean of epochs {[k for k in recorder.epochs if k > 0] or [0]}; "
        f"{len(data.splits['train'])} train / {len(data.splits['val'])} val photos, batch {hp.batch_size}, "
        f"{hp.crops_per_photo} crop(s) of {hp.crop_size} px a photo, {trainer.precision}, {data.num_workers} workers"
        + (f"; profile: {args.profile}/fit-segment-{label}.txt" if args.profile else ""),
    )
    table.add(
        f"segmenter held-out ODS F1, {label}",
        best,
        f"best of {len(recorder.epochs)} epoch(s) of max_epochs {trainer.max_epochs}"
        + (f" (cut at {minutes} min)" if minutes else "")
        + "; the CPU recipe's 40 epochs: 0.796",
    )
    state["segmenter"] = checkpoint


# ------------------------------------------------------------------------------------------------------- scans
def scan_rate(model, photos: list[Path], **options) -> tuple[float, float]:
    """``(MP/s, seconds)`` of the classifier's or segmenter's scan of ``photos`` (decode, windows, network, maps, the
    segmenter's cracks measured; no files written), after one photo of warm-up (the runtime's session, cuDNN's
    choices)."""
    from PIL import Image

    # The scan command's own scan (model.scan_task: scan's default tiles or windows), its results dropped.
    task = model.scan_task(**options)

    def run(paths: list[Path]) -> None:
        for _ in task.results([(p.name, p) for p in paths]):
            pass

    run(photos[:1])
    synchronize()
    pixels = sum(w * h for w, h in (Image.open(p).size for p in photos))
    start = time.perf_counter()
    run(photos)
    synchronize()
    seconds = time.perf_counter() - start
    return pixels / 1e6 / seconds, seconds


def scan_rows(table: Table, args, kind: str, model_path: str, busy: GpuBusy) -> None:
    """The CPU path and the GPU path on the same photos, each guarded on its own (the CPU runtimes or the ONNX exporter
    may be missing on a GPU machine)."""
    from crack_lightning import load_model

    photos = sorted((Path(args.photos) / "images").glob("*.jpg"))[: 4 if args.quick else args.scan_photos]
    if not photos:
        raise RuntimeError(f"no .jpg photos in {Path(args.photos) / 'images'}")
    cores = os.cpu_count() or 1
    rates: dict[str, float] = {}

    def cpu_path() -> None:
        cpu = load_model(model_path, precision="auto", device="cpu")
        rates["cpu"], seconds = scan_rate(cpu, photos)
        table.add(
            f"scan MP/s, {kind}, CPU path",
            rates["cpu"],
            f"{cpu.describe()}; {len(photos)} photos in {seconds:.1f} s, {cores} cores",
        )

    def gpu_path() -> None:
        import torch

        if not torch.cuda.is_available():
            table.add(f"scan MP/s, {kind}, GPU path", "n/a", "no CUDA device")
            return
        gpu = load_model(model_path, device="cuda", precision="auto")  # bf16 on the GPU, as scan --device cuda does
        batch, workers = gpu.scan_task().batch_size, min(8, cores)  # what scan --device cuda uses
        first = len(busy.samples)
        start = time.perf_counter()
        rates["gpu"], seconds = scan_rate(gpu, photos, batch_size=batch, workers=workers)
        share = (
            busy.share([(time.perf_counter() - seconds, time.perf_counter())]) if len(busy.samples) > first else None
        )
        ratio = f"; {rates['gpu'] / rates['cpu']:.2f}x the CPU path" if "cpu" in rates else ""
        table.add(
            f"scan MP/s, {kind}, GPU path",
            rates["gpu"],
            f"{gpu.describe()}; batch {batch}, {workers} decoding threads; {len(photos)} photos in {seconds:.1f} s"
            f"{ratio}; GPU busy {'n/a' if share is None else f'{share:.0%}'} (warm-up {time.perf_counter() - start - seconds:.1f} s)",
        )

    table.guarded(f"scan MP/s, {kind}, CPU path", cpu_path)
    table.guarded(f"scan MP/s, {kind}, GPU path", gpu_path)


def scan_command_rows(table: Table, args) -> None:
    """The whole ``scan`` command (files written) on the CPU path, on the GPU in one process and in several sharing
    it (``--devices``): what a user's scan takes, start-up included (bench/scan_processes.py)."""
    import torch
    from scan_processes import timed_scans

    photos = sorted((Path(args.photos) / "images").glob("*.jpg"))[: 4 if args.quick else args.scan_photos]
    most = max(args.scan_processes)  # the CPU path with as many processes too: a fair comparison of the devices
    runs = ["cpu:1", f"cpu:{most}"] + ([f"cuda:{n}" for n in args.scan_processes] if torch.cuda.is_available() else [])
    for r in timed_scans(photos, runs):
        table.add(
            f"scan command MP/s, segmenter concrete-seg-v1, --device {r['run'].replace(':', ' --devices ')}",
            r["mp_per_s"],
            f"{r['photos']} photos in {r['seconds']} s (start-up included), {r['x_first']}x the "
            f"CPU path; same rows as it: {r['same_rows_as_first']}",
        )


# --------------------------------------------------------------------------------------------------------- main
def machine() -> dict[str, Any]:
    import lightning
    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patches", type=Path, required=True, help="ImageFolder of patches (Negative/, Positive/).")
    parser.add_argument(
        "--photos", type=Path, required=True, help="Folder with images/ and masks/ (the segmenter's data)."
    )
    parser.add_argument("--json", type=Path, default=None, help="Write the table and the machine here as JSON.")
    parser.add_argument(
        "--profile", type=Path, default=None, help="Profile each segmenter fit (SimpleProfiler) into this folder."
    )
    parser.add_argument(
        "--quick", action="store_true", help="On the CPU, a few images and photos: checks the script (1-3 min)."
    )
    parser.add_argument("--max_patches", type=int, default=None, help="At most this many patches of each class.")
    parser.add_argument("--segment_minutes", type=float, default=2.0, help="Time cap of the GPU recipe's 40-epoch fit.")
    parser.add_argument("--scan_photos", type=int, default=300, help="Photos each scan row scans.")
    parser.add_argument(
        "--scan_processes",
        type=int,
        nargs="+",
        default=[1, 4, 8],
        help="scan --device cuda --devices N for each N (the scan command rows).",
    )
    parser.add_argument(
        "--unfreeze_variant",
        action="append",
        default=None,
        help="NAME=JSON of fine-tuning options: a whole classifier fit each, its unfreeze epoch and val_acc "
        f"(default: {' and '.join(UNFREEZE_VARIANTS)}).",
    )
    parser.add_argument(
        "--skip",
        type=str,
        default="",
        help="Comma-separated rows to skip: fit,before,variants,segment_cpu,segment_gpu,scan,scan_segmenter,scan_command.",
    )
    args = parser.parse_args(argv)
    args.unfreeze_variant = args.unfreeze_variant or UNFREEZE_VARIANTS
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    table, state = Table(), {}
    info = machine()
    print(f"Machine: {info}", flush=True)
    busy = GpuBusy()
    busy.start()
    with tempfile.TemporaryDirectory(prefix="crack-gpu-bench-") as tmp:
        work = Path(tmp)
        quick_epochs = 2 if args.quick else None
        if "fit" not in skip:
            table.guarded("classifier fit", lambda: classifier_rows(table, args, work, busy))
        if "before" not in skip:
            table.guarded("unfreeze before the fix", lambda: unfreeze_before_fix_row(table, args, work))
        if "variants" not in skip:
            for variant in args.unfreeze_variant:
                table.guarded(f"unfreeze {variant}", lambda v=variant: unfreeze_variant_row(table, args, work, v))
        if "segment_cpu" not in skip:
            table.guarded(
                "segmenter, CPU recipe",
                lambda: segmenter_rows(
                    table, args, work, "cpu-recipe", ("segment.yaml",), quick_epochs or 3, None, state, busy
                ),
            )
        if "segment_gpu" not in skip:
            table.guarded(
                "segmenter, GPU recipe",
                lambda: segmenter_rows(
                    table,
                    args,
                    work,
                    "gpu-recipe",
                    ("segment.yaml", "segment-gpu.yaml"),
                    quick_epochs or 40,
                    None if args.quick else args.segment_minutes,
                    state,
                    busy,
                ),
            )
        if "scan" not in skip:
            scan_rows(table, args, "classifier concrete-v1", "concrete-v1", busy)
        if "scan_segmenter" not in skip and state.get("segmenter"):
            scan_rows(table, args, "segmenter (this run's GPU-recipe fit)", str(state["segmenter"]), busy)
        if "scan_command" not in skip:
            table.guarded("scan command", lambda: scan_command_rows(table, args))
    busy.stop()
    total = time.perf_counter() - started
    print(
        f"\nbench/gpu.py on {info['gpu'] or 'no GPU'} / {info['cpu']} ({info['cores']} cores), torch {info['torch']}, "
        f"lightning {info['lightning']}, {total:.0f} s{' (--quick: CPU check, not a measurement)' if args.quick else ''}\n"
    )
    print(table.markdown(), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"machine": info, "quick": args.quick, "seconds": round(total, 1), "rows": table.rows}, indent=2)
        )
        print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
