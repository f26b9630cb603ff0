"""The crack synthesiser: deterministic samples, masks where the cracks are drawn, look-alikes without masks, the
data-set folder, self-training labels, and the loss that leaves ignored pixels out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crack_lightning.cli import main
from crack_lightning.models.segmenter import CrackSegmenter
from crack_lightning.synth import SampleSpec, synthesise
from crack_lightning.synth.distractors import DISTRACTORS
from crack_lightning.synth.folder import write_dataset
from crack_lightning.synth.paths import Stroke
from crack_lightning.synth.raster import coverage, mask_of
from crack_lightning.synth.surfaces import find_backgrounds

SAMPLE = Path(__file__).resolve().parents[1] / "crack_lightning" / "assets" / "sample"


@pytest.fixture(scope="module")
def backgrounds() -> list[Path]:
    return find_backgrounds([SAMPLE / "Negative"])[:40]


def decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float32)


def test_a_sample_is_a_function_of_seed_and_index(backgrounds):
    spec = SampleSpec(seed=7, size=128)
    first, again = synthesise(spec, 3, backgrounds), synthesise(spec, 3, backgrounds)
    assert first[0] == again[0] and np.array_equal(first[1], again[1])
    other = synthesise(spec, 4, backgrounds)
    assert other[0] != first[0]
    assert synthesise(SampleSpec(seed=8, size=128), 3, backgrounds)[0] != first[0]


def test_masks_lie_on_dark_crack_pixels(backgrounds):
    spec = SampleSpec(seed=1, size=192, sound_share=0.0, distractor_rate=0.0)
    inside, outside, cracked = [], [], 0
    for index in range(12):
        jpeg, mask = synthesise(spec, index, backgrounds)
        grey = decode(jpeg)
        assert grey.shape == mask.shape == (192, 192)
        if mask.sum() > 20:
            cracked += 1
            inside.append(grey[mask].mean())
            outside.append(grey[~mask].mean())
    assert cracked >= 9  # sound_share 0: nearly every sample holds a visible crack
    assert np.mean(np.array(inside) < np.array(outside)) >= 0.9  # cracks are darker than their surface


def test_sound_samples_have_look_alikes_and_no_mask(backgrounds):
    spec = SampleSpec(seed=2, size=128, sound_share=1.0, distractor_rate=3.0)
    masks = [synthesise(spec, i, backgrounds)[1] for i in range(6)]
    assert all(not m.any() for m in masks)
    rng = np.random.default_rng(0)
    image = np.full((96, 96, 3), 150, np.float32)
    for name, draw in DISTRACTORS.items():
        assert np.abs(draw(rng, image) - image).max() > 5, name  # every look-alike changes the picture


def test_the_mask_is_as_wide_as_the_stroke():
    for width in (1.0, 3.0, 6.0):
        points = np.stack([np.linspace(5, 90, 60), np.full(60, 50.0)], axis=1)
        mask = mask_of(coverage([Stroke(points, np.full(60, width))], (100, 100)))
        assert mask[:, 40].sum() == pytest.approx(width, abs=1)


def test_the_folder_resumes_and_refuses_another_data_set(backgrounds, tmp_path):
    out = tmp_path / "synth"
    spec = SampleSpec(seed=0, size=96)
    assert write_dataset(spec, backgrounds, out, 3) == 3
    (out / "images" / "synth-000001.jpg").unlink()
    assert write_dataset(spec, backgrounds, out, 4) == 2  # the missing one and the new one
    assert len(list((out / "masks").iterdir())) == 4 and json.loads((out / "synth.json").read_text())["count"] == 4
    with pytest.raises(ValueError, match="another synthetic data set"):
        write_dataset(SampleSpec(seed=1, size=96), backgrounds, out, 4)


def test_synth_command_and_its_one_line_errors(tmp_path, capsys):
    main(
        [
            "synth",
            "--backgrounds",
            str(SAMPLE / "Negative"),
            "--output",
            str(tmp_path / "s"),
            "--count",
            "2",
            "--size",
            "96",
            "--workers",
            "1",
        ]
    )
    assert "Wrote 2 samples" in capsys.readouterr().out
    assert len(list((tmp_path / "s" / "images").glob("*.jpg"))) == 2
    for argv, words in (
        (["--backgrounds", str(tmp_path / "nowhere")], "no folder"),
        (["--backgrounds", str(SAMPLE / "Negative"), "--size", "10"], "--size"),
    ):
        with pytest.raises(SystemExit) as ended:
            main(["synth", *argv, "--output", str(tmp_path / "t")])
        assert ended.value.code == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1


def test_ignored_pixels_leave_the_loss():
    torch.manual_seed(0)
    model = CrackSegmenter(weights="none")
    logits = torch.randn(1, 1, 8, 8)
    masks = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    masks[..., :4] = 1
    marked = masks.clone()
    marked[..., 6:] = 2
    noisy = logits.clone()
    noisy[..., 6:] = 50.0  # wildly wrong, but ignored
    assert model.loss(noisy, marked) == pytest.approx(model.loss(logits[..., :6], masks[..., :6]).item(), rel=1e-5)


def test_self_training_labels_sure_pixels_and_skips_photos_without_a_sure_crack(tmp_path):
    import lightning as L

    from crack_lightning.training.self_training import pseudo_label

    torch.manual_seed(0)
    model = CrackSegmenter(weights="none", threshold=0.5)
    ckpt = tmp_path / "seg.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": L.__version__,
        },
        ckpt,
    )
    photos = SAMPLE / "Positive"
    count = 3
    folder = tmp_path / "few"
    folder.mkdir()
    for path in sorted(photos.glob("*.jpg"))[:count]:
        (folder / path.name).write_bytes(path.read_bytes())
    # An untrained network says about 0.5 everywhere: with a low bar everything is sure crack, with a high one
    # nothing is, and every photo is skipped.
    assert pseudo_label(str(ckpt), [folder], tmp_path / "none", high=0.99, low=0.01) == {"labelled": 0, "skipped": 3}
    counts = pseudo_label(str(ckpt), [folder], tmp_path / "out", high=0.02, low=0.01, min_area=10)
    assert counts == {"labelled": 3, "skipped": 0}
    for image in (tmp_path / "out" / "images").iterdir():
        mask = np.asarray(Image.open(tmp_path / "out" / "masks" / (image.stem + ".png"))) > 127
        ignore = np.asarray(Image.open(tmp_path / "out" / "ignore" / (image.stem + ".png"))) > 127
        assert mask.shape == ignore.shape == (227, 227) and not (mask & ignore).any()
        assert image.read_bytes() == (folder / image.name.split("-", 2)[2]).read_bytes()
