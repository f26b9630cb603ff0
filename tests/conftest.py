"""Shared fixtures: small folders of real images copied from the sample shipped in the package, and no network."""

from __future__ import annotations

import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

from crack_lightning.data.classification import sample_root
from crack_lightning.models.pretrained import BUNDLED_BACKBONE

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("Negative", "Positive")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path_factory):
    """Tests never download: an empty torch cache, and any download attempt fails as it would offline; exported
    graphs are cached in a folder of the test's own."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    monkeypatch.setenv("CRACK_LIGHTNING_CACHE", str(tmp_path_factory.mktemp("cache")))

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"tests do not download ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def copy_images(dst: Path, per_class: int, offset: int = 0) -> Path:
    """Copy ``per_class`` real images of each class from the bundled sample into ``dst/<class>/``."""
    for name in CLASSES:
        (dst / name).mkdir(parents=True, exist_ok=True)
        for src in sorted((sample_root() / name).glob("*.jpg"))[offset : offset + per_class]:
            shutil.copy2(src, dst / name / src.name)
    return dst


@pytest.fixture
def image_root(tmp_path) -> Path:
    """Class-folder layout: 25 real images per class."""
    return copy_images(tmp_path / "images", 25)


@pytest.fixture
def presplit_root(tmp_path) -> Path:
    """train/val/test layout, each with both class folders, from disjoint real images."""
    root = tmp_path / "presplit"
    copy_images(root / "train", 12, offset=0)
    copy_images(root / "val", 4, offset=12)
    copy_images(root / "test", 3, offset=16)
    return root


@pytest.fixture
def backbone_file() -> Path:
    return BUNDLED_BACKBONE


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A briefly trained checkpoint (96-pixel input) and the image folder it was trained on."""
    import lightning as L

    from crack_lightning.data.classification import CrackDataModule
    from crack_lightning.models.classifier import CrackClassifier

    tmp = tmp_path_factory.mktemp("trained")
    root = copy_images(tmp / "images", 30)
    L.seed_everything(0)
    model = CrackClassifier(
        weights=str(BUNDLED_BACKBONE), lr=1e-4
    )  # the fixture the tests were written on, whatever the default
    data = CrackDataModule(root=str(root), batch_size=16, num_workers=0, image_size=96)
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp,
    )
    trainer.fit(model, data)
    trainer.save_checkpoint(tmp / "model.ckpt")
    return {"ckpt": tmp / "model.ckpt", "root": root}
