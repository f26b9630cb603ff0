"""predict: the torch-free path (ONNX Runtime / OpenVINO, the default) and Lightning's (any Trainer option) write the
same CSV; the Python API gives the same numbers; the torch-free commands never import torch."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crack_lightning import load_model
from crack_lightning.cli import main
from crack_lightning.io.images import read_rgb, resize
from crack_lightning.models.loading import load_checkpoint
from crack_lightning.runtime.labels import decide_labels
from tests.conftest import REPO

LIGHTNING = [
    "--engine",
    "lightning",
    "--trainer.accelerator",
    "cpu",
    "--trainer.precision",
    "32-true",
    "--trainer.enable_progress_bar",
    "false",
    "--data.num_workers",
    "0",
]
FLOAT32 = (
    "--precision",
    "32",
)  # the default auto computes bf16 on CPUs with bf16 units: compared with PyTorch, float32
HEAVY = ("torch", "torchvision", "lightning", "pytorch_lightning", "torchmetrics")


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    monkeypatch.chdir(tmp_path)  # runs/ and predictions.csv of predict calls without --output land here


@pytest.fixture
def unseen(trained, tmp_path) -> Path:
    """A nested folder of images with odd names, a corrupt image and a non-image file."""
    folder = tmp_path / "inspection"
    (folder / "wall A" / "deep").mkdir(parents=True)
    sources = sorted(trained["root"].rglob("*.jpg"))
    shutil.copy(sources[0], folder / "wall A" / "IMG_1.JPG")
    shutil.copy(sources[-1], folder / "wall A" / "deep" / "crack.jpeg")
    Image.open(sources[1]).save(folder / "b.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def predict(ckpt: Path, source: Path | str, *extra: str) -> None:
    main(["predict", "--ckpt_path", str(ckpt), "--data.predict_dir", str(source), *extra])


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def pytorch_probabilities(ckpt: Path, paths: list[str]) -> np.ndarray:
    """The PyTorch model's answer (predict_step) on the images as both paths read and resize them."""
    model = load_checkpoint(ckpt).eval()
    batch = np.stack([resize(read_rgb(p), model.preprocessing[0]).transpose(2, 0, 1) for p in paths])
    with torch.no_grad():
        return model.predict_step(torch.from_numpy(batch), 0).numpy()


def test_predict_folder_without_torch_gives_pytorchs_answers(trained, unseen, tmp_path):
    out = tmp_path / "out" / "predictions.csv"
    predict(trained["ckpt"], unseen, "--output", str(out), *FLOAT32)
    rows = read_rows(out)
    assert [Path(r["path"]).relative_to(unseen).as_posix() for r in rows] == [
        "b.png",
        "broken.jpg",
        "wall A/IMG_1.JPG",
        "wall A/deep/crack.jpeg",
    ]
    assert list(rows[0]) == [
        "path",
        "label",
        "crack_probability",
        "probability_Negative",
        "probability_Positive",
        "error",
    ]
    broken = rows[1]
    assert "broken.jpg: cannot be read as an image" in broken["error"] and broken["label"] == ""
    good = [rows[0], rows[2], rows[3]]
    expected = pytorch_probabilities(trained["ckpt"], [r["path"] for r in good])
    for row, probabilities in zip(good, expected):
        assert row["error"] == ""
        assert float(row["probability_Negative"]) + float(row["probability_Positive"]) == pytest.approx(1, abs=1e-5)
        assert float(row["crack_probability"]) == pytest.approx(probabilities[1], abs=1e-5)
        assert row["label"] == ("Positive" if probabilities[1] >= 0.5 else "Negative")
    assert sorted(p.name for p in out.parent.iterdir()) == ["predictions.csv"]  # no partial file left


def test_torch_free_csv_equals_lightnings_csv(trained, unseen, tmp_path):
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "free.csv"), *FLOAT32)
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "lightning.csv"), *LIGHTNING)
    free, lightning = read_rows(tmp_path / "free.csv"), read_rows(tmp_path / "lightning.csv")
    assert [r["path"] for r in free] == [r["path"] for r in lightning] and len(free) == 4
    for a, b in zip(free, lightning):
        assert (a["label"], a["error"]) == (b["label"], b["error"])
        for key in ("crack_probability", "probability_Negative", "probability_Positive"):
            if not a["error"]:
                assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-5), (a["path"], key)


