"""export: one ONNX file that takes uint8 images and returns probabilities, with the checkpoint's metadata inside."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from crack_lightning.cli import main
from crack_lightning.data.classification import sample_root
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.runtime.classifier import Classifier
from crack_lightning.runtime.onnx_file import read_metadata

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    main(["export", "--ckpt_path", str(trained["ckpt"]), "--output", str(path), "--check", "false"])
    return load_checkpoint(trained["ckpt"]).eval(), path


def real_images(classifier: Classifier, per_class: int = 10) -> np.ndarray:
    """Real crack and no-crack images (not the training ones) as the graph takes them: uint8 (N, 3, S, S)."""
    paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[-per_class:]]
    return np.stack([classifier.prepare(p) for p in paths])


def test_metadata_matches_the_checkpoint(exported):
    model, path = exported
    meta = read_metadata(path.read_bytes())
    size, mean, std = model.preprocessing
    assert json.loads(meta["class_names"]) == model.class_names == ["Negative", "Positive"]
    assert meta["crack_class"] == model.hparams.crack_class == "Positive"
    assert int(meta["image_size"]) == size == 96
    assert json.loads(meta["mean"]) == pytest.approx(list(mean)) and json.loads(meta["std"]) == pytest.approx(list(std))
    assert "uint8" in meta["input"] and meta["task"] == "classification"


def test_the_file_is_valid_onnx_with_the_same_metadata(exported):
    onnx = pytest.importorskip("onnx")
    _, path = exported
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {p.key: p.value for p in proto.metadata_props} == read_metadata(path.read_bytes())


def test_onnxruntime_of_the_file_matches_pytorch(exported):
    model, path = exported
    classifier = Classifier.from_file(path, backend="onnxruntime")
    images = real_images(classifier)
    with torch.no_grad():
        expected = model.predict_step(torch.from_numpy(images), 0).numpy()
    assert np.abs(classifier.probabilities(images) - expected).max() < 1e-5


def test_the_graph_takes_uint8_images_and_any_batch(exported):
    model, path = exported
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    size = model.preprocessing[0]
    assert given.type == "tensor(uint8)" and given.shape[1:] == [3, size, size] and isinstance(given.shape[0], str)
    images = real_images(Classifier.from_file(path), per_class=3)
    for batch in (1, 5):
        (out,) = session.run(None, {given.name: images[:batch]})
        assert out.shape == (batch, 2) and out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1, atol=1e-5)


def test_export_command_checks_itself_and_names_the_default_output(trained, tmp_path, capsys):
    ckpt = tmp_path / "run" / "best.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(trained["ckpt"].read_bytes())
    main(["export", "--ckpt_path", str(ckpt)])  # --output: the checkpoint's path with .onnx
    out = capsys.readouterr().out
    assert (tmp_path / "run" / "best.onnx").is_file() and "max abs difference of probabilities" in out
    assert float(out.rsplit(" ", 1)[-1]) <= 1e-5


def one_line_error(capsys, args: list[str]) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("crack_lightning: error:")]
    assert exit_info.value.code == 2 and "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_export_refuses_to_overwrite_unless_asked(trained, tmp_path, capsys):
    target = tmp_path / "model.onnx"
    target.write_text("keep me")
    line = one_line_error(capsys, ["export", "--ckpt_path", str(trained["ckpt"]), "--output", str(target)])
    assert f"--output: {target} exists; pass another file, or overwrite it" in line
    assert target.read_text() == "keep me"
    main(
        [
            "export",
            "--ckpt_path",
            str(trained["ckpt"]),
            "--output",
            str(target),
            "--overwrite",
            "true",
            "--check",
            "false",
        ]
    )
    assert json.loads(read_metadata(target.read_bytes())["class_names"]) == ["Negative", "Positive"]


def test_export_errors_are_one_line(trained, tmp_path, capsys):
    missing = one_line_error(
        capsys, ["export", "--ckpt_path", str(tmp_path / "nope.ckpt"), "--output", str(tmp_path / "m.onnx")]
    )
    assert "--ckpt_path: no file" in missing and "nope.ckpt" in missing
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    assert "is not a PyTorch checkpoint" in one_line_error(capsys, ["export", "--ckpt_path", str(text)])
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    line = one_line_error(capsys, ["export", "--ckpt_path", str(trained["ckpt"]), "--output", str(blocker / "m.onnx")])
    assert line.startswith("crack_lightning: error: --output:") and blocker.read_text() == "in the way"
    assert "--no_such" in one_line_error(capsys, ["export", "--no_such", "1"])
    assert not list(tmp_path.glob("*.onnx"))
