"""Messy data and user mistakes: each ends in one line on stderr and exit status 2, or the run goes on without the bad file."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from crack_lightning.cli import main
from crack_lightning.data.classification import sample_root
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.models.pretrained import BUNDLED_BACKBONE
from tests.conftest import REPO, copy_images

CONFIG = str(REPO / "configs" / "default.yaml")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    monkeypatch.chdir(tmp_path)


def fit_args(tmp_path: Path, root: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        CONFIG,
        "--data.root",
        str(root),
        "--data.num_workers",
        "0",
        "--data.batch_size",
        "16",
        "--data.image_size",
        "64",
        "--model.weights",
        str(BUNDLED_BACKBONE),
        "--trainer.max_epochs",
        "2",
        "--finetuning.unfreeze_at_epoch",
        "1",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        "--trainer.enable_progress_bar",
        "false",
        "--sample_grid.images_per_class",
        "0",
        *extra,
    ]


def one_line_error(capsys, args: list[str]) -> str:
    """Run the CLI, expect exit status 2 and a single `crack_lightning: error:` line without a traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("crack_lightning: error:")]
    assert len(lines) == 1, err
    return lines[0]


def bad_files(folder: Path) -> dict[str, str]:
    """Every kind of bad file, with an image extension, and the reason each is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    good = next((sample_root() / "Positive").glob("*.jpg")).read_bytes()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "text.jpg").write_text("this is not an image\n")
    (folder / "random.png").write_bytes(
        torch.randint(0, 256, (2000,), generator=torch.Generator().manual_seed(0)).to(torch.uint8).numpy().tobytes()
    )
    Image.new("L", (1200, 1000)).save(folder / "huge.png")  # 1.2 MP: over the 1 MP limit the tests set
    return {
        "empty.jpg": "empty file",
        "text.jpg": "cannot be read",
        "random.png": "cannot be read",
        "huge.png": "over the limit",
    }


def test_fit_skips_bad_files_names_them_and_uses_every_good_one(tmp_path, capsys, recwarn):
    root = copy_images(tmp_path / "images", 12)
    refused = bad_files(root / "Positive")
    main(
        fit_args(
            tmp_path, root, "--data.max_pixels", "1000000", "--data.val_fraction", "0.25", "--data.test_fraction", "0"
        )
    )
    (run_dir,) = (tmp_path / "runs" / "crack").iterdir()
    with open(run_dir / "skipped.csv", newline="") as f:
        skipped = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    assert set(skipped) == set(refused)
    for name, reason in refused.items():
        assert reason in skipped[name]["reason"] and skipped[name]["class"] == "Positive"
    with open(run_dir / "split.csv", newline="") as f:
        used = [Path(r["path"]).name for r in csv.DictReader(f)]
    assert len(used) == 25 and "truncated.jpg" in used  # its header reads; decoding it is skipped with a warning
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    out = capsys.readouterr()
    warned = [str(w.message) for w in recwarn]
    assert any("Skipping 4 unreadable image(s)" in w for w in warned)
    assert any("skipped" in w and "truncated.jpg: cannot be read as an image" in w for w in warned)
    assert not any("No positive samples" in w or "No negative samples" in w for w in warned)
    assert (
        "Training finished after 2 epoch(s)" in out.out and "python -m crack_lightning predict --ckpt_path" in out.out
    )


def test_strict_stops_before_training(tmp_path, capsys):
    root = copy_images(tmp_path / "images", 4)
    bad_files(root / "Negative")
    line = one_line_error(capsys, fit_args(tmp_path, root, "--data.strict", "true"))
    assert "--data.strict: 3 unreadable image(s)" in line and "empty.jpg" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


def test_one_class_folder(tmp_path, capsys):
    root = copy_images(tmp_path / "images", 4)
    shutil.rmtree(root / "Negative")
    assert "needs at least two" in one_line_error(capsys, fit_args(tmp_path, root, "--model.crack_class", "Positive"))


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--data.image_size", "0", "--data.image_size: 0 is too small"),
        ("--data.image_size", "-5", "--data.image_size: -5 is too small"),
        ("--data.batch_size", "0", "--data.batch_size: 0"),
        ("--model.lr", "-1", "--model.lr: -1.0"),
        ("--model.dropout", "1.5", "--model.dropout: 1.5"),
        ("--finetuning.unfreeze_from", "40", "--finetuning.unfreeze_from: 40 is not a block"),
        ("--finetuning.backbone_lr", "0", "--finetuning.backbone_lr: 0.0"),
        ("--data.val_fraction", "1.5", "--data.val_fraction"),
        ("--data.batch_size", "many", "data.batch_size"),
        ("--no_such.option", "1", "no_such.option"),
        ("--finetuning.patience", "-1", "--finetuning.patience: -1"),
        pytest.param("--frozen_blocks.backend", "tensorrt", "--frozen_blocks.backend: 'tensorrt'"),
    ],
)
def test_config_values_that_make_no_sense(tmp_path, capsys, flag, value, expected):
    root = copy_images(tmp_path / "images", 4)
    assert expected in one_line_error(capsys, fit_args(tmp_path, root, flag, value))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--data.max_downscale", "0.5", "--data.max_downscale: 0.5; pass 1 (none) or more"),
        ("--data.crop_size", "100", "--data.crop_size: 100; pass a multiple of 32"),
        ("--model.pos_weight", "0", "--model.pos_weight: 0.0"),
    ],
)
def test_segmenter_config_values_that_make_no_sense(tmp_path, capsys, flag, value, expected):
    # The segmenter's config names its classes (class_path), and jsonargparse wraps what they raise in a ValueError.
    from tests.test_segmentation import synthetic_root

    root = synthetic_root(tmp_path / "photos")
    args = ["fit", "--config", str(REPO / "configs" / "segment.yaml"), "--data.root", str(root)]
    args += ["--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), flag, value]
    assert expected in one_line_error(capsys, args)
    assert not (tmp_path / "runs").exists()


def test_a_smoke_run_shorter_than_the_frozen_phase_trains_the_head_with_a_warning(tmp_path, capsys):
    """Issue 23: `fit --config configs/default.yaml --trainer.max_epochs 1` is a normal first try, not an error."""
    root = copy_images(tmp_path / "images", 6)
    with pytest.warns(UserWarning, match="the fine-tune phase will not run") as warned:
        main(fit_args(tmp_path, root, "--trainer.max_epochs", "1", "--finetuning.unfreeze_at_epoch", "2"))
    (message,) = [str(w.message) for w in warned if "fine-tune phase" in str(w.message)]
    assert (
        message.startswith("finetuning's unfreeze_at_epoch 2 is not below the trainer's max_epochs 1")
        and "\n" not in message
    )
    captured = capsys.readouterr()
    assert "crack_lightning: error" not in captured.err and "fine-tune phase: not reached" in captured.out
    (run_dir,) = (tmp_path / "runs" / "crack").iterdir()
    trained = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    pretrained = torch.load(BUNDLED_BACKBONE, map_location="cpu", weights_only=True)
    assert trained["epoch"] == 0
    assert all(
        torch.equal(trained["state_dict"][f"backbone.{k.removeprefix('features.')}"], v) for k, v in pretrained.items()
    )


def test_unwritable_log_dir(tmp_path, capsys):
    root = copy_images(tmp_path / "images", 4)
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    line = one_line_error(
        capsys, fit_args(tmp_path, root, "--trainer.logger.init_args.save_dir", str(blocker / "runs"))
    )
    assert "--trainer.logger.init_args.save_dir: cannot write into" in line
    assert blocker.read_text() == "in the way"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param([], id="torch-free"),
        pytest.param(["--engine", "lightning", "--trainer.accelerator", "cpu"], id="lightning"),
    ],
)
def test_unwritable_predict_output(tmp_path, capsys, trained, path):
    root = copy_images(tmp_path / "images", 2)
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    line = one_line_error(
        capsys,
        [
            "predict",
            "--ckpt_path",
            str(trained["ckpt"]),
            "--data.predict_dir",
            str(root),
            "--output",
            str(blocker / "p.csv"),
            *path,
        ],
    )
    assert "--output: cannot write into" in line
    assert blocker.read_text() == "in the way"


def test_bad_checkpoints(tmp_path, capsys, trained):
    images = copy_images(tmp_path / "images", 2)
    data = ["--data.predict_dir", str(images), "--engine", "lightning", "--data.num_workers", "0"]
    line = one_line_error(capsys, ["predict", "--ckpt_path", str(tmp_path / "missing.ckpt"), *data])
    assert "--ckpt_path: no file" in line and "missing.ckpt" in line
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(trained["ckpt"].read_bytes()[:100_000])
    assert "is cut short or damaged" in one_line_error(capsys, ["predict", "--ckpt_path", str(cut), *data])
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    assert "is not a PyTorch checkpoint" in one_line_error(
        capsys, ["test", "--ckpt_path", str(text), "--data.root", str(images)]
    )
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"layer.weight": torch.zeros(2)}, "epoch": 3}, other)
    assert "not a crack_lightning checkpoint" in one_line_error(capsys, ["predict", "--ckpt_path", str(other), *data])
    for command in (
        ["scan", "--input", str(images), "--output", str(tmp_path / "s")],
        ["export", "--output", str(tmp_path / "m.onnx")],
    ):
        assert "is cut short" in one_line_error(capsys, [command[0], "--ckpt_path", str(cut), *command[1:]])


def test_checkpoint_round_trip_with_weights_only(trained):
    checkpoint = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    model = CrackClassifier.load_from_checkpoint(trained["ckpt"], map_location="cpu", weights_only=True)
    assert model.class_names == checkpoint["hyper_parameters"]["class_names"] and model.preprocessing is not None
    assert torch.equal(model.head[1].weight, checkpoint["state_dict"]["head.1.weight"])


def test_predict_refuses_oversized_images_from_the_header(tmp_path, trained):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (1500, 1000)).save(folder / "big.png")
    shutil.copy(next((sample_root() / "Positive").glob("*.jpg")), folder / "patch.jpg")
    main(
        [
            "predict",
            "--engine",
            "lightning",
            "--ckpt_path",
            str(trained["ckpt"]),
            "--data.predict_dir",
            str(folder),
            "--data.num_workers",
            "0",
            "--data.max_pixels",
            "1000000",
            "--output",
            str(tmp_path / "p.csv"),
            "--trainer.enable_progress_bar",
            "false",
        ]
    )
    with open(tmp_path / "p.csv", newline="") as f:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    assert "1500x1000 = 2 MP is over the limit of 1 MP" in rows["big.png"]["error"] and rows["big.png"]["label"] == ""
    assert rows["patch.jpg"]["error"] == "" and rows["patch.jpg"]["label"]


def shipped_predict(*extra: str) -> list[str]:
    """``predict`` with the shipped model (no --ckpt_path); ``--engine lightning`` runs Lightning's."""
    return ["predict", *extra]


