"""The fast paths give the same answers: ONNX Runtime and OpenVINO against PyTorch, test-time augmentation, the backend
and precision choices, the frozen-blocks speed-up in training, and validation in float32."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from crack_lightning.data import datasets as datasets_module
from crack_lightning.data.classification import CrackDataModule, sample_root
from crack_lightning.errors import CrackLightningError
from crack_lightning.export.onnx import export_classifier
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.models.pretrained import BUNDLED_BACKBONE
from crack_lightning.runtime import backends
from crack_lightning.runtime.backends import choose_backend
from crack_lightning.runtime.classifier import Classifier
from crack_lightning.runtime.labels import decide_labels
from crack_lightning.training import precision as precision_module
from crack_lightning.training.callbacks import TwoPhaseFinetuning
from crack_lightning.training.frozen_blocks import FrozenBlocksRuntime


def sample_images(step: int = 60) -> list:
    return sorted(sample_root().rglob("*.jpg"))[::step]


@pytest.fixture(scope="module")
def model(trained) -> CrackClassifier:
    return load_checkpoint(trained["ckpt"]).eval()


@pytest.fixture(scope="module")
def graph(model) -> bytes:
    return export_classifier(model)


def uint8_batch(classifier: Classifier, paths) -> np.ndarray:
    return np.stack([classifier.prepare(p) for p in paths])


def torch_probabilities(model: CrackClassifier, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.predict_step(torch.from_numpy(batch), 0).numpy()


# --- which runtime runs the network -----------------------------------------------------------------------------


def test_backend_choice_on_a_cpu_with_bf16(monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    assert choose_backend("auto", "32") == ("onnxruntime", "float32")
    assert choose_backend("auto", "bf16") == ("openvino", "bf16 on a CPU with bf16 units")  # 2x ONNX Runtime's float32
    assert choose_backend("openvino", "bf16") == ("openvino", "asked for; bf16")
    assert choose_backend("openvino", "32") == ("openvino", "asked for; float32")
    assert choose_backend("onnxruntime", "bf16") == ("onnxruntime", "asked for; float32")


def test_backend_choice_on_a_cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)  # OpenVINO would emulate bf16: slowly
    assert choose_backend("auto", "bf16") == ("onnxruntime", "float32: this CPU has no native bf16")
    assert choose_backend("openvino", "bf16") == ("openvino", "asked for; float32")
    assert choose_backend("auto", "32") == ("onnxruntime", "float32")


def test_bad_backend_or_precision_is_a_one_line_error():
    with pytest.raises(CrackLightningError, match="backend: 'tensorrt'; pass one of auto, onnxruntime, openvino"):
        choose_backend("tensorrt")
    with pytest.raises(CrackLightningError, match="precision: '16'; pass one of auto, 32, bf16"):
        choose_backend("auto", "16")


def hide_modules(monkeypatch, *names: str) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a))


def test_a_missing_runtime_is_named(monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    hide_modules(monkeypatch, "openvino")
    assert choose_backend("auto", "bf16")[0] == "onnxruntime"  # bf16 asked for, no OpenVINO: exact float32
    with pytest.raises(CrackLightningError, match="backend: 'openvino': it is not installed; pip install openvino"):
        choose_backend("openvino")
    hide_modules(monkeypatch, "onnxruntime", "openvino")
    with pytest.raises(CrackLightningError, match="ONNX Runtime is not installed: pip install onnxruntime"):
        choose_backend("auto")


def test_bf16_without_openvino_says_why_in_the_log_line(monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: True)
    hide_modules(monkeypatch, "openvino")
    assert "no native bf16" not in choose_backend("auto", "bf16")[1]


# --- the runtimes compute what PyTorch computes -------------------------------------------------------------------


def test_onnxruntime_and_openvino_give_pytorchs_probabilities(model, graph):
    paths = sample_images()
    ort, openvino = Classifier(graph, backend="onnxruntime"), Classifier(graph, backend="openvino")
    assert (
        ort.describe() == "ONNX Runtime (asked for; float32)" and openvino.describe() == "OpenVINO (asked for; float32)"
    )
    batch = uint8_batch(ort, paths)
    expected = torch_probabilities(model, batch)
    assert np.abs(ort.probabilities(batch) - expected).max() < 1e-5
    assert np.abs(openvino.probabilities(batch) - expected).max() < 1e-5  # float32 asked for: float32 on any CPU
    labels = decide_labels(expected, model.class_names, model.crack_index)
    assert ort.predict(paths).labels == openvino.predict(paths).labels == labels
    assert len(set(labels)) == 2  # both classes occur: the comparison means something


def test_bf16_asked_for_on_a_cpu_without_bf16_computes_float32(graph, monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    batch = uint8_batch(Classifier(graph, backend="onnxruntime"), sample_images(120))
    exact = Classifier(graph, backend="onnxruntime").probabilities(batch)
    for backend in ("auto", "openvino"):
        classifier = Classifier(graph, backend=backend, precision="bf16")
        assert np.abs(classifier.probabilities(batch) - exact).max() < 1e-5, classifier.describe()


@pytest.mark.skipif(
    not backends.cpu_has_bf16() or not backends.installed("openvino"), reason="no bf16 units on this CPU"
)
def test_bf16_in_openvino_comes_close_to_float32(graph):
    batch = uint8_batch(Classifier(graph, backend="onnxruntime"), sample_images(30))
    exact = Classifier(graph, backend="onnxruntime").probabilities(batch)
    bf16 = Classifier(graph, backend="auto", precision="bf16")
    assert bf16.describe() == "OpenVINO (bf16 on a CPU with bf16 units)"
    difference = np.abs(bf16.probabilities(batch) - exact).max()
    assert 1e-6 < difference < 0.1  # bf16 really ran, and stays close (bf16 keeps 8 bits of mantissa)


def test_hflip_tta_is_the_mean_of_each_image_and_its_mirror_image(graph):
    paths = sample_images(40)
    plain = Classifier(graph, backend="onnxruntime")
    batch = uint8_batch(plain, paths)
    mirrored = np.ascontiguousarray(batch[..., ::-1])
    expected = (plain.probabilities(batch) + plain.probabilities(mirrored)) / 2
    for backend in ("onnxruntime", "openvino"):
        tta = Classifier(graph, backend=backend, tta="hflip")
        assert "averaged with the mirror image" in tta.describe()
        assert np.abs(tta.probabilities(batch) - expected).max() < 1e-5, backend
        assert np.abs(tta.predict(paths).probabilities - expected).max() < 1e-5, backend
    assert np.abs(expected - plain.probabilities(batch)).max() > 1e-4  # the mirror image changes the answer


def test_flips_tta_is_the_mean_of_each_image_and_its_three_mirror_images(graph):
    plain = Classifier(graph, backend="onnxruntime")
    batch = uint8_batch(plain, sample_images(12))
    views = [batch, batch[..., ::-1], batch[..., ::-1, :], batch[..., ::-1, ::-1]]
    expected = np.mean([plain.probabilities(np.ascontiguousarray(v)) for v in views], axis=0)
    flips = Classifier(graph, backend="onnxruntime", tta="flips")
    assert "three mirror images" in flips.describe()
    assert np.abs(flips.probabilities(batch) - expected).max() < 1e-5


def test_test_tta_hflip_averages_each_image_with_its_mirror_image(trained):
    data = CrackDataModule(root=str(trained["root"]), num_workers=0, batch_size=8, test_fraction=0.2)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, precision="bf16-mixed")
    results = {}
    for tta in ("none", "hflip"):
        model = load_checkpoint(trained["ckpt"])
        model.test_tta = tta
        results[tta] = trainer.test(model, data, verbose=False)[0]
    network = model.eval().network()
    plain, mirrored, labels = [], [], []
    with torch.no_grad():
        for images, batch_labels in data.test_dataloader():  # float32, whatever the Trainer's precision
            plain.append(network(images).softmax(1))
            mirrored.append(network(images.flip(3)).softmax(1))
            labels.append(batch_labels)
    plain, mirrored, labels = torch.cat(plain), torch.cat(mirrored), torch.cat(labels)
    assert len(labels) == 12
    assert results["none"]["test_loss"] == pytest.approx(F.nll_loss(plain.log(), labels).item(), abs=1e-5)
    both = (plain + mirrored) / 2
    assert results["hflip"]["test_loss"] == pytest.approx(F.nll_loss(both.log(), labels).item(), abs=1e-5)
    assert results["hflip"]["test_acc"] == pytest.approx((both.argmax(1) == labels).float().mean().item())


# --- the frozen-blocks speed-up in training, and validation in float32 --------------------------------------------


class StepLosses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def short_fit(root, tmp_path, runtime: FrozenBlocksRuntime, precision: str = "32-true", **model_options):
    """Two epochs (a frozen one, then fine-tuning from block 12) of a few batches; returns the model, data, trainer
    and the training loss of every step."""
    L.seed_everything(0)
    model = CrackClassifier(weights=str(BUNDLED_BACKBONE), **model_options)
    data = CrackDataModule(root=str(root), batch_size=8, num_workers=0, image_size=64)
    steps = StepLosses()
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=3,
        limit_val_batches=2,
        precision=precision,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[TwoPhaseFinetuning(unfreeze_at_epoch=1), runtime, steps],
    )
    trainer.fit(model, data)
    return model, data, trainer, steps.losses


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_frozen_blocks_runtime_trains_as_pytorch_does(image_root, tmp_path, backend, caplog):
    _, _, _, plain = short_fit(image_root, tmp_path / "torch", FrozenBlocksRuntime("torch"))
    with caplog.at_level(logging.INFO):
        _, _, _, fast = short_fit(image_root, tmp_path / backend, FrozenBlocksRuntime(backend))
    # Both phases ran through the runtime: the whole frozen backbone, then the blocks before the unfrozen ones.
    assert f"Frozen backbone blocks [0:19] run in {backend}" in caplog.text
    assert f"Frozen backbone blocks [0:12] run in {backend}" in caplog.text
    assert len(plain) == len(fast) == 6
    # The frozen epoch's steps agree to float32 rounding; once the backbone trains, Adam's first updates (about lr
    # times the sign of each gradient) carry those rounding differences into the weights: still within 0.5%.
    assert np.allclose(fast[:3], plain[:3], rtol=0, atol=1e-4), (fast, plain)
    assert np.allclose(fast, plain, rtol=5e-3, atol=0), (fast, plain)


def test_validation_is_a_plain_float32_forward_whatever_the_training_runs(image_root, tmp_path):
    # bf16-mixed training with the frozen blocks in a runtime (OpenVINO's bf16 on CPUs with bf16 units) and label
    # smoothing: val_loss is still the plain float32 cross-entropy of the network.
    model, data, trainer, losses = short_fit(
        image_root, tmp_path, FrozenBlocksRuntime("auto"), precision="bf16-mixed", label_smoothing=0.2
    )
    assert all(np.isfinite(losses))
    assert all(v.dtype in (torch.float32, torch.int64) for v in model.state_dict().values())
    network = model.eval().network()
    logits, labels = [], []
    with torch.no_grad():
        for index, (images, batch_labels) in enumerate(data.val_dataloader()):
            if index == 2:  # limit_val_batches
                break
            logits.append(network(images.float()))
            labels.append(batch_labels)
    logits, labels = torch.cat(logits), torch.cat(labels)
    metrics = trainer.callback_metrics
    assert metrics["val_loss"].item() == pytest.approx(F.cross_entropy(logits, labels).item(), abs=1e-4)
    assert metrics["val_acc"].item() == pytest.approx((logits.argmax(1) == labels).float().mean().item())


# --- defaults chosen for the machine -------------------------------------------------------------------------------


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_precision_follows_the_cpu(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: has_bf16)
    assert precision_module.auto_precision("cpu")[0] == expected


@pytest.mark.parametrize(
    "has_bf16, openvino, expected",
    [
        (True, True, ("openvino", "bf16")),
        (True, False, ("onnxruntime", "float32")),
        (False, True, ("onnxruntime", "float32")),
    ],
)
def test_auto_inference_precision_follows_the_cpu(monkeypatch, has_bf16, openvino, expected):
    """predict and scan default to --precision auto: bf16 only where the CPU computes it natively and OpenVINO runs it."""
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: has_bf16)
    monkeypatch.setattr(backends, "installed", lambda name: name == "onnxruntime" or (openvino and name == "openvino"))
    backend, why = choose_backend("auto", "auto")
    assert backend == expected[0] and expected[1] in why


def test_auto_precision_computes_what_it_resolves_to(graph):
    """precision auto runs the session it names: bf16 where the CPU has it, float32 elsewhere (same numbers)."""
    batch = uint8_batch(Classifier(graph, backend="onnxruntime"), sample_images(16))
    auto = Classifier(graph, precision="auto")
    resolved = Classifier(graph, precision=backends.resolve_precision("auto"))
    assert auto.precision in ("32", "bf16") and auto.describe() == resolved.describe()
    assert np.array_equal(auto.probabilities(batch), resolved.probabilities(batch))


@pytest.mark.parametrize("cores, workers", [(1, 0), (2, 0), (4, 3), (32, 8)])
def test_default_workers(monkeypatch, cores, workers):
    monkeypatch.setattr(datasets_module.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert datasets_module.default_workers() == workers
