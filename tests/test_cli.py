from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from crack_lightning.cli import main
from crack_lightning.models.classifier import CrackClassifier
from tests.conftest import REPO, copy_images

CONFIG = str(REPO / "configs" / "default.yaml")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    # LightningCLI warns when pytest's own arguments sit in sys.argv beside `args`.
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])


def run_fit(tmp_path: Path, root: Path, *extra: str) -> Path:
    main(
        [
            "fit",
            "--config",
            CONFIG,
            "--data.root",
            str(root),
            "--data.num_workers",
            "0",
            "--data.batch_size",
            "16",
            "--model.weights",
            str(REPO / "crack_lightning/assets/weights/mobilenet_v2_features_partial_imagenet.pth"),
            "--trainer.max_epochs",
            "2",
            "--finetuning.unfreeze_at_epoch",
            "1",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
            "--trainer.enable_progress_bar",
            "false",
            *extra,
        ]
    )
    (run_dir,) = (tmp_path / "runs" / "crack").iterdir()
    return run_dir


def test_fit_end_to_end_through_the_cli(tmp_path):
    root = copy_images(tmp_path / "images", 20)
    run_dir = run_fit(tmp_path, root)

    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(name.startswith("best-epoch") for name in checkpoints)
    assert len(checkpoints) == 2
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1  # the last epoch
    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    model = CrackClassifier.load_from_checkpoint(best, map_location="cpu")
    assert model.class_names == ["Negative", "Positive"] and model.preprocessing[0] == 227

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert len(events.Scalars("val_loss")) == 2  # one per epoch
    for tag in ("train_loss_epoch", "val_acc", "val_f1", "val_auroc", "lr-Adam/head", "lr-Adam/backbone"):
        assert tag in scalars, tag
    assert [s.value for s in events.Scalars("lr-Adam/backbone")] == pytest.approx([1e-4])
    assert {"augmented_train_images/Negative", "augmented_train_images/Positive"} <= set(events.Tags()["images"])

    with open(run_dir / "split.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and {r["split"] for r in rows} == {"train", "val", "test"}
    assert all((root / r["path"]).is_file() and r["path"].startswith(r["class"] + "/") for r in rows)
    assert (run_dir / "config.yaml").is_file()


def test_second_run_never_overwrites_the_first(tmp_path):
    root = copy_images(tmp_path / "images", 10)
    first = run_fit(
        tmp_path,
        root,
        "--trainer.max_epochs",
        "1",
        "--finetuning.unfreeze_at_epoch",
        "0",
        "--sample_grid.images_per_class",
        "0",
    )
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    main(
        [
            "fit",
            "--config",
            CONFIG,
            "--data.root",
            str(root),
            "--data.num_workers",
            "0",
            "--model.weights",
            "none",
            "--trainer.max_epochs",
            "1",
            "--finetuning.unfreeze_at_epoch",
            "0",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
        ]
    )
    assert sorted(p.name for p in (tmp_path / "runs" / "crack").iterdir()) == ["version_0", "version_1"]
    assert all(p.read_bytes() == content for p, content in before.items())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data.root", "/no/such/folder"], "--data.root: no folder /no/such/folder"),
        (["--model.weights", "/no/such/file.pth"], "--model.weights: no file /no/such/file.pth"),
        (["--model.crack_class", "Crack"], "--model.crack_class: 'Crack' is not one of"),
    ],
)
def test_bad_input_is_one_line_on_stderr(tmp_path, capsys, args, message):
    root = copy_images(tmp_path / "images", 5)
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "fit",
                "--config",
                CONFIG,
                "--data.root",
                str(root),
                "--trainer.logger.init_args.save_dir",
                str(tmp_path / "runs"),
                "--trainer.enable_progress_bar",
                "false",
                *args,
            ]
        )
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("crack_lightning: error:")]
    assert len(lines) == 1 and message in lines[0]


