"""The fast paths give the same answers: folded frozen blocks in training, ONNX Runtime and OpenVINO for inference,
automatic precision, and the default number of DataLoader workers."""

from __future__ import annotations

import csv
import logging
import sys

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.io import decode_jpeg, read_file, write_png

from crack_lightning import data as data_module
from crack_lightning import precision as precision_module
from crack_lightning.callbacks import TwoPhaseFinetuning
from crack_lightning.cli import main
from crack_lightning.data import CrackDataModule, eval_transform, predict_transform, read_rgb, sample_root
from crack_lightning.errors import CrackLightningError
from crack_lightning.model import CrackClassifier, load_checkpoint
from crack_lightning.predict import predict_images
from crack_lightning.pretrained import BUNDLED_BACKBONE
from crack_lightning.runtime import choose_backend


def sample_images(step: int = 60) -> list:
    return sorted(sample_root().rglob("*.jpg"))[::step]


def fine_tune_state(unfreeze_from: int = 12) -> CrackClassifier:
    """A model as the fine-tune phase leaves it: backbone[:unfreeze_from] frozen, every BatchNorm in eval mode."""
    torch.manual_seed(0)
    model = CrackClassifier(class_names=["Negative", "Positive"], weights=str(BUNDLED_BACKBONE), dropout=0.0)
    model.load_pretrained()
    model.backbone.requires_grad_(False)
    model.backbone[unfreeze_from:].requires_grad_(True)
    model.train()
    for m in model.backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return model


def plain_forward(model: CrackClassifier, images: torch.Tensor) -> torch.Tensor:
    return model.head(model.backbone(images.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3)))


def test_frozen_blocks_run_folded_with_the_same_outputs_and_gradients():
    model = fine_tune_state(12)
    images = torch.randn(4, 3, 96, 96)
    assert model._frozen_blocks() == 12
    fast = model(images)
    fast.sum().backward()
    fast_grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    plain = plain_forward(model, images)
    plain.sum().backward()
    plain_grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.allclose(fast, plain, atol=1e-4)
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in zip(fast_grads, plain_grads))
    assert list(model._folded) == [(12, False)]
    assert not any(k.startswith("_folded") for k in model.state_dict())  # never saved


def test_folded_blocks_follow_changes_to_the_weights():
    model = fine_tune_state(19)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(images)
        model.backbone[0][0].weight.mul_(1.5)  # as an optimiser step or a loaded checkpoint would, in place
        after = model(images)
        assert not torch.allclose(before, after, atol=1e-3)
        assert torch.allclose(after, plain_forward(model, images), atol=1e-4)
        model.backbone[3].conv[1][1].running_var.fill_(2.0)  # running statistics are part of the fold
        assert torch.allclose(model(images), plain_forward(model, images), atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_every_runtime_of_the_frozen_blocks_agrees(backend):
    model = fine_tune_state(12)
    model.hparams.inference_backend = backend
    images = torch.randn(3, 3, 80, 80)
    assert torch.allclose(model(images), plain_forward(model, images), atol=1e-4)
    runner = model._folded[(12, False)][1]
    if backend == "torch":
        assert not any(isinstance(m, nn.BatchNorm2d) for m in runner.modules())
        assert not any(p.requires_grad for p in runner.parameters())
    else:
        assert type(runner).__name__ == {"onnxruntime": "OnnxRuntimeNetwork", "openvino": "OpenVinoNetwork"}[backend]
    import pickle

    assert pickle.loads(pickle.dumps(model))._folded == {}  # sessions are rebuilt, never pickled


def test_batchnorm_in_training_mode_is_never_folded():
    model = fine_tune_state(12)
    model.backbone.train()  # train_bn: batch statistics
    assert model._frozen_blocks() == 0
    model.eval()
    with torch.no_grad():
        assert model._frozen_blocks() == 19  # evaluation: all of it
    assert model._frozen_blocks() == 12  # with gradients: the trainable blocks run as they are


@pytest.fixture(scope="module")
def model(trained) -> CrackClassifier:
    return load_checkpoint(trained["ckpt"])


def test_onnxruntime_openvino_and_torch_give_the_same_probabilities(model):
    paths = sample_images()
    ort = predict_images(model, paths, backend="onnxruntime")
    plain = predict_images(model, paths, backend="torch")
    openvino = predict_images(model, paths, backend="openvino")  # float32 asked for: float32 on any CPU
    assert torch.allclose(ort.probabilities, plain.probabilities, atol=1e-5)
    assert torch.allclose(openvino.probabilities, plain.probabilities, atol=1e-5)
    assert ort.labels == plain.labels == openvino.labels
    transform = eval_transform(*model.preprocessing)
    with torch.no_grad():  # and both are the model's own eval-mode answer
        reference = model.eval()(torch.stack([transform(read_rgb(p)) for p in paths])).softmax(1)
    assert torch.allclose(ort.probabilities, reference, atol=1e-5)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "torch"])
