"""Model: torchvision's MobileNetV2 features, global average pool, dropout and a linear head."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassAccuracy,
)
from torchvision.models import mobilenet_v2

from crack_lightning.data.transforms import normalise
from crack_lightning.errors import CrackLightningError, OptionError, require_option
from crack_lightning.models.checkpoints import read_checkpoint
from crack_lightning.models.cpu_autocast import strided_depthwise_in_float32
from crack_lightning.models.pretrained import load_pretrained
from crack_lightning.runtime.exported import MIRRORS

FEATURES = 1280  # channels of mobilenet_v2(width_mult=1.0).features' output
BACKBONE_BLOCKS = 19  # len(mobilenet_v2().features)
PREPROCESSING_KEY = "crack_lightning_preprocessing"
OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


class ClassifierNetwork(nn.Module):
    """The network alone: backbone, global average pool, head; logits of normalised images."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images).mean(dim=(2, 3)))  # mean, not AdaptiveAvgPool: deterministic on CUDA


class CrackClassifier(L.LightningModule):
    """MobileNetV2 crack classifier.

    Class names, the crack class, image size and normalisation are stored in the checkpoint, so a
    checkpoint alone is enough to predict; restoring one never reads pretrained weights.

    Args:
        class_names: Class names in label order; ``null``: taken from the data's class folders.
        crack_class: Which class means "crack": the positive class of precision, recall, F1 and AUROC.
        weights: Backbone initialisation for a new training run: ``imagenet`` (torchvision's
            IMAGENET1K_V2, downloaded into the torch cache), ``none``, a path to a ``.pth`` (full or
            features-only mobilenet_v2 state dict), ``bundled`` (the partial-ImageNet backbone inside the package),
            or ``auto``: ImageNet when cached or downloadable, else the bundled backbone, with a warning.
        dropout: Dropout before the linear head.
        lr: Learning rate of the head (the backbone's is ``finetuning.backbone_lr``).
        optimizer: ``adam``, ``adamw``, ``rmsprop`` or ``sgd``.
        weight_decay: Weight decay of the optimiser.
        channels_last: Run convolutions in channels-last memory format (faster on CPU and on tensor cores).
        init_from: The shipped model's name (``concrete-v1``) or a checkpoint of an earlier fit, whose backbone (and
            head, when its classes are the data's) a new run starts from, with a new optimiser and schedule: to adapt
            a model to a new surface. ``weights`` is ignored then.
        label_smoothing: Label smoothing of the training loss (``val_loss`` stays plain cross-entropy, so runs
            with and without it compare).
        inference_backend: Ignored; accepted so that checkpoints of version 0.1.0 load (``predict --backend`` now).
        tta: Ignored, as ``inference_backend`` (``test --tta``, ``predict --tta``, ``scan --tta`` now).
    """

    def __init__(
        self,
        class_names: list[str] | None = None,
        crack_class: str = "Positive",
        weights: str = "auto",
        dropout: float = 0.3,
        lr: float = 1e-3,
        optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam",
        weight_decay: float = 0.0,
        channels_last: bool = True,
        init_from: str | None = None,
        label_smoothing: float = 0.0,
        inference_backend: str | None = None,
        tta: str | None = None,
    ) -> None:
        super().__init__()
        require_option(lr > 0, "lr", f"{lr}; pass a learning rate above 0")
        require_option(0 <= dropout < 1, "dropout", f"{dropout}; pass a probability in [0, 1)")
        require_option(weight_decay >= 0, "weight_decay", f"{weight_decay}; pass 0 or more")
        require_option(0 <= label_smoothing < 1, "label_smoothing", f"{label_smoothing}; pass a value in [0, 1)")
        self.save_hyperparameters(ignore=["inference_backend", "tta"])
        self.backbone = mobilenet_v2(weights=None).features
        strided_depthwise_in_float32(self.backbone)
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.head: nn.Sequential | None = None
        # (image_size, mean, std) of the training data: adopted at fit time, stored in the checkpoint.
        self.preprocessing: tuple[int, tuple[float, ...], tuple[float, ...]] | None = None
        # Set by the FrozenBlocksRuntime callback in training only: the leading frozen blocks as a faster function.
        self.frozen_prefix: tuple[int, Callable[[torch.Tensor], torch.Tensor]] | None = None
        # Test-time augmentation of ``test`` (``test --tta``): not a hyperparameter, so not saved.
        self.test_tta = "none"
        if class_names is not None:
            self._build_head(class_names)

    def _build_head(self, class_names: Sequence[str]) -> None:
        if self.hparams.crack_class not in class_names:
            raise OptionError(
                "crack_class",
                f"{self.hparams.crack_class!r} is not one of the classes {list(class_names)}; "
                "pass the name of the class folder that holds the crack images",
            )
        self.hparams.class_names = list(class_names)
        linear = nn.Linear(FEATURES, len(class_names))
        nn.init.normal_(linear.weight, 0, 0.01)  # torchvision's MobileNetV2 classifier initialisation
        nn.init.zeros_(linear.bias)
        self.head = nn.Sequential(nn.Dropout(self.hparams.dropout), linear)
        self.train_acc = MulticlassAccuracy(len(class_names), average="micro")
        self.val_acc = self.train_acc.clone()
        self.test_acc = self.train_acc.clone()
        crack_metrics = MetricCollection(
            {"precision": BinaryPrecision(), "recall": BinaryRecall(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}
        )
        self.val_crack = crack_metrics.clone(prefix="val_")
        self.test_crack = crack_metrics.clone(prefix="test_")

    @property
    def class_names(self) -> list[str]:
        return list(self.hparams.class_names or [])

    @property
    def crack_index(self) -> int:
        return self.class_names.index(self.hparams.crack_class)

    def network(self) -> ClassifierNetwork:
        """The network (sharing this model's parameters): logits of normalised images, for export."""
        if self.head is None:
            raise CrackLightningError("the model has no classes yet: give class_names or fit it on data first")
        return ClassifierNetwork(self.backbone, self.head)

    def setup(self, stage: str) -> None:
        if stage == "predict":
            if self.head is None:
                raise CrackLightningError("predict needs a trained model: pass the checkpoint of a fit run (ckpt_path)")
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        classes = getattr(datamodule, "classes", None)
        if self.head is None:
            if classes is None:
                raise OptionError("class_names", "null and the data gives no class folders; pass the data's root")
            self._build_head(classes)
        elif classes is not None and list(classes) != self.class_names:
            raise OptionError(
                "data.root",
                f"its class folders {list(classes)} differ from the model's classes {self.class_names}; "
                "evaluate on folders named like the training data",
            )
        if stage == "fit" and self.preprocessing is None and datamodule is not None:
            hp = datamodule.hparams
            self.preprocessing = (hp.image_size, tuple(hp.mean), tuple(hp.std))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.preprocessing is not None:
            size, mean, std = self.preprocessing
            checkpoint[PREPROCESSING_KEY] = {"image_size": size, "mean": list(mean), "std": list(std)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if PREPROCESSING_KEY in checkpoint:
            p = checkpoint[PREPROCESSING_KEY]
            self.preprocessing = (int(p["image_size"]), tuple(p["mean"]), tuple(p["std"]))

    def on_fit_start(self) -> None:
        # Only a new run starts from pretrained weights; a resumed one has them in its checkpoint.
        if self.trainer.ckpt_path is None:
            if self.hparams.init_from:
                self.init_from_checkpoint(self.hparams.init_from)
            else:
                self.load_pretrained()

    def init_from_checkpoint(self, path: str | os.PathLike) -> None:
        """Load a trained checkpoint's backbone (or the shipped model's, by name), and its head when its class names
        are this model's."""
        checkpoint = read_checkpoint(path, "init_from")
        state = checkpoint["state_dict"]
        self.backbone.load_state_dict(
            {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
        )
        classes = checkpoint["hyper_parameters"].get("class_names")
        if classes == self.class_names:
            self.head.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
            what = "backbone and head"
        else:
            what = f"backbone; its classes {classes} are not the data's {self.class_names}, so the head is new"
        rank_zero_info(f"Starting from {path}: {what} (weights {self.hparams.weights!r} is ignored)")
        trained_size = checkpoint.get(PREPROCESSING_KEY, {}).get("image_size")
        if trained_size and self.preprocessing and trained_size != self.preprocessing[0]:
            rank_zero_warn(
                f"init_from: {path} was trained on {trained_size} px images and this run uses "
                f"{self.preprocessing[0]} px; set the data's image_size to {trained_size} to keep the scale it learned"
            )

    def load_pretrained(self) -> str:
        """Initialise the backbone from ``weights`` (see the class docstring); returns what was loaded."""
        description = load_pretrained(self.backbone, self.hparams.weights)
        rank_zero_info(f"Backbone weights: {description}")
        return description

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes)`` for normalised images ``(N, 3, H, W)``."""
        network = self.network()
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.frozen_prefix is not None and self.training:
            blocks, prefix = self.frozen_prefix
            with torch.no_grad():
                images = prefix(images)
            if self.hparams.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)  # ONNX Runtime answers in NCHW
            return network.head(self.backbone[blocks:](images).mean(dim=(2, 3)))
        return network(images)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.get("label_smoothing", 0.0))
        self.train_acc(logits, labels)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def _evaluate(self, batch: Any, stage: Literal["val", "test"]) -> torch.Tensor:
        images, labels = batch
        # float32, whatever the training precision: val_loss steers early stopping and checkpoints, and must be the
        # number a plain float32 forward gives.
        with torch.autocast(images.device.type, enabled=False):
            images = images.float()
            views = MIRRORS[self.test_tta] if stage == "test" else ((),)
            if len(views) > 1:  # test-time augmentation: every mirror image in one batch, as predict runs it
                mirrored = (
                    self(torch.cat([images.flip(axes) if axes else images for axes in views])).float().softmax(dim=1)
                )
                probabilities = mirrored.unflatten(0, (len(views), -1)).mean(dim=0)
                loss = F.nll_loss(probabilities.clamp_min(torch.finfo(torch.float32).tiny).log(), labels)
            else:
                logits = self(images).float()
                loss, probabilities = F.cross_entropy(logits, labels), logits.softmax(dim=1)
        crack_probability = probabilities[:, self.crack_index]
        accuracy, crack = (self.val_acc, self.val_crack) if stage == "val" else (self.test_acc, self.test_crack)
        accuracy(probabilities, labels)
        self.log(f"{stage}_loss", loss, prog_bar=True, sync_dist=True)  # the mean over every process
        self.log(f"{stage}_acc", accuracy, prog_bar=True)
        if not self.trainer.sanity_checking:  # its few batches may hold one class only: nothing to score yet
            # update, not forward: a batch of one class has no batch-level precision or AUROC to warn about
            crack.update(crack_probability, (labels == self.crack_index).long())
            self.log_dict(crack)
        return probabilities

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Logs the test metrics and returns the class probabilities (for the test report)."""
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities ``(N, classes)`` of resized ``uint8`` images (``predict``'s loader), normalised here
        as the exported graph does, in float32."""
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        _, mean, std = self.preprocessing
        # float32 whatever the Trainer's precision: the same CSV as the torch-free predict
        with torch.autocast(images.device.type, enabled=False):
            return self(normalise(images, mean, std)).float().softmax(dim=1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Only what is trainable now: BaseFinetuning adds the backbone as its own param group when it unfreezes.
        params = [p for p in self.parameters() if p.requires_grad]
        return OPTIMIZERS[self.hparams.optimizer](
            [{"params": params, "name": "head"}], lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
