"""Every Python example in the README and docs/ runs, on stand-in files with the names the examples use."""

from __future__ import annotations

import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from tests.test_segment_scan import darkness_model

SAMPLE = REPO / "crack_lightning" / "assets" / "sample"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
EXAMPLES = [
    pytest.param(code, id=f"{doc.name}-{i}") for doc in DOCS for i, code in enumerate(BLOCK.findall(doc.read_text()))
]


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """patch1.jpg (a crack), patch2.jpg (sound), photo.jpg (2 x 2 patches with a dark line), photos/, masked/ (the
    photo and its mask), segmenter.onnx."""
    crack, sound = sorted((SAMPLE / "Positive").glob("*.jpg"))[0], sorted((SAMPLE / "Negative").glob("*.jpg"))[0]
    shutil.copy(crack, tmp_path / "patch1.jpg")
    shutil.copy(sound, tmp_path / "patch2.jpg")
    tiles = [np.asarray(Image.open(p)) for p in (crack, sound, sound, crack)]
    photo = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)])
    photo[200:204, 20:400] = 30
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95)
    (tmp_path / "photos").mkdir()
    shutil.copy(tmp_path / "photo.jpg", tmp_path / "photos" / "wall.jpg")
    for folder in ("masked/images", "masked/masks"):
        (tmp_path / folder).mkdir(parents=True)
    shutil.copy(tmp_path / "photo.jpg", tmp_path / "masked" / "images" / "wall.jpg")
    truth = np.zeros(photo.shape[:2], np.uint8)
    truth[200:204, 20:400] = 255
    Image.fromarray(truth).save(tmp_path / "masked" / "masks" / "wall.png")
    darkness_model(tmp_path / "segmenter.onnx")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["example"])


@pytest.mark.parametrize("code", EXAMPLES)
def test_example_runs(code, stand_ins, capsys):
    exec(compile(code, "<example>", "exec"), {"__name__": "__example__"})