def test_print_config_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", CONFIG, "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert (
        "unfreeze_at_epoch: 2" in out and "patience: 3" in out and "weights: auto" in out and "image_size: 227" in out
    )


def printed_config(capsys, *configs: str) -> dict:
    with pytest.raises(SystemExit):
        main(["fit", *[a for c in configs for a in ("--config", str(REPO / "configs" / c))], "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def test_default_yaml_holds_the_built_in_defaults_and_original_yaml_the_keras_recipe(capsys):
    built_in, default = printed_config(capsys), printed_config(capsys, "default.yaml")
    for section in ("model", "data", "finetuning", "early_stopping"):
        assert built_in[section] == default[section], section
    assert built_in["trainer"]["max_epochs"] == default["trainer"]["max_epochs"] == 6
    original = printed_config(capsys, "default.yaml", "original.yaml")
    assert (original["data"]["image_size"], original["model"]["lr"], original["trainer"]["max_epochs"]) == (
        160,
        1e-4,
        20,
    )
    assert (original["finetuning"]["unfreeze_at_epoch"], original["finetuning"]["backbone_lr"]) == (10, 1e-5)


def test_resume_from_last_checkpoint_continues_the_fine_tune_phase(tmp_path, caplog):
    root = copy_images(tmp_path / "images", 10)
    first = run_fit(tmp_path, root, "--sample_grid.images_per_class", "0")
    last = first / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 1
    caplog.clear()
    main(
        [
            "fit",
            "--config",
            CONFIG,
            "--data.root",
            str(root),
            "--data.num_workers",
            "0",
            "--data.batch_size",
            "16",
            "--trainer.max_epochs",
            "3",
            "--finetuning.unfreeze_at_epoch",
            "1",
            "--sample_grid.images_per_class",
            "0",
            "--trainer.logger.init_args.save_dir",
            str(tmp_path / "runs"),
            "--trainer.enable_progress_bar",
            "false",
            "--ckpt_path",
            str(last),
        ]
    )
    assert "unfreezing" not in caplog.text  # the fine-tune phase was restored, not started again
    resumed = torch.load(tmp_path / "runs" / "crack" / "version_1" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == 2
    assert resumed["callbacks"]["TwoPhaseFinetuning"]["unfrozen_epoch"] == 1
    assert [g["name"] for g in resumed["optimizer_states"][0]["param_groups"]] == ["head", "backbone"]


SEGMENTER_OVERLAYS = ("configs/concrete-seg-v1.yaml", "configs/concrete-seg-v2.yaml", "configs/segment-gpu.yaml")
ADAPT_SEGMENTER = "configs/adapt-segmenter.yaml"  # on top of segment.yaml and concrete-seg-v2.yaml, as its header says


@pytest.mark.parametrize(
    "config",
    sorted(
        str(p.relative_to(REPO)) for folder in ("configs", "bench/schedules") for p in (REPO / folder).glob("*.yaml")
    ),
)
def test_every_shipped_config_parses(config, capsys):
    from crack_lightning.cli import config_task

    if getattr(config_task(str(REPO / config)), "name", "") == "segmentation":  # the segmenter's configs stand alone
        args, expected = ["--config", str(REPO / config)], "CrackSegmenter"
    elif config in (*SEGMENTER_OVERLAYS, ADAPT_SEGMENTER):  # on top of segment.yaml, as their headers say
        base = ["segment.yaml"] + (["concrete-seg-v2.yaml"] if config == ADAPT_SEGMENTER else [])
        args = [a for name in base for a in ("--config", str(REPO / "configs" / name))] + [
            "--config",
            str(REPO / config),
        ]
        expected = "CrackSegmenter"
    else:  # the classifier's: on top of default.yaml, as the docs show them
        args, expected = ["--config", CONFIG, "--config", str(REPO / config)], "finetuning:"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code == 0 and expected in capsys.readouterr().out