def test_networks_of_uint8_images_normalise_like_the_eval_transform(model, backend):
    # predict and scan hand the network resized uint8 batches and let it normalise them (in the ONNX graph too)
    paths = sample_images(120)
    transform = eval_transform(*model.preprocessing)
    resized = torch.stack([predict_transform(model.preprocessing[0])(read_rgb(p)) for p in paths])
    normalised = torch.stack([transform(read_rgb(p)) for p in paths])
    from_uint8 = model.inference_network(backend, takes_uint8=True)(resized)
    from_float = model.inference_network(backend)(normalised)
    assert resized.dtype == torch.uint8
    assert torch.allclose(from_uint8, from_float, atol=1e-5)
    # a float image in [0, 1] is taken as the uint8 image it stands for
    as_float = predict_images(model, [resized[0].float() / 255], backend=backend)
    assert torch.allclose(as_float.probabilities, from_uint8[:1], atol=1e-5)


def test_backend_choice(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_backend("auto", cpu)[0] == "onnxruntime"
    assert choose_backend("auto", cuda)[0] == "torch"
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    assert choose_backend("auto", cpu, "bf16")[0] == "openvino"  # its bf16 beats ONNX Runtime's float32
    assert choose_backend("openvino", cpu, "bf16") == ("openvino", "asked for; bf16")
    assert choose_backend("openvino", cpu) == ("openvino", "asked for; float32")
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)  # OpenVINO would emulate bf16: slow
    assert choose_backend("auto", cpu, "bf16")[0] == "onnxruntime"
    assert choose_backend("openvino", cpu, "bf16") == ("openvino", "asked for; float32")
    assert choose_backend("onnxruntime", cpu, "bf16") == ("onnxruntime", "asked for; float32")
    assert choose_backend("torch", cpu, "bf16")[0] == "torch"
    assert choose_backend("torch", cpu)[0] == "torch"
    for cpu_only in ("onnxruntime", "openvino"):
        with pytest.raises(CrackLightningError, match=f"{cpu_only} runs on the CPU"):
            choose_backend(cpu_only, cuda)
    with pytest.raises(CrackLightningError, match="pass one of auto, torch, onnxruntime, openvino"):
        choose_backend("tensorrt", cpu)


def hide_modules(monkeypatch, *names: str) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a))


def test_auto_without_onnxruntime_falls_back_to_torch_and_says_so(monkeypatch):
    hide_modules(monkeypatch, "onnxruntime", "openvino")
    backend, why = choose_backend("auto", torch.device("cpu"))
    assert backend == "torch" and "not installed" in why
    for name in ("onnxruntime", "openvino"):
        with pytest.raises(CrackLightningError, match=f"inference backend {name}: it is not installed; pip install {name}"):
            choose_backend(name, torch.device("cpu"))


