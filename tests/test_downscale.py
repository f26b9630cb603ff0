"""Scale augmentation: shrunk training photos keep their cracks in their masks (half-covered pixels), aligned."""

from __future__ import annotations

import pytest
import torch

from crack_lightning.data.downscale import shrink_mask
from crack_lightning.data.segmentation import IGNORE, SegmentationDataModule
from crack_lightning.errors import CrackLightningError
from tests.test_segmentation import synthetic_root


def test_shrunk_masks_mark_half_covered_pixels_and_keep_left_out_ones():
    mask = torch.zeros(1, 384, 384, dtype=torch.uint8)
    mask[0, 100, :] = 1  # a one-pixel hairline
    mask[0, 200:210, :] = 1  # a 10-px crack
    mask[0, 300:305, 0:10] = IGNORE
    half = shrink_mask(mask, 192, 192, IGNORE)[0]
    # half of each new pixel on row 50 was the hairline: still crack; the 10-px crack at half its width
    assert (half[:, 50] == 1).nonzero().flatten().tolist() == [50, 100, 101, 102, 103, 104]
    third = shrink_mask(mask, 128, 128, IGNORE)[0]
    assert (third[:, 7] == 1).nonzero().flatten().tolist() == [67, 68, 69]  # rows 201-209; row 66 was a third crack
    assert (half[150:153, 0:5] == IGNORE).all() and (half[150:153, 5:] == 0).all()


def test_data_module_shrinks_some_photos_and_keeps_masks_on_the_cracks(tmp_path):
    root = synthetic_root(tmp_path / "photos", count=4, size=(256, 256))  # a 3-px dark line on each
    data = SegmentationDataModule(
        str(root), crop_size=64, batch_size=2, val_fraction=0.5, colour_jitter=0.0, max_downscale=3.0
    )
    data.setup("fit")
    torch.manual_seed(0)
    widths = []
    for _ in range(12):
        images, masks = next(iter(data.train_dataloader()))
        assert images.shape == (2, 3, 64, 64) and masks.shape == (2, 1, 64, 64)
        for image, mask in zip(images.float().mean(dim=1), masks[:, 0].bool()):
            if mask.any():
                assert image[mask].mean() < image[~mask].mean() - 40  # the mask sits on the dark line
                widths.append(mask.sum().item() / mask.any(dim=0).sum().clamp(min=1).item())
    assert min(widths) < 2.5 and max(widths) >= 3  # some photos shrunk (the line narrower), some not
    with pytest.raises(CrackLightningError, match="max_downscale"):
        SegmentationDataModule(str(root), max_downscale=0.5)
