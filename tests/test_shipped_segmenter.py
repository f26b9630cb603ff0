"""The shipped segmenters (concrete-seg-v1, concrete-seg-v2): files as their cards say, each graph as its checkpoint,
provenance, cracks found in the bundled crack patches and not in the sound ones, and ``scan`` measuring with the
default one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from crack_lightning import load_model
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.runtime.models import DEFAULT_SCAN_MODEL, MODELS_DIR, sha256_of, shipped_models
from crack_lightning.runtime.onnx_file import read_metadata
from crack_lightning.synth import SYNTH_VERSION

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "crack_lightning" / "assets" / "sample"
SEGMENTERS = [name for name, model in shipped_models().items() if model.card.get("task") == "segmentation"]


def card(name: str) -> dict:
    return json.loads((MODELS_DIR / f"{name}.json").read_text())


def test_the_default_segmenter_is_shipped():
    assert DEFAULT_SCAN_MODEL in SEGMENTERS and {"concrete-seg-v1", "concrete-seg-v2"} <= set(SEGMENTERS)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_files_match_the_card_and_the_card_its_sources(name):
    info = card(name)
    assert set(info["files"]) == {f"{name}.ckpt", f"{name}.onnx"}
    for file, recorded in info["files"].items():
        assert sha256_of(MODELS_DIR / file) == recorded["sha256"], file
        assert (MODELS_DIR / file).stat().st_size == recorded["bytes"], file
    data = info["training_data"]
    assert "CC BY 4.0" in data["licence"] and "10.17632/5y9wdsg2zt.2" in data["citation"]
    assert data["synthesiser_version"] == SYNTH_VERSION
    assert (REPO / "configs" / f"{name}.yaml").read_text() == info["config"]
    assert (REPO / info["command"].split()[1]).is_file()  # bench/train_concrete_seg.py
    for kind in ("Positive", "Negative"):  # the held-out surface's figures, with their intervals
        row = info["quality"]["patches"][kind]
        low, high = row["share_95ci"]
        assert low <= row["crack_found"] / row["patches"] <= high


@pytest.mark.parametrize("name", SEGMENTERS)
def test_graph_and_checkpoint_agree(name):
    graph = read_metadata((MODELS_DIR / f"{name}.onnx").read_bytes())
    network = load_checkpoint(name)
    assert graph["task"] == "segmentation"
    assert (
        abs(float(graph["threshold"]) - network.threshold) < 1e-6
        and abs(network.threshold - card(name)["threshold"]) < 1e-4
    )
    segmenter = load_model(name, backend="onnxruntime", precision="32")
    patch = np.stack(
        [
            np.asarray(__import__("PIL.Image").Image.open(p).convert("RGB").resize((224, 224))).transpose(2, 0, 1)
            for p in sorted((SAMPLE / "Positive").glob("*.jpg"))[:2]
        ]
    )
    with torch.no_grad():
        expected = torch.sigmoid(network(network.normalise(torch.from_numpy(patch)))).numpy()
    assert np.abs(segmenter.probabilities(patch) - expected).max() < 1e-4


@pytest.mark.parametrize("name", SEGMENTERS)
def test_cracks_found_in_crack_patches_and_not_in_sound_ones(name):
    # The bundled sample comes from concrete-crack, which the segmenters never trained on.
    segmenter = load_model(name)
    found = {
        kind: sum(bool(segmenter.scan(p).cracks) for p in sorted((SAMPLE / kind).glob("*.jpg"))[:40])
        for kind in ("Positive", "Negative")
    }
    assert found["Positive"] >= 38 and found["Negative"] <= 2, found


def test_scan_measures_with_the_shipped_segmenter_by_default(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted((SAMPLE / "Positive").glob("*.jpg"))[:3]:
        (photos / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crack_lightning",
            "scan",
            "--input",
            str(photos),
            "--output",
            str(out),
            "--progress",
            "false",
            "--mm_per_px",
            "0.5",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"Model: the shipped model {DEFAULT_SCAN_MODEL}" in done.stderr
    with open(out / "cracks.csv", newline="") as f:
        cracks = list(csv.DictReader(f))
    assert {c["photo"] for c in cracks} == {p.name for p in photos.iterdir()}
    assert all(float(c["length_mm"]) > 0 and c["width_class"] for c in cracks)
    assert (out / "report.html").is_file() and len(list((out / "masks").iterdir())) == 3
    tiles = subprocess.run(
        [
            sys.executable,
            "-m",
            "crack_lightning",
            "scan",
            "--input",
            str(photos),
            "--output",
            str(tmp_path / "t"),
            "--tile",
            "64",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert tiles.returncode == 2 and "--ckpt_path concrete-v1" in tiles.stderr
    assert len(tiles.stderr.strip().splitlines()) == 1
