"""Crack segmentation: the network, a tiny fit and its checkpoint, the data module, windowed inference, ONNX export."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from crack_lightning.data.segmentation import SegmentationDataModule
from crack_lightning.errors import CrackLightningError
from crack_lightning.export.onnx import segmenter_network, torch_runner
from crack_lightning.models.segmenter import TASK, CrackSegmenter
from crack_lightning.runtime.windows import flip_averaged, segment_photo, window_tiling

REPO = Path(__file__).resolve().parents[1]
CRACK_PHOTOS = REPO.parent / "shared" / "data" / "crack-photos"  # research-use data: read in place, never copied here


def synthetic_root(root: Path, count: int = 4, size: tuple[int, int] = (96, 128)) -> Path:
    """Photos with a dark line on noise and their masks."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        image = rng.integers(120, 200, (*size, 3), dtype=np.uint8)
        mask = np.zeros(size, dtype=np.uint8)
        mask[size[0] // 2 + i : size[0] // 2 + i + 3, 10:-10] = 255
        image[mask > 0] = 40
        Image.fromarray(image).save(root / "images" / f"p{i}-{i % 2}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"p{i}-{i % 2}.png")
    return root


@pytest.fixture
def photo_root(tmp_path) -> Path:
    """Four real photos with masks (links into ../shared), else synthetic ones."""
    if not CRACK_PHOTOS.is_dir():
        return synthetic_root(tmp_path / "photos")
    root = tmp_path / "photos"
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    for image in sorted((CRACK_PHOTOS / "images").glob("*.jpg"))[:4]:
        (root / "images" / image.name).symlink_to(image)
        (root / "masks" / f"{image.stem}.png").symlink_to(CRACK_PHOTOS / "masks" / f"{image.stem}.png")
    return root


@pytest.fixture(scope="module")
def model() -> CrackSegmenter:
    torch.manual_seed(0)
    return CrackSegmenter(weights="none", preview_images=1).eval()


def test_tiny_fit_and_checkpoint_round_trip(photo_root, tmp_path):
    L.seed_everything(0)
    data = SegmentationDataModule(str(photo_root), crop_size=64, batch_size=2, val_fraction=0.5, colour_jitter=0.1)
    segmenter = CrackSegmenter(weights="none", warmup_steps=1, preview_images=1)  # threshold chosen on validation
    trainer = L.Trainer(
        max_steps=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=L.pytorch.loggers.TensorBoardLogger(tmp_path, name="seg"),
        enable_checkpointing=False,
    )
    trainer.fit(segmenter, data)
    for name in ("val_loss", "val_f1", "val_iou", "val_ods_f1", "val_ods_f1_tol2", "val_ods_threshold"):
        assert 0 <= trainer.callback_metrics[name].item() < float("inf")
    chosen = segmenter.threshold
    assert chosen == pytest.approx(trainer.callback_metrics["val_ods_threshold"].item(), abs=1e-4) or chosen == 0.5
    with open(Path(trainer.log_dir) / "split.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["split"] for r in rows} == {"train", "val"}
    assert any(p.name.startswith("events") for p in Path(trainer.log_dir).iterdir())  # with the preview grid
    trainer.save_checkpoint(tmp_path / "seg.ckpt")
    checkpoint = torch.load(tmp_path / "seg.ckpt", map_location="cpu", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["task"] == TASK and hparams["threshold"] is None
    assert list(hparams["mean"]) == [0.485, 0.456, 0.406] and list(hparams["std"]) == [0.229, 0.224, 0.225]
    restored = CrackSegmenter.load_from_checkpoint(tmp_path / "seg.ckpt", map_location="cpu", weights_only=True).eval()
    assert restored.threshold == chosen
    assert CrackSegmenter(weights="none", threshold=0.4).threshold == 0.4  # a fixed threshold wins
    images = torch.randint(0, 256, (1, 3, 64, 96), dtype=torch.uint8)
    with torch.no_grad():
        expected = segmenter.eval()(segmenter.normalise(images))
        assert torch.allclose(restored(restored.normalise(images)), expected, atol=1e-5)


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (97, 131), (5, 7)])
def test_forward_keeps_height_and_width(model, size):
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 1, *size)


def test_windows_equal_one_window_on_a_small_photo(model):
    photo = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    probabilities = segment_photo(photo, torch_runner(segmenter_network(model)), window=128, overlap=32)
    with torch.no_grad():
        direct = torch.sigmoid(model(model.normalise(torch.from_numpy(photo).permute(2, 0, 1)[None])))[0, 0]
    assert np.abs(probabilities / 255 - direct.numpy()).max() <= 1 / 255 + 1e-6


def test_windows_blend_a_pixelwise_network_exactly():
    """Blended windows of a network that answers per pixel equal the whole photo's answer within 1/255, for sizes
    that are no multiple of the window."""
    photo = np.random.default_rng(0).integers(0, 256, (301, 437, 3), dtype=np.uint8)
    calls = []

    def run(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return batch.astype(np.float32).mean(axis=1, keepdims=True) / 255

    out = segment_photo(photo, run, window=128, overlap=32, batch_size=3)
    assert out.shape == (301, 437) and out.dtype == np.uint8
    assert np.abs(out.astype(np.float32) - np.rint(photo.astype(np.float32).mean(axis=2))).max() <= 1
    assert all(shape[0] <= 3 and shape[1:] == (3, 128, 128) for shape in calls)
    # Mirrored windows, answered per pixel and mirrored back, are the same answer.
    mirrored = segment_photo(photo, flip_averaged(run), window=128, overlap=32)
    assert np.abs(mirrored.astype(int) - out).max() <= 1


@pytest.mark.parametrize("length", [1, 100, 512, 513, 1000, 2043, 2724, 6000])
def test_windows_cover_the_photo_evenly_with_the_overlap(length):
    starts, size = window_tiling(length, 512, 64)
    assert size <= 512 and starts[0] == 0 and starts[-1] + size == length
    assert all(64 <= a + size - b for a, b in zip(starts, starts[1:]))  # neighbours overlap by 64 px or more
    # No fewer windows could cover it with that overlap, so none is computed twice for nothing.
    assert len(starts) == 1 or (len(starts) - 1) * 512 - (len(starts) - 2) * 64 < length


def test_the_exported_graph_matches_torch_and_carries_the_chosen_threshold(model):
    pytest.importorskip("onnxruntime")
    from crack_lightning.export.onnx import export_segmenter
    from crack_lightning.runtime.backends import open_session
    from crack_lightning.runtime.onnx_file import read_metadata

    model = copy.deepcopy(model)
    assert model.hparams.threshold is None  # the default: chosen on validation
    model.chosen_threshold.fill_(0.62)
    graph = export_segmenter(model)
    assert float(read_metadata(graph)["threshold"]) == pytest.approx(0.62)
    images = torch.randint(0, 256, (2, 3, 75, 101), dtype=torch.uint8)  # another batch and an odd size
    answer = open_session(graph, "onnxruntime")(images.numpy())
    with torch.no_grad():
        expected = torch.sigmoid(model(model.normalise(images))).numpy()
    assert answer.shape == (2, 1, 75, 101) and answer.dtype == np.float32
    assert np.abs(answer - expected).max() < 1e-4


def test_joint_augmentation_keeps_image_and_mask_aligned(tmp_path):
    root = synthetic_root(tmp_path / "photos", count=4)
    data = SegmentationDataModule(str(root), crop_size=64, batch_size=2, val_fraction=0.5, colour_jitter=0.0)
    data.setup("fit")
    torch.manual_seed(0)
    for _ in range(3):
        images, masks = next(iter(data.train_dataloader()))
        assert images.dtype == torch.uint8 and images.shape == (2, 3, 64, 64) and masks.shape == (2, 1, 64, 64)
        # The line is dark (40) on a bright background (120-200), JPEG aside: the mask must sit on the dark pixels.
        dark = images.float().mean(dim=1, keepdim=True) < 80
        assert (dark == masks.bool()).float().mean() > 0.97


def test_group_split_and_one_line_errors(tmp_path):
    root = synthetic_root(tmp_path / "photos", count=4)
    data = SegmentationDataModule(str(root), val_fraction=0.5, group_pattern=r"^([^-.]+)")
    data.setup("validate")
    assert sorted(data.splits["train"] + data.splits["val"]) == sorted(
        f"images/{p.name}" for p in (root / "images").iterdir()
    )
    (root / "masks" / "p3-1.png").unlink()
    with pytest.raises(CrackLightningError, match=r"1 photo\(s\) .* have no mask .*p3-1.jpg") as err:
        SegmentationDataModule(str(root)).setup("fit")
    assert "\n" not in str(err.value)
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    with pytest.raises(CrackLightningError, match="no folder .*masks"):
        SegmentationDataModule(str(empty)).setup("fit")


def test_init_from_starts_from_a_trained_segmenter(tmp_path):
    import lightning

    torch.manual_seed(0)
    trained = CrackSegmenter(weights="none", decoder_convs=2)
    trained.chosen_threshold.fill_(0.7)
    ckpt = tmp_path / "trained.ckpt"
    torch.save(
        {
            "state_dict": trained.state_dict(),
            "hyper_parameters": dict(trained.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        ckpt,
    )
    torch.manual_seed(1)
    fresh = CrackSegmenter(weights="none", decoder_convs=2, init_from=str(ckpt))
    fresh.init_from_checkpoint(str(ckpt))
    assert fresh.threshold == pytest.approx(0.7)
    images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(fresh.normalise(images)), trained.eval()(trained.normalise(images)))
    with pytest.raises(CrackLightningError, match="another decoder"):
        CrackSegmenter(weights="none", decoder_convs=1).init_from_checkpoint(str(ckpt))


@pytest.mark.parametrize("tolerance", [0, 2])
def test_tolerance_metric_on_the_batch_device_counts_as_the_measure_module(tolerance):
    """Validation's ODS F1 with a tolerance runs on the batch's device (a GPU's) and counts what the torch-free
    measurement counts, photo by photo, exactly: ignored pixels (2) are not crack, a photo may have no crack."""
    from crack_lightning.measure.cracks import ODS_THRESHOLDS, f1_scores, pixel_counts
    from crack_lightning.models.segmentation_metrics import ToleranceCounts, tolerant_counts

    rng = np.random.default_rng(3)
    probabilities = torch.from_numpy(rng.random((3, 1, 41, 57)).astype(np.float32) ** 3)
    masks = torch.from_numpy((rng.random((3, 1, 41, 57)) < 0.06).astype(np.int64))
    masks[0, 0, :6, :9] = 2
    masks[2] = 0
    metric = ToleranceCounts(tolerance)
    metric.update(probabilities[:2], masks[:2])
    metric.update(probabilities[2:], masks[2:])
    expected = sum(
        pixel_counts(p[0].numpy(), m[0].numpy() == 1, ODS_THRESHOLDS, tolerance) for p, m in zip(probabilities, masks)
    )
    assert (metric.counts.numpy() == expected).all()
    # the GPU's way (shifted maxima, bucketize), here run on the CPU
    on_device = tolerant_counts(probabilities, masks == 1, metric.thresholds, tolerance)
    assert (on_device.numpy() == expected).all()
    assert float(metric.compute()) == pytest.approx(f1_scores(expected)[0].max())
