from __future__ import annotations

import urllib.error
import urllib.request

import lightning as L
import pytest
import torch
from torchvision.models import mobilenet_v2, resnet18

from crack_lightning.data.classification import CrackDataModule
from crack_lightning.errors import CrackLightningError
from crack_lightning.models import pretrained
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.models.cpu_autocast import Float32Conv2d
from crack_lightning.models.pretrained import BUNDLED_BACKBONE, IMAGENET_WEIGHTS

CLASSES = ["Negative", "Positive"]


def backbone_equals(backbone: torch.nn.Module, state: dict) -> bool:
    return all(torch.equal(v, state[f"features.{k}"]) for k, v in backbone.state_dict().items())


def test_head_is_pool_dropout_linear():
    model = CrackClassifier(class_names=CLASSES)
    dropout, linear = model.head
    assert dropout.p == 0.3 and (linear.in_features, linear.out_features) == (1280, 2)
    assert model(torch.randn(3, 3, 160, 160)).shape == (3, 2)


def test_features_only_file_loads(backbone_file):
    model = CrackClassifier(class_names=CLASSES, weights=str(backbone_file))
    description = model.load_pretrained()
    assert "partial ImageNet" in description
    assert backbone_equals(model.backbone, torch.load(backbone_file, weights_only=True))


def test_full_torchvision_state_dict_loads(tmp_path):
    torch.manual_seed(1)
    full = mobilenet_v2(num_classes=1000).state_dict()  # features.* and classifier.*
    torch.save(full, tmp_path / "full.pth")
    model = CrackClassifier(class_names=CLASSES, weights=str(tmp_path / "full.pth"))
    model.load_pretrained()
    assert backbone_equals(model.backbone, full)


def test_none_leaves_random_init():
    model = CrackClassifier(class_names=CLASSES, weights="none")
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    assert model.load_pretrained() == "random initialisation"
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no file"),
        (lambda p: p.write_text("hello"), "cannot be loaded as a torch state dict"),
        (lambda p: torch.save([1, 2, 3], p), "holds a list"),
        (lambda p: torch.save(resnet18().state_dict(), p), "is not a MobileNetV2"),
        (lambda p: torch.save(mobilenet_v2(width_mult=0.5).state_dict(), p), "is not a MobileNetV2"),
    ],
)
def test_bad_weights_files_give_one_line_errors(tmp_path, make, message):
    path = tmp_path / "weights.pth"
    make(path)
    model = CrackClassifier(class_names=CLASSES, weights=str(path))
    with pytest.raises(CrackLightningError, match=message) as err:
        model.load_pretrained()
    text = str(err.value)
    assert "\n" not in text and str(path) in text and text.startswith("weights: ") and "pass" in text


def test_imagenet_offline_is_an_error_naming_the_alternatives():
    model = CrackClassifier(class_names=CLASSES, weights="imagenet")
    with pytest.raises(CrackLightningError, match="^weights: imagenet.*pass auto, none"):
        model.load_pretrained()


def test_auto_offline_falls_back_to_the_bundled_backbone():
    model = CrackClassifier(class_names=CLASSES, weights="auto")
    with pytest.warns(UserWarning, match="ImageNet weights are unavailable.*NOT torchvision's ImageNet"):
        description = model.load_pretrained()
    assert "bundled" in description
    assert backbone_equals(model.backbone, torch.load(BUNDLED_BACKBONE, weights_only=True))


