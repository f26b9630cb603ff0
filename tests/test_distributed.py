"""Two processes through Lightning's DDP strategy on the CPU (gloo) give what one process gives: fit writes one
run, predict one CSV, test one report, and each equals the single-process result."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from crack_lightning.data.classification import CrackDataModule
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.models.pretrained import BUNDLED_BACKBONE
from tests.conftest import REPO, copy_images

DDP = ["--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2"]


def run(*args: str, cwd: Path) -> None:
    """``python -m crack_lightning ARGS`` in a process of its own, as a user (or torchrun) would start it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "crack_lightning", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=420
    )
    assert result.returncode == 0, result.stderr[-3000:]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_process_fit_writes_one_run_that_resumes(tmp_path):
    root = copy_images(tmp_path / "images", 12)
    fit = [
        "fit",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        "--data.root",
        str(root),
        "--model.weights",
        str(BUNDLED_BACKBONE),
        "--data.image_size",
        "64",
        "--data.batch_size",
        "4",
        "--finetuning.unfreeze_at_epoch",
        "1",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        "--sample_grid.images_per_class",
        "4",
        "--trainer.enable_progress_bar",
        "false",
        *DDP,
    ]
    run(*fit, "--trainer.max_epochs", "2", cwd=tmp_path)
    runs = sorted((tmp_path / "runs" / "crack").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # one run folder, not one per process
    run_dir = runs[0]
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(run_dir)).Reload()
    assert {"val_loss", "val_acc", "train_loss_epoch"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("val_loss")) == 2  # once per epoch, not once per process
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and len(checkpoints) == 2
    model = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert model.class_names == ["Negative", "Positive"] and model.preprocessing[0] == 64
    # The split is the one a single process computes, written once.
    single = CrackDataModule(root=str(root))
    single.setup("fit")
    written = {(r["path"], r["split"]) for r in read_csv(run_dir / "split.csv")}
    assert written == {(p, s) for s, samples in single.splits.items() for p, _ in samples}
    # Resuming under DDP continues the fine-tune phase from last.ckpt.
    run(*fit, "--trainer.max_epochs", "3", "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"), cwd=tmp_path)
    import torch

    resumed = torch.load(tmp_path / "runs" / "crack" / "version_1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 2 and resumed["callbacks"]["TwoPhaseFinetuning"]["unfrozen_epoch"] == 1


def test_two_process_predict_csv_equals_one_process(trained, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, src in enumerate(sorted(trained["root"].rglob("*.jpg"))[:10]):
        shutil.copy(src, folder / f"{i:02d}_{src.name}")
    (folder / "05_broken.jpg").write_bytes(b"not an image")  # 11 files: shares of 6 and 5
    # float32: the default precision is bf16-mixed on CPUs with bf16 units, and the torch-free path's is float32
    common = [
        "predict",
        "--engine",
        "lightning",
        "--ckpt_path",
        str(trained["ckpt"]),
        "--data.predict_dir",
        str(folder),
        "--data.batch_size",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.precision",
        "32-true",
    ]
    run(
        *common,
        "--output",
        str(tmp_path / "one.csv"),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "1",
        cwd=tmp_path,
    )
    run(*common, "--output", str(tmp_path / "two.csv"), *DDP, cwd=tmp_path)
    # and the torch-free path in float32 (ONNX Runtime) writes the same file
    run(
        "predict",
        "--ckpt_path",
        str(trained["ckpt"]),
        "--data.predict_dir",
        str(folder),
        "--output",
        str(tmp_path / "free.csv"),
        "--precision",
        "32",
        cwd=tmp_path,
    )
    one, two, free = read_csv(tmp_path / "one.csv"), read_csv(tmp_path / "two.csv"), read_csv(tmp_path / "free.csv")
    assert len(one) == 11 and [r["path"] for r in two] == [r["path"] for r in one] == [r["path"] for r in free]
    for a, b in [*zip(one, two), *zip(one, free)]:
        assert (a["label"], a["error"]) == (b["label"], b["error"])
        if not a["error"]:
            assert abs(float(a["crack_probability"]) - float(b["crack_probability"])) < 1e-5
    assert not list(tmp_path.glob("*.partial"))


def test_two_process_test_report_equals_one_process(trained, tmp_path):
    common = [
        "test",
        "--ckpt_path",
        str(trained["ckpt"]),
        "--data.root",
        str(trained["root"]),
        "--data.val_fraction",
        "0.1",
        "--data.test_fraction",
        "0.4",
        "--data.batch_size",
        "4",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
    ]
    run(
        *common,
        "--report.output_dir",
        str(tmp_path / "one"),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "1",
        cwd=tmp_path,
    )
    run(*common, "--report.output_dir", str(tmp_path / "two"), *DDP, cwd=tmp_path)
    one = json.loads((tmp_path / "one" / "test_report.json").read_text())
    two = json.loads((tmp_path / "two" / "test_report.json").read_text())
    assert one["images"] == two["images"] == 24
    for key in ("accuracy", "precision", "recall", "f1", "confusion_matrix", "crack_counts"):
        assert one[key] == two[key], key
    assert one["auroc"] == pytest.approx(two["auroc"], abs=1e-6)
    assert [m["path"] for m in one["misclassified"]] == [m["path"] for m in two["misclassified"]]