def test_auto_without_openvino_runs_bf16_models_in_onnxruntime(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    hide_modules(monkeypatch, "openvino")
    assert choose_backend("auto", torch.device("cpu"), "bf16") == (
        "onnxruntime", "float32 on the CPU: faster than PyTorch's bf16 and exact"
    )


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_precision_follows_the_cpu(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: has_bf16)
    assert precision_module.auto_precision("cpu")[0] == expected


def predict_csv(ckpt, images, out, *extra) -> dict[str, float]:
    main(["predict", "--ckpt_path", str(ckpt), "--data.predict_dir", str(images), "--output", str(out),
          "--trainer.enable_progress_bar", "false", *extra])
    with open(out, newline="") as f:
        return {row["path"]: float(row["crack_probability"]) for row in csv.DictReader(f)}


def test_predict_cli_picks_precision_and_runtime_and_says_which(trained, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    monkeypatch.chdir(tmp_path)  # the run folder of each predict lands here
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)
    images = tmp_path / "images.txt"
    images.write_text("\n".join(str(p) for p in sample_images(40)))
    with caplog.at_level(logging.INFO):
        auto = predict_csv(trained["ckpt"], images, tmp_path / "auto.csv")
    assert "Precision: 32-true" in caplog.text and "Inference: ONNX Runtime" in caplog.text
    plain = predict_csv(trained["ckpt"], images, tmp_path / "torch.csv", "--model.inference_backend", "torch")
    assert auto.keys() == plain.keys() and all(abs(auto[k] - plain[k]) < 1e-5 for k in auto)
    # A CPU with bf16 gets bf16-mixed: OpenVINO classifies in bf16 (in float32 where it really has none),
    # ONNX Runtime when asked in float32, PyTorch when asked in bf16: each close to float32.
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        bf16 = predict_csv(trained["ckpt"], images, tmp_path / "bf16.csv")
        assert "Precision: bf16-mixed" in caplog.text and "Inference: OpenVINO (bf16 on the CPU" in caplog.text
        ort = predict_csv(trained["ckpt"], images, tmp_path / "ort.csv", "--model.inference_backend", "onnxruntime")
        assert "Inference: ONNX Runtime (asked for; float32)" in caplog.text
        torch_bf16 = predict_csv(trained["ckpt"], images, tmp_path / "torch_bf16.csv", "--model.inference_backend", "torch")
    assert "Inference: PyTorch" in caplog.text
    assert all(abs(auto[k] - ort[k]) < 1e-5 for k in auto)
    assert max(abs(bf16[k] - auto[k]) for k in auto) < 0.1
    assert max(abs(torch_bf16[k] - auto[k]) for k in auto) < 0.1


def test_bf16_mixed_fit_on_cpu_keeps_float32_weights(image_root, tmp_path, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)  # as on an AMX CPU
    L.seed_everything(0)
    model = CrackClassifier(weights=str(BUNDLED_BACKBONE))
    data = CrackDataModule(root=str(image_root), batch_size=8, num_workers=0, image_size=64)
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=2, limit_val_batches=1, precision="bf16-mixed", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=1)],
    )
    trainer.fit(model, data)
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    assert all(v.dtype in (torch.float32, torch.int64) for v in model.state_dict().values())
    # inside bf16 autocast the frozen blocks run in OpenVINO's bf16 (float32 on CPUs without bf16 units): float32
    # out, close to the float32 function; outside it in float32 ONNX Runtime, exact
    model.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        exact = model.backbone[:12](images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            frozen = model._frozen_prefix(12)(images)
        assert type(model._folded[(12, True)][1]).__name__ == "OpenVinoNetwork"
        assert frozen.dtype == torch.float32 and (frozen - exact).norm() < 0.05 * exact.norm()
        assert torch.allclose(model._frozen_prefix(12)(images), exact, atol=1e-4)


@pytest.mark.parametrize("cores, workers", [(1, 0), (2, 0), (4, 3), (32, 8)])
def test_default_workers(monkeypatch, cores, workers):
    monkeypatch.setattr(data_module.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert data_module.default_workers() == workers


def test_hflip_tta_averages_each_image_with_its_mirror_image(model, tmp_path, monkeypatch):
    paths = sample_images(40)
    mirrored = []
    for path in paths:  # the same images, mirrored on disk
        out = tmp_path / f"mirror_{path.stem}.png"  # lossless
        write_png(decode_jpeg(read_file(str(path))).flip(2), str(out))
        mirrored.append(out)
    plain = predict_images(model, paths).probabilities
    flipped = predict_images(model, mirrored).probabilities
    model.hparams.tta = "hflip"
    try:
        for backend in ("onnxruntime", "torch"):
            tta = predict_images(model, paths, backend=backend).probabilities
            assert torch.allclose(tta, (plain + flipped) / 2, atol=1e-5), backend
            assert torch.allclose(tta.sum(1), torch.ones(len(paths)), atol=1e-5)
    finally:
        model.hparams.tta = "none"


def test_hflip_tta_in_the_test_step_and_label_smoothing_in_training_only():
    torch.manual_seed(0)
    model = CrackClassifier(class_names=["Negative", "Positive"], weights="none", dropout=0.0, label_smoothing=0.2)
    model.log = model.log_dict = lambda *a, **k: None  # no Trainer to log to
    model._trainer = type("T", (), {"sanity_checking": False})()
    images, labels = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 1, 0])
    model.train()
    loss = model.training_step((images, labels), 0)
    assert torch.allclose(loss, F.cross_entropy(model(images), labels, label_smoothing=0.2))
    model.eval()
    with torch.no_grad():
        logits = model(images)
        assert torch.allclose(model._evaluate((images, labels), "val"), logits.softmax(1))
        model.hparams.tta = "hflip"
        both = (logits.softmax(1) + model(images.flip(3)).softmax(1)) / 2
        assert torch.allclose(model._evaluate((images, labels), "test"), both, atol=1e-6)
        assert torch.allclose(model._evaluate((images, labels), "val"), logits.softmax(1))  # validation stays plain
    with pytest.raises(CrackLightningError, match="--model.label_smoothing"):
        CrackClassifier(label_smoothing=1.0)


def test_model_flags_typed_at_predict_win_over_the_checkpoints_hyperparameters(trained, tmp_path, monkeypatch, caplog):
    # The checkpoint holds tta: none and inference_backend: auto; the command line asks for others.
    hparams = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["tta"] == "none" and hparams["inference_backend"] == "auto"
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    monkeypatch.chdir(tmp_path)
    images = tmp_path / "images.txt"
    images.write_text("\n".join(str(p) for p in sample_images(40)))
    plain = predict_csv(trained["ckpt"], images, tmp_path / "plain.csv")
    with caplog.at_level(logging.INFO):
        mirrored = predict_csv(trained["ckpt"], images, tmp_path / "tta.csv", "--model.tta", "hflip",
                               "--model.inference_backend=torch")
    assert "Inference: PyTorch (asked for), averaged with the mirror image" in caplog.text
    assert max(abs(mirrored[k] - plain[k]) for k in plain) > 1e-4
