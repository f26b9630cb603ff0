from __future__ import annotations

import json
import sys

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from crack_lightning.cli import main
from crack_lightning.training.evaluate import compute_report, format_table


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    monkeypatch.chdir(tmp_path)


def test_report_numbers_on_a_known_case():
    # 4 cracks (label 1): 3 found; 4 sound (label 0): 1 false alarm.
    crack = torch.tensor([0.9, 0.8, 0.7, 0.2, 0.1, 0.3, 0.6, 0.05])
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    report = compute_report(torch.stack([1 - crack, crack], dim=1), labels, ["Negative", "Positive"], crack_index=1)
    assert report["accuracy"] == pytest.approx(6 / 8)
    assert report["precision"] == pytest.approx(3 / 4) and report["recall"] == pytest.approx(3 / 4)
    assert report["f1"] == pytest.approx(3 / 4)
    # AUROC by counting: of 16 (crack, sound) pairs, the crack scores higher in 14.
    assert report["auroc"] == pytest.approx(14 / 16)
    assert report["confusion_matrix"]["counts"] == [[3, 1], [1, 3]]
    assert report["crack_counts"] == {"true_positive": 3, "false_positive": 1, "true_negative": 3, "false_negative": 1}
    table = format_table(report)
    assert "accuracy   0.7500" in table and "Positive" in table


def test_report_with_one_class_has_no_auroc():
    report = compute_report(torch.tensor([[0.2, 0.8], [0.6, 0.4]]), torch.tensor([1, 1]), ["N", "P"], 1)
    assert report["auroc"] is None and report["recall"] == pytest.approx(0.5)


def test_test_command_writes_report_pictures_and_tensorboard(trained, tmp_path, capsys):
    args = [
        "test",
        "--ckpt_path",
        str(trained["ckpt"]),
        "--data.root",
        str(trained["root"]),
        "--data.num_workers",
        "0",
        "--trainer.enable_progress_bar",
        "false",
    ]
    main(args)
    out = capsys.readouterr().out
    assert "Test report:" in out and "true \\ predicted" in out
    (report_dir,) = (tmp_path / "runs").rglob("test_report")
    report = json.loads((report_dir / "test_report.json").read_text())
    assert report["images"] == 2  # test_fraction 0.04 of 30 images per class: round(1.2) = 1 per class
    for key in ("accuracy", "precision", "recall", "f1", "auroc", "confusion_matrix", "crack_counts", "misclassified"):
        assert key in report
    assert sum(map(sum, report["confusion_matrix"]["counts"])) == report["images"]
    for name in ("confusion_matrix", "roc_curve", "precision_recall_curve", "misclassified"):
        with Image.open(report_dir / f"{name}.png") as png:
            assert png.width > 200 and png.height > 100
    events = EventAccumulator(str(report_dir.parent), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    images = set(events.Tags()["images"])
    assert {"test/confusion_matrix", "test/roc_curve", "test/precision_recall_curve", "test/misclassified"} <= images
    assert "test_acc" in events.Tags()["scalars"]

    main(args)  # a second test run writes a new report and leaves the first alone
    assert len(list((tmp_path / "runs").rglob("test_report.json"))) == 2


def test_report_dir_with_a_report_is_refused(trained, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "test_report.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(
            [
                "test",
                "--ckpt_path",
                str(trained["ckpt"]),
                "--data.root",
                str(trained["root"]),
                "--data.num_workers",
                "0",
                "--report.output_dir",
                str(tmp_path / "mine"),
            ]
        )
    assert "holds a report already" in capsys.readouterr().err
    assert (tmp_path / "mine" / "test_report.json").read_text() == "{}"


def test_evaluating_all_of_an_unseen_folder(trained, tmp_path):
    main(
        [
            "test",
            "--ckpt_path",
            str(trained["ckpt"]),
            "--data.root",
            str(trained["root"]),
            "--data.val_fraction",
            "0",
            "--data.test_fraction",
            "1",
            "--data.num_workers",
            "0",
            "--trainer.enable_progress_bar",
            "false",
            "--report.output_dir",
            str(tmp_path / "all"),
        ]
    )
    assert json.loads((tmp_path / "all" / "test_report.json").read_text())["images"] == 60


def logged_test_loss(save_dir) -> float:
    (run_dir,) = {p.parent for p in save_dir.rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    (scalar,) = events.Scalars("test_loss")
    return scalar.value


def test_tta_is_an_option_of_test_and_old_model_flags_are_ignored(trained, tmp_path):
    old = tmp_path / "old.ckpt"  # a checkpoint of version 0.1.0 carried the inference choices as hyperparameters
    checkpoint = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"].update(tta="hflip", inference_backend="torch")
    torch.save(checkpoint, old)
    common = [
        "--data.root",
        str(trained["root"]),
        "--data.val_fraction",
        "0",
        "--data.test_fraction",
        "1",
        "--data.num_workers",
        "0",
        "--trainer.enable_progress_bar",
        "false",
    ]
    runs = {
        "plain": ["--ckpt_path", str(trained["ckpt"])],
        "hflip": ["--ckpt_path", str(trained["ckpt"]), "--tta", "hflip"],
        "old": ["--ckpt_path", str(old), "--model.tta", "hflip", "--model.inference_backend", "torch"],
    }
    reports, losses = {}, {}
    for name, args in runs.items():
        main(["test", *args, *common, "--trainer.logger.init_args.save_dir", str(tmp_path / name)])
        (report,) = (tmp_path / name).rglob("test_report.json")
        reports[name] = json.loads(report.read_text())
        losses[name] = logged_test_loss(tmp_path / name)
    assert reports["old"]["images"] == reports["plain"]["images"] == 60
    for key in ("accuracy", "auroc", "confusion_matrix", "misclassified"):
        assert reports["old"][key] == reports["plain"][key], key  # the old flags change nothing
    assert losses["old"] == losses["plain"]
    assert abs(losses["hflip"] - losses["plain"]) > 1e-4  # --tta hflip does (tests/test_inference.py: by how much)
