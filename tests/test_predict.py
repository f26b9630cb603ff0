from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from crack_lightning.cli import main
from crack_lightning.data import eval_transform, read_rgb
from crack_lightning.model import CrackClassifier
from crack_lightning.predict import decide_labels, predict_images


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    monkeypatch.chdir(tmp_path)  # runs/ of predict calls without --output land here


@pytest.fixture
def unseen(trained, tmp_path) -> Path:
    """A nested folder of images with odd names, a corrupt image and a non-image file."""
    folder = tmp_path / "inspection"
    (folder / "wall A" / "deep").mkdir(parents=True)
    sources = sorted(trained["root"].rglob("*.jpg"))
    shutil.copy(sources[0], folder / "wall A" / "IMG_1.JPG")
    shutil.copy(sources[-1], folder / "wall A" / "deep" / "crack.jpeg")
    Image.open(sources[1]).save(folder / "b.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def predict(ckpt: Path, source: Path | str, *extra: str) -> None:
    main(["predict", "--ckpt_path", str(ckpt), "--data.predict_dir", str(source),
          "--data.num_workers", "0", "--trainer.enable_progress_bar", "false", *extra])


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_folder_without_config(trained, unseen, tmp_path):
    out = tmp_path / "out" / "predictions.csv"
    # float32, to compare with the model's own answer to 1e-5: on CPUs with bf16 units the default is bf16-mixed,
    # which OpenVINO runs in bf16 (tests/test_runtime.py checks it comes close)
    predict(trained["ckpt"], unseen, "--output", str(out), "--trainer.precision", "32-true")
    rows = read_rows(out)
    assert [Path(r["path"]).relative_to(unseen).as_posix() for r in rows] == [
        "b.png", "broken.jpg", "wall A/IMG_1.JPG", "wall A/deep/crack.jpeg"
    ]
    assert list(rows[0]) == ["path", "label", "crack_probability", "probability_Negative", "probability_Positive", "error"]
    broken = rows[1]
    assert "broken.jpg: cannot be read as an image" in broken["error"] and broken["label"] == ""
    model = CrackClassifier.load_from_checkpoint(trained["ckpt"], map_location="cpu").eval()
    transform = eval_transform(*model.preprocessing)
    for row in (rows[0], rows[2], rows[3]):
        assert row["error"] == ""
        with torch.no_grad():
            expected = model(transform(read_rgb(row["path"]))[None]).softmax(1)[0]
        assert float(row["probability_Negative"]) + float(row["probability_Positive"]) == pytest.approx(1, abs=1e-5)
        assert float(row["crack_probability"]) == pytest.approx(expected[1].item(), abs=1e-5)
        assert row["label"] == ("Positive" if expected[1] >= 0.5 else "Negative")
    assert not (tmp_path / "out" / "predictions.csv.partial").exists()


def test_predict_single_image_and_a_list(trained, unseen, tmp_path):
    predict(trained["ckpt"], unseen / "b.png", "--output", str(tmp_path / "one.csv"))
    assert [Path(r["path"]).name for r in read_rows(tmp_path / "one.csv")] == ["b.png"]

    listing = unseen / "list.txt"
    listing.write_text("# images to check\nb.png\n\nwall A/IMG_1.JPG\nmissing.jpg\n")
    predict(trained["ckpt"], listing, "--output", str(tmp_path / "list.csv"))
    rows = read_rows(tmp_path / "list.csv")
    assert [Path(r["path"]).name for r in rows] == ["b.png", "IMG_1.JPG", "missing.jpg"]
    assert rows[2]["error"] and rows[2]["label"] == "" and rows[0]["error"] == ""


def test_existing_output_is_kept_unless_overwrite(trained, unseen, tmp_path, capsys):
    out = tmp_path / "predictions.csv"
    out.write_text("my earlier results\n")
    with pytest.raises(SystemExit) as exit_info:
        predict(trained["ckpt"], unseen, "--output", str(out))
    assert exit_info.value.code == 2 and "exists" in capsys.readouterr().err
    assert out.read_text() == "my earlier results\n"
    predict(trained["ckpt"], unseen, "--output", str(out), "--overwrite", "true")
    assert len(read_rows(out)) == 4


def test_default_output_goes_to_the_log_dir(trained, unseen, tmp_path, caplog):
    predict(trained["ckpt"], unseen)
    (written,) = (tmp_path / "runs").rglob("predictions.csv")
    assert len(read_rows(written)) == 4
    assert f"Predictions written to {written.relative_to(tmp_path)}" in caplog.text


def test_threshold_flag(trained, unseen, tmp_path):
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "all.csv"), "--threshold", "0")
    assert {r["label"] for r in read_rows(tmp_path / "all.csv") if not r["error"]} == {"Positive"}
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "none.csv"), "--threshold", "1")
    assert {r["label"] for r in read_rows(tmp_path / "none.csv") if not r["error"]} == {"Negative"}


def test_predict_images_api_matches_the_csv(trained, unseen, tmp_path):
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "p.csv"), "--trainer.precision", "32-true")  # as above
    rows = [r for r in read_rows(tmp_path / "p.csv") if not r["error"]]
    model = CrackClassifier.load_from_checkpoint(trained["ckpt"], map_location="cpu")
    paths = [r["path"] for r in rows]
    by_path = predict_images(model, paths, batch_size=2)
    by_pil = predict_images(model, [Image.open(p) for p in paths], batch_size=1)
    by_tensor = predict_images(model, [read_rgb(p) for p in paths])
    assert by_path.labels == [r["label"] for r in rows] == by_pil.labels == by_tensor.labels
    expected = torch.tensor([float(r["crack_probability"]) for r in rows])
    for result in (by_path, by_pil, by_tensor):
        assert torch.allclose(result.crack_probability, expected, atol=1e-5)
        assert result.probabilities.shape == (3, 2) and result.class_names == ["Negative", "Positive"]


def test_predict_without_checkpoint_is_an_error(unseen, capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--data.predict_dir", str(unseen), "--trainer.enable_progress_bar", "false"])
    assert "predict needs a trained model: pass --ckpt_path" in capsys.readouterr().err


def test_decide_labels_with_three_classes():
    probabilities = torch.tensor([[0.2, 0.5, 0.3], [0.5, 0.1, 0.4], [0.1, 0.35, 0.55]])
    names = ["A", "Crack", "B"]
    assert decide_labels(probabilities, names, crack_index=1, threshold=0.5) == ["Crack", "A", "B"]
    assert decide_labels(probabilities, names, crack_index=1, threshold=0.3) == ["Crack", "A", "Crack"]