# Issue 23, round 2: every path the user gives, checked up front; {tmp} is the test's folder, in which `a_file` is a
# file, `images/` a folder of 2 images per class and `binary.txt` a list that is not text.
PATH_CASES = [
    pytest.param(
        lambda t: fit_args(t, t / "images", "--trainer.logger.init_args.save_dir", "/proc/nope"),
        "--trainer.logger.init_args.save_dir: cannot write into /proc/nope (cannot create a folder in /proc",
        id="log dir cannot be created",
    ),
    pytest.param(
        lambda t: shipped_predict("--data.predict_dir", str(t / "images"), "--output", "/proc/nope/p.csv"),
        "--output: cannot write into /proc/nope (cannot create a folder in /proc",
        id="predict output folder, torch-free",
    ),
    pytest.param(
        lambda t: shipped_predict(
            "--data.predict_dir",
            str(t / "images"),
            "--output",
            "/proc/nope/p.csv",
            "--engine",
            "lightning",
            "--trainer.accelerator",
            "cpu",
        ),
        "--output: cannot write into /proc/nope (cannot create a folder in /proc",
        id="predict output folder, lightning",
    ),
    pytest.param(
        lambda t: ["scan", "--input", str(t / "images"), "--output", str(t / "a_file")],
        "is not a folder",
        id="scan output is a file",
    ),
    pytest.param(lambda t: fit_args(t, t / "a_file"), "--data.root: no folder", id="data root is a file"),
    pytest.param(
        lambda t: shipped_predict("--data.predict_dir", str(t / "binary.txt")),
        "--data.predict_dir: cannot read the list",
        id="list file is not text",
    ),
]


