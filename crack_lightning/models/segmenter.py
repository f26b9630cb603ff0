"""Crack segmentation: MobileNetV2 features as encoder, a light U-Net decoder, one crack logit per pixel."""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torchvision.models import mobilenet_v2
from torchvision.utils import make_grid

from crack_lightning.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalise
from crack_lightning.errors import OptionError, require_option
from crack_lightning.models.checkpoints import SEGMENTATION, checkpoint_path, import_saved_class, read_checkpoint
from crack_lightning.models.cpu_autocast import strided_depthwise_in_float32
from crack_lightning.models.crack_unet import STAGE_ENDS, CrackUNet
from crack_lightning.models.pretrained import load_pretrained
from crack_lightning.models.segmentation_metrics import stage_metrics
from crack_lightning.runtime.labels import DEFAULT_THRESHOLD

TASK = SEGMENTATION  # the task's name, crack_lightning.tasks.segmentation


class CrackSegmenter(L.LightningModule):
    """Pixel crack masks. The checkpoint holds what inference needs: ``task``, ``mean`` / ``std`` and the threshold.

    Args:
        weights: Encoder initialisation for a new run: ``imagenet``, ``auto``, ``none`` or a ``.pth`` path
            (as the classifier's ``--model.weights``).
        lr: Learning rate of the decoder (AdamW, cosine decay after a short warm-up).
        encoder_lr: Learning rate of the pretrained encoder; 0 freezes it (weights and batch-norm statistics), so
            that a step computes no encoder gradients: a new decoder on a trained encoder at a third of the cost.
        weight_decay: AdamW weight decay.
        loss: ``bce`` (binary cross-entropy with ``pos_weight``) or ``bce_dice`` (plus soft Dice over the batch).
        pos_weight: Weight of crack pixels in the cross-entropy (cracks are about 3% of the pixels). With 3 and
            ``bce`` the best threshold sits near 0.8: leave ``threshold`` null so that validation finds it.
        threshold: Probability from which a pixel is crack, for masks, measurements and the thresholded metrics.
            ``null``: chosen on the validation set: after each validation epoch the threshold of the best F1 (ODS)
            becomes the model's (:attr:`threshold`, 0.5 before the first) and is saved in its checkpoints.
        decoder_channels: Channels of the decoder at strides 16, 8, 4, 2 and 1.
        decoder_convs: 3x3 convolutions of each decoder stage after the skip connection joins (1: lightest).
        separable: Depthwise-separable 3x3 convolutions in the decoder (concrete-seg-v2): about a third of the
            multiply-adds of full ones at the same channels.
        context_scale: 2: the encoder sees the image at half size and the decoder ends at half resolution, where a
            light path over the full-size image's 2x2 blocks joins it and the head predicts each block's four pixels
            (about 2x faster than 1; ``decoder_channels`` are then at strides 32 to 2).
        mean: Per-channel normalisation mean (RGB, 0-1 scale); the model normalises ``uint8`` batches itself.
        std: Per-channel normalisation standard deviation.
        warmup_steps: Linear learning-rate warm-up.
        preview_images: Validation photos shown each epoch in TensorBoard (image / prediction / mask).
        channels_last: Run convolutions in channels-last memory format (faster on the CPU).
        init_from: A shipped segmenter's name (``concrete-seg-v1``) or a segmenter checkpoint of an earlier fit, whose
            whole network a new run starts from (new optimiser and schedule): to fine-tune it on your own masks.
            ``weights`` is ignored then; the decoder options must be the checkpoint's.
        distill_from: A shipped segmenter's name or a segmenter checkpoint (the teacher): the network also learns the
            teacher's probabilities on every training pixel, masked or not (knowledge distillation), and a new run
            starts from the teacher's encoder (unless ``init_from`` is given). The teacher is not saved.
        distill_weight: Weight of the distillation loss (binary cross-entropy to the teacher's probabilities).
        task: Always ``segmentation``: tells a checkpoint's reader which kind of model it holds.
    """

    def __init__(
        self,
        weights: str = "auto",
        lr: float = 3e-3,
        encoder_lr: float = 1e-3,
        weight_decay: float = 1e-4,
        loss: Literal["bce", "bce_dice"] = "bce",
        pos_weight: float = 3.0,
        threshold: float | None = None,
        decoder_channels: tuple[int, int, int, int, int] = (96, 64, 32, 24, 16),
        decoder_convs: int = 1,
        separable: bool = False,
        context_scale: Literal[1, 2] = 1,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        warmup_steps: int = 50,
        preview_images: int = 4,
        channels_last: bool = True,
        init_from: str | None = None,
        distill_from: str | None = None,
        distill_weight: float = 1.0,
        task: Literal["segmentation"] = TASK,
    ) -> None:
        super().__init__()
        require_option(
            lr > 0 and encoder_lr >= 0, "lr", f"{lr} / encoder_lr {encoder_lr}: pass positive learning rates"
        )
        require_option(
            threshold is None or 0 < threshold < 1, "threshold", f"{threshold}; pass a probability in (0, 1)"
        )
        require_option(pos_weight > 0, "pos_weight", f"{pos_weight}; pass a weight above 0")
        require_option(decoder_convs >= 1, "decoder_convs", f"{decoder_convs}; pass 1 or more")
        require_option(distill_weight >= 0, "distill_weight", f"{distill_weight}; pass 0 or more")
        require_option(
            len(mean) == 3 and len(std) == 3 and min(std) > 0, "mean", "and std: pass three values each, std > 0"
        )
        self.save_hyperparameters()
        self.net = CrackUNet(tuple(decoder_channels), decoder_convs, separable, context_scale)
        strided_depthwise_in_float32(self.net.encoder)  # bf16 backward of these is very slow on the CPU
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        # In the state dict, so that checkpoints and exports carry it; used where ``threshold`` is null.
        self.register_buffer("chosen_threshold", torch.tensor(DEFAULT_THRESHOLD))
        self.metrics = nn.ModuleDict({stage: stage_metrics(stage) for stage in ("val", "test")})
        self.previews: list[torch.Tensor] = []
        self.teacher: tuple[CrackSegmenter, ...] = ()  # a tuple keeps it out of the state dict and checkpoints

    @property
    def threshold(self) -> float:
        """The mask threshold: the ``threshold`` option, else the one chosen on the validation set."""
        chosen = self.hparams.threshold
        return float(chosen) if chosen is not None else round(self.chosen_threshold.item(), 4)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Checkpoints written before the threshold was chosen on validation hold their fixed one only.
        fixed = checkpoint["hyper_parameters"].get("threshold") or DEFAULT_THRESHOLD
        checkpoint["state_dict"].setdefault("chosen_threshold", torch.tensor(float(fixed)))

    def on_fit_start(self) -> None:
        if self.hparams.distill_from:
            self.teacher = (self.load_teacher(self.hparams.distill_from),)
        if self.trainer.ckpt_path is None and self.hparams.init_from:
            self.init_from_checkpoint(self.hparams.init_from)
        elif self.trainer.ckpt_path is None and self.teacher:
            self.net.encoder.load_state_dict(self.teacher[0].net.encoder.state_dict())
            rank_zero_info(f"Encoder weights: the teacher's, {self.hparams.distill_from}")
        elif self.trainer.ckpt_path is None:  # a resumed run has its weights in the checkpoint
            full = mobilenet_v2(weights=None).features
            description = load_pretrained(full, self.hparams.weights)
            self.net.encoder.load_state_dict(full[: STAGE_ENDS[-1]].state_dict())
            rank_zero_info(f"Encoder weights: {description}")

    def init_from_checkpoint(self, path: str) -> None:
        """Start from a trained segmenter's network (the shipped one by name), its chosen threshold included."""
        checkpoint = read_checkpoint(checkpoint_path(path), "init_from", SEGMENTATION)
        state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.") or k == "chosen_threshold"}
        hint = f"{path} has another decoder (decoder_channels / decoder_convs); pass the options it was trained with"
        try:
            loaded = self.load_state_dict(state, strict=False)
        except RuntimeError as err:  # same names, other shapes
            raise OptionError("init_from", hint) from err
        if loaded.unexpected_keys or any(k.startswith("net.") for k in loaded.missing_keys):
            raise OptionError("init_from", hint)
        rank_zero_info(f"Starting from {path}: encoder and decoder (weights {self.hparams.weights!r} is ignored)")

    def load_teacher(self, path: str) -> CrackSegmenter:
        """The frozen segmenter whose probabilities :meth:`training_step` distils, on this module's device."""
        import_saved_class(read_checkpoint(checkpoint_path(path), "distill_from", SEGMENTATION))
        teacher = CrackSegmenter.load_from_checkpoint(checkpoint_path(path), map_location="cpu", weights_only=True)
        rank_zero_info(f"Distilling from {path}")
        return teacher.eval().requires_grad_(False).to(self.device)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` images -> the float input the network expects (already float images pass through)."""
        return normalise(images, self.hparams.mean, self.hparams.std) if images.dtype == torch.uint8 else images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Crack logits ``(N, 1, H, W)`` of normalised images ``(N, 3, H, W)``, any H and W."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    def loss(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """BCE (plus soft Dice) over the pixels whose mask is 0 or 1; pixels marked ``IGNORE`` (2) are left out."""
        logits, target = logits.float(), (masks == 1).float()
        valid = (masks <= 1).float()
        weight = torch.tensor(self.hparams.pos_weight, device=logits.device)
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight, reduction="none")
        loss = (per_pixel * valid).sum() / valid.sum().clamp(min=1)
        if self.hparams.loss == "bce_dice":
            # Over the whole batch: many crops hold no crack at all, where a per-image Dice is undefined.
            p = torch.sigmoid(logits) * valid
            loss = loss + 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, masks = batch
        logits = self(self.normalise(images))
        loss = self.loss(logits, masks)
        if self.teacher:
            teacher = self.teacher[0]
            with torch.no_grad():
                target = torch.sigmoid(teacher(teacher.normalise(images)).float())
            distill = F.binary_cross_entropy_with_logits(logits.float(), target)
            self.log("train_distill_loss", distill, on_step=True, on_epoch=True, batch_size=len(images))
            loss = loss + self.hparams.distill_weight * distill
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(images))
        return loss

    def _evaluate(self, batch: Any, batch_idx: int, stage: Literal["val", "test"]) -> torch.Tensor:
        images, masks = batch
        logits = self(self.normalise(images))
        self.log(f"{stage}_loss", self.loss(logits, masks), prog_bar=True, batch_size=len(images), sync_dist=True)
        probabilities, truth = torch.sigmoid(logits.float()), (masks == 1).long()
        valid = (masks <= 1).flatten()  # pixels marked IGNORE count neither way
        metrics = self.metrics[stage]
        if valid.any():  # a photo may be all IGNORE (e.g. a crack patch only a teacher labels)
            metrics["scores"].update(probabilities.flatten()[valid], truth.flatten()[valid])
            metrics["curve"].update(probabilities.flatten()[valid], truth.flatten()[valid])
        metrics["tolerant"].update(probabilities * (masks <= 1), truth)
        if stage == "val" and len(self.previews) < self.hparams.preview_images:
            for image, p, m in zip(images, probabilities, masks):
                self.previews.append(
                    torch.stack(
                        [
                            image.float() / 255 if image.dtype == torch.uint8 else image,
                            p.expand(3, -1, -1),
                            (m == 1).float().expand(3, -1, -1),
                        ]
                    ).cpu()
                )
        return probabilities

    def _start_epoch(self, stage: Literal["val", "test"]) -> None:
        for metric in self.metrics[stage]["scores"].values():
            metric.threshold = self.threshold  # the threshold chosen before this epoch, not on its own answers

    def _log_epoch(self, stage: Literal["val", "test"]) -> None:
        metrics = self.metrics[stage]
        self.log_dict(metrics["scores"].compute())
        precision, recall, thresholds = metrics["curve"].compute()
        f1 = (2 * precision * recall / (precision + recall).clamp_min(1e-12)).nan_to_num(0.0)  # 0/0: no prediction
        best = int(f1[: len(thresholds)].argmax())
        self.log(f"{stage}_ods_f1", f1.max())
        self.log(f"{stage}_ods_threshold", thresholds[best])
        self.log(f"{stage}_ods_f1_tol2", metrics["tolerant"].compute())
        if stage == "val" and not self.trainer.sanity_checking and f1[best] > 0:
            self.chosen_threshold.fill_(thresholds[best].item())
        for metric in metrics.values():
            metric.reset()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def on_validation_epoch_start(self) -> None:
        self.previews = []
        self._start_epoch("val")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")
        if self.previews and isinstance(self.logger, TensorBoardLogger) and not self.trainer.sanity_checking:
            # One row a photo: image | probability | true mask, at half size to keep the event file small.
            shape = self.previews[0].shape[-2:]
            rows = [F.interpolate(p, size=(shape[0] // 2, shape[1] // 2), mode="area") for p in self.previews]
            grid = make_grid(torch.cat(rows), nrow=3, padding=4, pad_value=1.0)
            self.logger.experiment.add_image("val_image_prediction_mask", grid, self.global_step)
        self.previews = []

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, batch_idx, "test")

    def on_test_epoch_start(self) -> None:
        self._start_epoch("test")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.sigmoid(self(self.normalise(images)).float())

    def on_train_epoch_start(self) -> None:
        if self.hparams.encoder_lr == 0:  # Lightning puts every module in train mode before each epoch
            self.net.encoder.eval()

    def configure_optimizers(self) -> dict[str, Any]:
        encoder = list(self.net.encoder.parameters())
        self.net.encoder.requires_grad_(self.hparams.encoder_lr > 0)
        ids = {id(p) for p in encoder}
        rest = [p for p in self.parameters() if id(p) not in ids]
        groups = (
            [{"params": encoder, "lr": self.hparams.encoder_lr, "name": "encoder"}] if self.hparams.encoder_lr else []
        )
        groups.append({"params": rest, "lr": self.hparams.lr, "name": "decoder"})
        optimizer = torch.optim.AdamW(groups, weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(self.hparams.warmup_steps, total // 4)

        def factor(step: int) -> float:  # linear warm-up, then cosine to 0
            if step < warmup:
                return (step + 1) / warmup
            # math, not numpy: a numpy scalar in the optimiser's state would not load with weights_only=True
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