@pytest.mark.parametrize("weights", ["imagenet", "auto"])
def test_imagenet_from_the_torch_cache_needs_no_network(weights, tmp_path, monkeypatch):
    """With the file in the torch hub cache (TORCH_HOME), ImageNet weights load although downloads fail."""
    torch.manual_seed(2)
    cached = mobilenet_v2().state_dict()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(cached, checkpoints / IMAGENET_WEIGHTS.url.rsplit("/", 1)[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = CrackClassifier(class_names=CLASSES, weights=weights)
    assert model.load_pretrained() == "torchvision MobileNet_V2_Weights.IMAGENET1K_V2"
    assert backbone_equals(model.backbone, cached)


def test_unknown_crack_class_is_an_error():
    with pytest.raises(CrackLightningError, match="^crack_class: 'Crack' is not one of"):
        CrackClassifier(class_names=CLASSES, crack_class="Crack")


def forbid_pretrained(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("restoring a checkpoint must not read pretrained weights")

    monkeypatch.setattr(pretrained, "imagenet_state_dict", fail)
    monkeypatch.setattr(pretrained, "read_state_dict", fail)
    monkeypatch.setattr(urllib.request, "urlopen", fail)


def test_checkpoint_round_trip_is_offline_and_exact(image_root, tmp_path, monkeypatch, backbone_file):
    L.seed_everything(0)
    model = CrackClassifier(weights=str(backbone_file))
    data = CrackDataModule(root=str(image_root), batch_size=8, num_workers=0, image_size=96)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp_path / "model.ckpt")

    forbid_pretrained(monkeypatch)
    restored = CrackClassifier.load_from_checkpoint(tmp_path / "model.ckpt", map_location="cpu")
    assert restored.class_names == CLASSES and restored.hparams.crack_class == "Positive"
    assert restored.preprocessing == (96, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    images = torch.randn(4, 3, 96, 96)
    model.eval(), restored.eval()
    with torch.no_grad():
        assert torch.equal(model(images), restored(images))


def test_fold_batchnorm_of_a_trained_network_gives_the_same_probabilities(trained):
    from copy import deepcopy

    from crack_lightning.data.datasets import read_image_tensor, sample_root
    from crack_lightning.data.transforms import eval_transform
    from crack_lightning.export.onnx import fold_batchnorm

    model = CrackClassifier.load_from_checkpoint(trained["ckpt"], map_location="cpu").eval()
    network = model.network()
    folded = fold_batchnorm(deepcopy(network))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules()) == 52  # the model keeps its own
    transform = eval_transform(*model.preprocessing)
    images = torch.stack([transform(read_image_tensor(p)) for p in sorted(sample_root().rglob("*.jpg"))[::60]])
    with torch.no_grad():
        expected = network(images).softmax(1)
        assert torch.allclose(folded(images).softmax(1), expected, atol=1e-5)
        assert (expected.argmax(1) == 1).any() and (expected.argmax(1) == 0).any()


class _Snapshot(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.backbone = {k: v.clone() for k, v in pl_module.backbone.state_dict().items()}
        self.head = {k: v.clone() for k, v in pl_module.head.state_dict().items()}


def _fit_from(ckpt, root, tmp_path):
    snapshot = _Snapshot()
    model = CrackClassifier(
        init_from=str(ckpt), weights="imagenet", crack_class=sorted(p.name for p in root.iterdir())[1]
    )
    data = CrackDataModule(root=str(root), batch_size=8, num_workers=0, image_size=64)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[snapshot],
    )
    trainer.fit(model, data)  # weights="imagenet" would download: init_from must win, offline
    return snapshot


def test_init_from_starts_from_a_checkpoint_and_rebuilds_a_mismatched_head(trained, image_root, tmp_path, monkeypatch):
    forbid_pretrained(monkeypatch)
    state = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)["state_dict"]
    with pytest.warns(
        UserWarning, match="trained on 96 px images and this run uses 64 px; set the data's image_size to 96"
    ):
        same = _fit_from(trained["ckpt"], image_root, tmp_path)
    assert all(torch.equal(v, state[f"backbone.{k}"]) for k, v in same.backbone.items())
    assert all(torch.equal(v, state[f"head.{k}"]) for k, v in same.head.items())

    (image_root / "Negative").rename(image_root / "Sound")  # classes ['Positive', 'Sound']: not the checkpoint's
    other = _fit_from(trained["ckpt"], image_root, tmp_path)
    assert all(torch.equal(v, state[f"backbone.{k}"]) for k, v in other.backbone.items())
    assert not torch.equal(other.head["1.weight"], state["head.1.weight"])


def test_strided_depthwise_convolutions_compute_float32_under_cpu_autocast():
    model = CrackClassifier(weights="none", class_names=["Negative", "Positive"])
    strided = [m for m in model.backbone.modules() if isinstance(m, Float32Conv2d)]
    # the four stride-2 depthwise convolutions of MobileNetV2 after the stem (blocks 2, 4, 7, 14)
    assert len(strided) == 4 and all(m.stride == (2, 2) and m.groups == m.in_channels for m in strided)
    assert (
        model.state_dict().keys()
        == {
            **{f"backbone.{k}": 0 for k in mobilenet_v2().features.state_dict()},
            **{f"head.{k}": 0 for k in model.head.state_dict()},
        }.keys()
    )
    conv, images = strided[-1], torch.randn(2, strided[-1].in_channels, 10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(images.bfloat16())
        other = model.backbone[14].conv[0](torch.randn(2, 96, 10, 10))  # a pointwise convolution: bf16
    assert out.dtype == torch.float32 and other.dtype == torch.bfloat16
    assert torch.allclose(
        out, torch.nn.functional.conv2d(images.bfloat16().float(), conv.weight, None, 2, 1, 1, conv.groups)
    )


def test_package_exports_its_classes_lazily():
    import crack_lightning

    assert crack_lightning.CrackClassifier is CrackClassifier
    assert crack_lightning.CrackDataModule.__name__ == "CrackDataModule"
    with pytest.raises(AttributeError, match="no attribute 'Missing'"):
        crack_lightning.Missing  # noqa: B018