@pytest.mark.parametrize("args, expected", PATH_CASES)
def test_paths_that_cannot_be_used(tmp_path, capsys, args, expected):
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc")
    copy_images(tmp_path / "images", 2)
    (tmp_path / "a_file").write_text("in the way")
    (tmp_path / "binary.txt").write_bytes(bytes(range(128, 256)) * 4)
    assert expected in one_line_error(capsys, args(tmp_path))
    assert (tmp_path / "a_file").read_text() == "in the way"
    assert not list(tmp_path.rglob(".crack_lightning-probe-*")) and not (tmp_path / "runs").exists()


def test_the_writable_check_leaves_nothing_behind(tmp_path):
    from crack_lightning.errors import require_writable

    require_writable(tmp_path / "new" / "deeper", "--output")
    assert list(tmp_path.iterdir()) == []


def test_predict_killed_leaves_the_previous_csv_and_the_next_run_removes_its_partial_file(tmp_path):
    """Issue 23: the torch-free predict killed by SIGKILL while it writes: --output is the previous file, byte for byte."""
    import os
    import signal
    import subprocess
    import time

    photos = tmp_path / "photos"
    photos.mkdir()
    sources = sorted((sample_root() / "Positive").glob("*.jpg")) + sorted((sample_root() / "Negative").glob("*.jpg"))
    for i in range(200):
        shutil.copy(sources[i % len(sources)], photos / f"{i:03d}.jpg")
    output = tmp_path / "p.csv"
    previous = b"path,label\nold.jpg,Positive\n"
    output.write_bytes(previous)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crack_lightning",
            "predict",
            "--data.predict_dir",
            str(photos),
            "--output",
            str(output),
            "--overwrite",
            "true",
            "--data.batch_size",
            "4",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    partial = output.with_name(f"p.csv.{process.pid}.partial")
    deadline = time.monotonic() + 60
    while not partial.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, process.stderr.read().decode()
    assert partial.exists()
    time.sleep(0.05)  # some rows in the partial file
    process.send_signal(signal.SIGKILL)
    process.wait()  # reaped: its pid is no longer alive
    process.stderr.close()
    assert output.read_bytes() == previous
    assert partial.exists()  # what a dead process leaves; the next run clears it
    alive = output.with_name("p.csv.1.partial")  # pid 1 is alive: another run's file is left alone
    alive.write_text("another run")
    small = copy_images(tmp_path / "small", 1)
    main(["predict", "--data.predict_dir", str(small), "--output", str(output), "--overwrite", "true"])
    assert not partial.exists() and alive.read_text() == "another run"
    with open(output, newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_a_training_image_deleted_during_fit_is_skipped_with_a_warning_naming_it(tmp_path):
    """Issue 23: a synced folder loses a file after setup; reading it warns with its name and the next image serves."""
    from crack_lightning.data.classification import CrackDataModule

    root = copy_images(tmp_path / "images", 4)
    data = CrackDataModule(
        root=str(root), batch_size=4, num_workers=0, image_size=64, val_fraction=0.25, test_fraction=0
    )
    data.setup("fit")
    train = data.datasets["train"]
    gone, _ = train.samples[0]
    (root / gone).unlink()
    with pytest.warns(UserWarning) as warned:
        items = [train[i] for i in range(len(train))]
    assert [str(w.message) for w in warned if Path(gone).name in str(w.message)]
    assert len(items) == len(train) and all(
        isinstance(image, torch.Tensor) and image.shape[0] == 3 for image, _ in items
    )


@pytest.mark.slow
def test_fit_killed_in_the_fine_tune_phase_resumes_to_the_same_phase(tmp_path):
    """Issue 23: fit killed by SIGKILL once epoch 1 (the first fine-tune epoch) is in last.ckpt; --ckpt_path last.ckpt
    carries on fine-tuning (no second unfreeze) and stops at the planned epoch count."""
    import os
    import signal
    import subprocess
    import time

    root = copy_images(tmp_path / "images", 60)
    args = [
        sys.executable,
        "-m",
        "crack_lightning",
        *fit_args(tmp_path, root, "--trainer.max_epochs", "3", "--data.image_size", "96", "--data.batch_size", "8"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last = tmp_path / "runs" / "crack" / "version_0" / "checkpoints" / "last.ckpt"
    deadline, epoch = time.monotonic() + 300, None
    while epoch != 1 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"] if last.exists() else None
        except Exception:  # caught mid-write: look again
            epoch = None
    assert first.poll() is None and epoch == 1, first.stdout.read().decode()
    first.send_signal(signal.SIGKILL)
    log = first.communicate()[0].decode()
    assert "Epoch 1: unfreezing backbone" in log and "Training finished" not in log
    resumed = subprocess.run(
        [*args, "--ckpt_path", str(last)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    out = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, out
    assert "unfreezing backbone" not in out  # the fine-tune phase was restored, not started again
    assert "Training finished after 3 epoch(s)." in out and "fine-tune phase: from epoch 1" in out
    final = torch.load(
        tmp_path / "runs" / "crack" / "version_1" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert final["epoch"] == 2
