from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from crack_lightning.cli import main
from crack_lightning.data import sample_root
from crack_lightning.errors import CrackLightningError
from crack_lightning.export import compare_with_onnxruntime, export_onnx, onnx_input
from crack_lightning.model import CrackClassifier

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model = CrackClassifier.load_from_checkpoint(trained["ckpt"], map_location="cpu")
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx")
    return model, path


def real_images(size: int, per_class: int = 10) -> torch.Tensor:
    """Real crack and no-crack images (not the training ones), as the ONNX input expects: float RGB in [0, 1]."""
    paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[-per_class:]]
    return onnx_input(paths, size)


def test_onnx_matches_pytorch_on_real_images(exported):
    model, path = exported
    images = real_images(model.preprocessing[0])
    assert compare_with_onnxruntime(model, path, images) <= 1e-4


def test_onnx_batch_dimension_is_dynamic(exported):
    model, path = exported
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    size = model.preprocessing[0]
    assert session.get_inputs()[0].shape[1:] == [3, size, size] and isinstance(session.get_inputs()[0].shape[0], str)
    images = real_images(size, per_class=3).numpy()
    for batch in (1, 5):
        (out,) = session.run(None, {"images": images[:batch]})
        assert out.shape == (batch, 2) and np.allclose(out.sum(axis=1), 1, atol=1e-5)


def test_onnx_metadata_names_classes_and_input(exported):
    model, path = exported
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["class_names"]) == ["Negative", "Positive"] and meta["crack_class"] == "Positive"
    assert meta["image_size"] == str(model.preprocessing[0]) and "[0, 1]" in meta["input"]
    assert json.loads(meta["normalization_mean"]) == pytest.approx([0.485, 0.456, 0.406])


def test_export_keeps_an_existing_file(exported, tmp_path):
    model, _ = exported
    target = tmp_path / "model.onnx"
    target.write_text("keep me")
    with pytest.raises(CrackLightningError, match="exists"):
        export_onnx(model, target)
    assert target.read_text() == "keep me"


def test_export_command(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    main(["export", "--ckpt_path", str(trained["ckpt"]), "--output", str(tmp_path / "m.onnx")])
    out = capsys.readouterr().out
    assert (tmp_path / "m.onnx").is_file() and "max abs difference of probabilities" in out
    difference = float(out.rsplit(" ", 1)[-1])
    assert difference <= 1e-4
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt_path", str(tmp_path / "nope.ckpt")])
    assert exit_info.value.code == 2 and "--ckpt_path: no file" in capsys.readouterr().err


def test_onnx_opset_is_pinned(exported):
    _, path = exported
    assert {(o.domain, o.version) for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")} == {("", 18)}