def test_predict_single_image_and_a_list(trained, unseen, tmp_path):
    predict(trained["ckpt"], unseen / "b.png", "--output", str(tmp_path / "one.csv"))
    assert [Path(r["path"]).name for r in read_rows(tmp_path / "one.csv")] == ["b.png"]

    listing = unseen / "list.txt"
    listing.write_text("# images to check\nb.png\n\nwall A/IMG_1.JPG\nmissing.jpg\n")
    predict(trained["ckpt"], listing, "--output", str(tmp_path / "list.csv"))
    rows = read_rows(tmp_path / "list.csv")
    assert [Path(r["path"]).name for r in rows] == ["b.png", "IMG_1.JPG", "missing.jpg"]
    assert rows[2]["error"] and rows[2]["label"] == "" and rows[0]["error"] == ""


@pytest.mark.parametrize("path", [[], LIGHTNING], ids=["torch-free", "lightning"])
def test_existing_output_is_kept_unless_overwrite(trained, unseen, tmp_path, capsys, path):
    out = tmp_path / "predictions.csv"
    out.write_text("my earlier results\n")
    with pytest.raises(SystemExit) as exit_info:
        predict(trained["ckpt"], unseen, "--output", str(out), *path)
    assert exit_info.value.code == 2 and "exists" in capsys.readouterr().err
    assert out.read_text() == "my earlier results\n"
    predict(trained["ckpt"], unseen, "--output", str(out), "--overwrite", "true", *path)
    assert len(read_rows(out)) == 4


def test_default_output(trained, unseen, tmp_path, caplog):
    predict(trained["ckpt"], unseen)  # torch-free: predictions.csv in the working folder
    assert len(read_rows(tmp_path / "predictions.csv")) == 4
    predict(trained["ckpt"], unseen, *LIGHTNING)  # Lightning: predictions.csv in the run's log folder
    (written,) = (tmp_path / "runs").rglob("predictions.csv")
    assert len(read_rows(written)) == 4
    assert f"Predictions written to {written.relative_to(tmp_path)}" in caplog.text


def test_threshold_flag(trained, unseen, tmp_path):
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "all.csv"), "--threshold", "0")
    assert {r["label"] for r in read_rows(tmp_path / "all.csv") if not r["error"]} == {"Positive"}
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "none.csv"), "--threshold", "1")
    assert {r["label"] for r in read_rows(tmp_path / "none.csv") if not r["error"]} == {"Negative"}


def test_load_model_api_matches_the_csv(trained, unseen, tmp_path):
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "p.csv"), *FLOAT32)
    rows = [r for r in read_rows(tmp_path / "p.csv") if not r["error"]]
    model = load_model(trained["ckpt"])
    paths = [r["path"] for r in rows]
    by_path = model.predict(paths, batch_size=2)
    by_pil = model.predict([Image.open(p) for p in paths], batch_size=1)
    by_array = model.predict([read_rgb(p) for p in paths])
    expected = np.array([float(r["crack_probability"]) for r in rows])
    for result in (by_path, by_pil, by_array):
        assert result.labels == [r["label"] for r in rows]
        assert np.abs(result.crack_probability - expected).max() < 1e-5
        assert result.probabilities.shape == (3, 2) and result.class_names == ["Negative", "Positive"]


def test_an_exported_onnx_file_predicts_as_its_checkpoint(trained, unseen, tmp_path):
    main(["export", "--ckpt_path", str(trained["ckpt"]), "--output", str(tmp_path / "m.onnx"), "--check", "false"])
    predict(trained["ckpt"], unseen, "--output", str(tmp_path / "ckpt.csv"))
    predict(tmp_path / "m.onnx", unseen, "--output", str(tmp_path / "onnx.csv"))
    assert read_rows(tmp_path / "ckpt.csv") == read_rows(tmp_path / "onnx.csv")


def test_decide_labels_with_three_classes():
    probabilities = np.array([[0.2, 0.5, 0.3], [0.5, 0.1, 0.4], [0.1, 0.35, 0.55]])
    names = ["A", "Crack", "B"]
    assert decide_labels(probabilities, names, crack_index=1, threshold=0.5) == ["Crack", "A", "B"]
    assert decide_labels(probabilities, names, crack_index=1, threshold=0.3) == ["Crack", "A", "Crack"]


# --- no torch where none is needed: subprocesses, as a user starts them -------------------------------------------


