"""The lighter segmenter (separable decoder) and its training from a teacher: distillation, a frozen encoder."""

from __future__ import annotations

import lightning
import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from crack_lightning.errors import CrackLightningError
from crack_lightning.models.crack_unet import CrackUNet, multiply_adds
from crack_lightning.models.segmenter import CrackSegmenter
from tests.test_segmentation import synthetic_root


def save_segmenter(model: CrackSegmenter, path) -> str:
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    return str(path)


def test_separable_decoder_needs_far_fewer_multiply_adds():
    full = multiply_adds(CrackUNet((96, 64, 32, 24, 16), 2), 256, 256)
    light = multiply_adds(CrackUNet((96, 64, 32, 16, 8), 2, separable=True), 256, 256)
    encoder = multiply_adds(CrackUNet().encoder, 256, 256)
    assert light < full / 2.5
    assert encoder < light  # the encoder is in both
    assert CrackUNet((96, 64, 32, 16, 8), 2, separable=True)(torch.zeros(1, 3, 70, 45)).shape == (1, 1, 70, 45)


def test_half_size_context_runs_nothing_at_full_resolution_and_keeps_every_pixel():
    torch.manual_seed(0)
    light = multiply_adds(CrackUNet((96, 64, 32, 16, 8), 2, separable=True), 256, 256)
    context = CrackUNet((96, 64, 32, 16, 16), 2, separable=True, context_scale=2).eval()
    assert multiply_adds(context, 256, 256) < light / 2.5
    with torch.no_grad():
        image = torch.randn(1, 3, 70, 45)
        logits = context(image)
        assert logits.shape == (1, 1, 70, 45)
        # each output pixel is its own: a one-pixel change in the image changes the logits right there
        poked = image.clone()
        poked[0, :, 33, 21] += 5.0
        changed = (context(poked) - logits).abs()[0, 0]
        assert changed[33, 21] > 0 and changed[33, 21] >= changed.max() * 0.1
    with pytest.raises(ValueError, match="context_scale"):
        CrackUNet(context_scale=3)


def test_distilled_fit_starts_from_the_teacher_encoder_keeps_it_frozen_and_saves_no_teacher(tmp_path):
    seed_everything(0)
    teacher = CrackSegmenter(weights="none", decoder_convs=2)
    teacher_ckpt = save_segmenter(teacher, tmp_path / "teacher.ckpt")
    root = synthetic_root(tmp_path / "photos", count=6)
    from crack_lightning.data.segmentation import SegmentationDataModule

    data = SegmentationDataModule(str(root), crop_size=64, batch_size=2, val_fraction=0.34, num_workers=0)
    student = CrackSegmenter(
        weights="none",
        decoder_channels=(32, 16, 16, 8, 8),
        decoder_convs=2,
        separable=True,
        distill_from=teacher_ckpt,
        encoder_lr=0,
        preview_images=0,
    )
    trainer = Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(student, data)
    # The encoder is the teacher's, untouched by two epochs (weights and batch-norm statistics alike).
    for (name, mine), theirs in zip(
        student.net.encoder.state_dict().items(), teacher.net.encoder.state_dict().values()
    ):
        assert torch.equal(mine, theirs), name
    assert "train_distill_loss" in trainer.callback_metrics
    # The decoder learned: it is not the one it started with.
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    saved = torch.load(tmp_path / "student.ckpt", weights_only=True)
    assert not any("teacher" in key for key in saved["state_dict"])
    reloaded = CrackSegmenter.load_from_checkpoint(tmp_path / "student.ckpt", weights_only=True)
    assert reloaded.hparams.separable


def test_distillation_pulls_the_student_towards_the_teacher(tmp_path):
    """With only the teacher's loss (no masked pixel: every pixel ignored), the student's probabilities move
    towards the teacher's."""
    seed_everything(0)
    teacher = CrackSegmenter(weights="none", decoder_convs=1)
    teacher_ckpt = save_segmenter(teacher, tmp_path / "teacher.ckpt")
    student = CrackSegmenter(
        weights="none",
        decoder_channels=(16, 16, 8, 8, 8),
        separable=True,
        lr=1e-2,
        distill_from=teacher_ckpt,
        encoder_lr=0,
        warmup_steps=0,
    )
    student.teacher = (student.load_teacher(teacher_ckpt),)
    student.net.encoder.load_state_dict(teacher.net.encoder.state_dict())
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    masks = torch.full((2, 1, 64, 64), 2, dtype=torch.uint8)  # all IGNORE: the mask loss is 0

    def gap() -> float:
        with torch.no_grad():
            s = torch.sigmoid(student.eval()(student.normalise(images)))
            t = torch.sigmoid(teacher.eval()(teacher.normalise(images)))
        return (s - t).abs().mean().item()

    before = gap()
    student.net.encoder.requires_grad_(False)
    optimiser = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=1e-2)
    student.train()
    student.net.encoder.eval()
    student.log = lambda *args, **kwargs: None  # no Trainer here
    for _ in range(30):
        optimiser.zero_grad()
        student.training_step((images, masks), 0).backward()
        optimiser.step()
    assert gap() < before / 2


def test_distill_from_a_classifier_checkpoint_is_a_one_line_error(tmp_path):
    bogus = tmp_path / "not-a-segmenter.ckpt"
    torch.save({"state_dict": {"backbone.x": torch.zeros(1)}, "hyper_parameters": {"task": "classification"}}, bogus)
    with pytest.raises(CrackLightningError, match="distill_from"):
        CrackSegmenter(weights="none").load_teacher(str(bogus))


def test_validation_skips_a_photo_whose_pixels_are_all_ignored():
    """A crack patch only a teacher labels has every pixel IGNORE: validation leaves it out instead of failing."""
    model = CrackSegmenter(weights="none", preview_images=0).eval()
    model.log = lambda *args, **kwargs: None  # no Trainer here
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        model.validation_step((images, torch.full((1, 1, 64, 64), 2, dtype=torch.uint8)), 0)
        masks = torch.zeros((1, 1, 64, 64), dtype=torch.uint8)
        masks[..., 30:33, :] = 1
        model.validation_step((images, masks), 1)
    curve = model.metrics["val"]["curve"]
    precision, recall, _ = curve.compute()
    assert recall[0] == 1  # the second photo's 192 crack pixels were counted, the first photo's none
