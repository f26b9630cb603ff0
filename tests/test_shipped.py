"""The model shipped in the package: its files are the ones its card records, its metadata is what the loaders use,
and every command uses it when no checkpoint is given."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from crack_lightning import load_model
from crack_lightning.data.classification import sample_root
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.runtime.models import DEFAULT_MODEL, MODELS_DIR, sha256_of, shipped_models
from crack_lightning.runtime.onnx_file import read_metadata
from tests.conftest import REPO

CARD = json.loads((MODELS_DIR / f"{DEFAULT_MODEL}.json").read_text())


def test_shipped_files_match_the_sha256_in_the_card():
    assert set(CARD["files"]) == {f"{DEFAULT_MODEL}.ckpt", f"{DEFAULT_MODEL}.onnx"}
    for name, recorded in CARD["files"].items():
        assert sha256_of(MODELS_DIR / name) == recorded["sha256"], name
        assert (MODELS_DIR / name).stat().st_size == recorded["bytes"], name


def test_card_graph_and_checkpoint_agree_on_what_the_loaders_use():
    graph = read_metadata((MODELS_DIR / f"{DEFAULT_MODEL}.onnx").read_bytes())
    assert json.loads(graph["class_names"]) == CARD["class_names"]
    assert graph["crack_class"] == CARD["crack_class"]
    assert int(graph["image_size"]) == CARD["image_size"]
    assert json.loads(graph["mean"]) == CARD["mean"] and json.loads(graph["std"]) == CARD["std"]
    model = load_checkpoint(DEFAULT_MODEL)
    assert model.class_names == CARD["class_names"] and model.hparams.crack_class == CARD["crack_class"]
    assert model.preprocessing == (CARD["image_size"], tuple(CARD["mean"]), tuple(CARD["std"]))
    classifier = load_model("concrete-v1")
    assert (classifier.class_names, classifier.image_size) == (CARD["class_names"], CARD["image_size"])
    assert DEFAULT_MODEL in shipped_models()


def test_card_holds_provenance_and_measured_metrics():
    assert "10.17632/5y9wdsg2zt.2" in CARD["training_data"]["citation"]
    assert "CC BY 4.0" in CARD["training_data"]["licence"]
    assert CARD["command"].startswith("python -m crack_lightning fit --config configs/default.yaml --config configs/")
    assert (REPO / CARD["command"].split("--config ")[-1].split()[0]).read_text() == CARD["config"]
    held = CARD["metrics"]["held_out"]
    assert held["correct"] == held["images"] - len(CARD["mistakes"])
    assert held["images"] == CARD["training_data"]["split"]["val"] + CARD["training_data"]["split"]["test"]


def test_shipped_graph_and_checkpoint_give_the_same_probabilities():
    paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[:6]]
    classifier = load_model("concrete-v1", backend="onnxruntime")
    batch = np.stack([classifier.prepare(p) for p in paths])
    with torch.no_grad():
        expected = load_checkpoint(DEFAULT_MODEL).eval().predict_step(torch.from_numpy(batch), 0).numpy()
    assert np.abs(classifier.probabilities(batch) - expected).max() < 1e-5


def test_shipped_model_classifies_the_bundled_sample():
    paths = [p for c in ("Negative", "Positive") for p in sorted((sample_root() / c).glob("*.jpg"))[:50]]
    result = load_model("concrete-v1").predict(paths)
    truth = [p.parent.name for p in paths]
    assert sum(a == b for a, b in zip(result.labels, truth)) >= 98  # 100 real patches it did not train on


def test_predict_without_a_checkpoint_uses_the_shipped_model_and_says_so(tmp_path):
    images = sample_root() / "Positive"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crack_lightning",
            "predict",
            "--data.predict_dir",
            str(images),
            "--output",
            str(tmp_path / "p.csv"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"Model: the shipped model {DEFAULT_MODEL}" in done.stderr
    assert (tmp_path / "p.csv").read_text().count("\n") == len(list(images.glob("*.jpg"))) + 1


@pytest.mark.slow
def test_retraining_the_shipped_model_reaches_its_accuracy(tmp_path):
    """The card's command on the shared data, then bench/ship_model.py --check (about 30 minutes on 2 cores)."""
    data = REPO.parent / "shared" / "data"
    if not (data / "concrete-crack-extra").is_dir():
        pytest.skip("the 17,000 training images are not beside the repository (../shared/data)")
    roots = f"[{data / 'concrete-crack'}, {data / 'concrete-crack-extra'}]"
    command = CARD["command"].split() + [
        "--data.root",
        roots,
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--trainer.enable_progress_bar",
        "false",
    ]
    subprocess.run([sys.executable, *command[1:]], check=True, cwd=REPO)
    run = next((tmp_path / DEFAULT_MODEL).glob("version_*"))
    subprocess.run([sys.executable, "bench/ship_model.py", str(run), "--check"], check=True, cwd=REPO)