def run_python(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def imported(importtime_stderr: str) -> set[str]:
    """The top-level packages a ``python -X importtime`` run imported."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_predict_from_a_cached_checkpoint_graph_does_not_import_torch(trained, unseen, tmp_path):
    # The first use of a checkpoint exports its graph (with torch) into the cache; later runs read the cache.
    first = load_model(trained["ckpt"])
    assert "exported once to" in first.source
    again = load_model(trained["ckpt"])
    assert "cached in" in again.source and again.graph == first.graph
    out = tmp_path / "p.csv"
    result = run_python(
        [
            "-X",
            "importtime",
            "-m",
            "crack_lightning",
            "predict",
            "--ckpt_path",
            str(trained["ckpt"]),
            "--data.predict_dir",
            str(unseen),
            "--output",
            str(out),
            "--precision",
            "32",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = imported(result.stderr)
    assert "onnxruntime" in modules and "crack_lightning" in modules  # the parse found the imports
    assert not modules & set(HEAVY), modules & set(HEAVY)
    assert "exported graph cached in" in result.stderr
    in_process = tmp_path / "in_process.csv"
    predict(trained["ckpt"], unseen, "--output", str(in_process), "--precision", "32")
    assert read_rows(out) == read_rows(in_process)


@pytest.mark.parametrize("command", ["predict", "scan", "evaluate", "export", "tiles", "fit", "validate", "test"])
def test_help_does_not_import_torch(command, tmp_path):
    result = run_python(["-X", "importtime", "-m", "crack_lightning", command, "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--help" in result.stdout and command in result.stdout.split("\n")[0]
    modules = imported(result.stderr)
    assert "crack_lightning" in modules and not modules & set(HEAVY), modules & set(HEAVY)


@pytest.mark.parametrize("command", ["fit", "validate", "test"])
def test_stored_help_is_what_lightningcli_prints(command):
    """fit/validate/test --help print a stored copy of LightningCLI's help (torch-free): it must be current.
    If this fails after an option changed: python -m crack_lightning.cli.stored_help"""
    from crack_lightning.cli.stored_help import live_help, stored_help

    assert same_but_union_order(stored_help([command, "--help"])) == same_but_union_order(live_help(command))


def same_but_union_order(text: str) -> str:
    """``text`` with each ``Union[...]``'s members sorted: typing caches a union under the order of its first use, so
    the order jsonargparse prints depends on what the environment imported before (rich, when installed, flips it)."""
    import re

    joined = " ".join(text.split())  # the help wraps a union across lines
    return re.sub(r"Union\[([^\]]*)\]", lambda m: "Union[" + ", ".join(sorted(m.group(1).split(", "))) + "]", joined)


RACE = """
import sys, time
from pathlib import Path
import crack_lightning.export.onnx  # torch imported before the start line, so that both export at once
from crack_lightning.api import exported_graph
from crack_lightning.runtime.classifier import Classifier
Path(sys.argv[2]).touch()
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
graph, how = exported_graph(sys.argv[1])
print(len(Classifier(graph).predict([sys.argv[4]]).labels), how)
"""


WRITER = """
import sys
from crack_lightning.io.atomic import write_atomically
payload = bytes([int(sys.argv[2])]) * 2_000_000
for _ in range(40):
    write_atomically(sys.argv[1], payload)
"""


def test_cache_writes_are_atomic_under_two_writers_and_a_reader(tmp_path):
    target = tmp_path / "graphs" / "model.onnx"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(value)], env=env, stderr=subprocess.PIPE)
        for value in (1, 2)
    ]
    seen = set()
    while any(w.poll() is None for w in writers):
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            continue
        assert len(data) == 2_000_000 and data.count(data[:1]) == len(data)  # one writer's whole file, never a mix
        seen.add(data[0])
    assert [w.wait() for w in writers] == [0, 0], [w.stderr.read() for w in writers]
    assert seen and [p.name for p in target.parent.iterdir()] == ["model.onnx"]  # no partial file left


@pytest.mark.slow  # two processes importing torch at once: about 40 s on 2 cores
def test_two_processes_exporting_one_checkpoint_at_once_both_succeed(trained, tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CRACK_LIGHTNING_CACHE": str(cache)}
    image = str(next(trained["root"].rglob("*.jpg")))
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(trained["ckpt"]), str(tmp_path / f"ready{i}"), str(go), image],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for i in range(2):
            while not (tmp_path / f"ready{i}").exists():
                assert processes[i].poll() is None, processes[i].communicate()[1][-3000:]
                time.sleep(0.05)
        go.touch()
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
        assert out.startswith("1 ")
    files = sorted(p.name for p in (cache / "graphs").iterdir())
    assert len(files) == 1 and files[0].endswith(".onnx")  # one graph, no partial file left
    cached = load_model(cache / "graphs" / files[0]).predict([image]).probabilities
    assert np.abs(cached - load_model(trained["ckpt"]).predict([image]).probabilities).max() < 1e-6


def test_predict_with_a_segmenter_is_a_one_line_hint(tmp_path):
    out = tmp_path / "p.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crack_lightning",
            "predict",
            "--ckpt_path",
            "concrete-seg-v2",
            "--input",
            str(REPO / "crack_lightning" / "assets" / "sample" / "Positive"),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode != 0 and not out.exists()
    assert "concrete-seg-v2 is a crack segmentation model" in done.stderr and "Traceback" not in done.stderr
