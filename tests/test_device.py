"""``--device`` for predict and scan: the checkpoint's network through PyTorch (CUDA, bf16) answers as the exported
graph does; ``auto`` stays on the torch-free CPU path without a GPU; photos decoded in threads give the same scan."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from crack_lightning import load_model
from crack_lightning.errors import CrackLightningError
from crack_lightning.export.gpu import torch_session
from crack_lightning.runtime.cuda import checkpoint_beside, cuda_available, resolve_device
from crack_lightning.runtime.models import shipped_model
from crack_lightning.scanning import tile_map as scan_module
from crack_lightning.scanning.tile_map import scan_photos

GPU = cuda_available()


@pytest.fixture(scope="module")
def segmenter_checkpoint(tmp_path_factory):
    """A CrackSegmenter with random weights saved as fit saves it."""
    import lightning as L
    import torch

    from crack_lightning.models.segmenter import CrackSegmenter

    torch.manual_seed(0)
    model = CrackSegmenter(weights="none", threshold=0.4)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    path = tmp_path_factory.mktemp("segmenter") / "seg.ckpt"
    trainer.save_checkpoint(path)
    return path


def patches(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 3, 227, 227), dtype=np.uint8)


def test_device_is_resolved_with_one_line_errors():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if GPU else "cpu")
    with pytest.raises(CrackLightningError, match="^device: 'tpu'; pass one of auto, cpu, cuda$"):
        resolve_device("tpu")
    if not GPU:
        with pytest.raises(CrackLightningError, match="device: 'cuda': PyTorch sees no CUDA GPU"):
            resolve_device("cuda")


def test_shipped_graph_has_its_checkpoint_beside_it(tmp_path):
    shipped = shipped_model("concrete-v1")
    assert checkpoint_beside(shipped.graph) == shipped.checkpoint
    (tmp_path / "alone.onnx").write_bytes(b"")
    assert checkpoint_beside(tmp_path / "alone.onnx") is None


@pytest.mark.skipif(GPU, reason="on a GPU machine auto picks CUDA")
def test_auto_without_gpu_is_the_torch_free_cpu_path():
    code = (
        "import sys; from crack_lightning import load_model; m = load_model(device='auto'); "
        "assert m.device == 'cpu' and m.backend != 'cuda'; assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_torch_session_answers_as_the_exported_graph():
    # The code the GPU runs, on the CPU in float32: the same network, normalisation and softmax as the graph.
    run, why = torch_session(shipped_model("concrete-v1").checkpoint, "cpu", "32")
    graph = load_model("concrete-v1", backend="onnxruntime", precision="32")
    batch = patches()
    got, expected = run(batch), graph.probabilities(batch)
    assert got.shape == expected.shape == (6, 2) and got.dtype == np.float32 and "float32" in why
    assert np.abs(got - expected).max() < 1e-4


def test_torch_session_of_a_segmenter_answers_as_its_graph(segmenter_checkpoint):
    run, _ = torch_session(segmenter_checkpoint, "cpu", "32")
    graph = load_model(segmenter_checkpoint, backend="onnxruntime", precision="32")
    batch = np.random.default_rng(1).integers(0, 256, (2, 3, 64, 96), dtype=np.uint8)
    got = run(batch)
    assert got.shape == (2, 1, 64, 96) and np.abs(got - graph.probabilities(batch)).max() < 1e-4


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
def test_cuda_probabilities_within_bf16_tolerance_of_the_cpu_path(segmenter_checkpoint):
    gpu = load_model("concrete-v1", device="auto")
    cpu = load_model("concrete-v1", device="cpu", backend="onnxruntime", precision="32")
    assert gpu.device == "cuda" and "PyTorch on CUDA" in gpu.describe()
    batch = patches(64)
    assert np.abs(gpu.probabilities(batch) - cpu.probabilities(batch)).max() < 0.05
    segmenter = load_model(segmenter_checkpoint, device="cuda")
    reference = load_model(segmenter_checkpoint, backend="onnxruntime", precision="32")
    windows = np.random.default_rng(2).integers(0, 256, (2, 3, 128, 160), dtype=np.uint8)
    assert np.abs(segmenter.probabilities(windows) - reference.probabilities(windows)).mean() < 0.01


def test_scan_with_worker_threads_equals_the_sequential_scan(tmp_path, monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(3)
    photos = []
    for i, size in enumerate([(300, 200), (180, 260), (420, 330)]):
        path = tmp_path / f"p{i}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        photos.append((path.name, path))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    photos.insert(1, ("bad.jpg", tmp_path / "bad.jpg"))
    classifier = load_model("concrete-v1", backend="onnxruntime", precision="32")
    monkeypatch.setattr(
        scan_module, "PRECUT_TILES", 6
    )  # the largest photo takes the other path: cut in the batch's threads
    one = list(scan_photos(classifier, photos, 64, 48, batch_size=7, keep_images=False))
    threads = list(scan_photos(classifier, photos, 64, 48, batch_size=7, keep_images=False, workers=3))
    assert [s.name for s in threads] == [s.name for s in one] == ["p0.png", "bad.jpg", "p1.png", "p2.png"]
    assert threads[1].error and threads[1].error == one[1].error
    for a, b in zip(one, threads):
        assert a.boxes == b.boxes
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


@pytest.fixture
def cuda_on_the_cpu(monkeypatch):
    """``--device cuda``'s wiring run on the CPU, mocked only at the boundary: resolve says cuda, and the GPU backend's
    device is the CPU (where it computes float32)."""
    import torch

    from crack_lightning.export import gpu
    from crack_lightning.runtime import cuda

    monkeypatch.setattr(cuda, "resolve_device", lambda device: "cuda")
    monkeypatch.setattr(gpu, "gpu", lambda: torch.device("cpu"))


def test_device_cuda_runs_the_checkpoint_beside_the_graph(cuda_on_the_cpu, segmenter_checkpoint):
    from crack_lightning.runtime.onnx_file import read_metadata

    gpu = load_model("concrete-v1", device="cuda")
    assert gpu.device == "cuda" and gpu.describe().startswith("PyTorch on CUDA")
    batch = patches()
    expected = load_model("concrete-v1", backend="onnxruntime", precision="32").probabilities(batch)
    assert np.abs(gpu.probabilities(batch) - expected).max() < 1e-4
    # a checkpoint is run itself: only its metadata is needed, no export
    segmenter = load_model(segmenter_checkpoint, device="cuda")
    exported = load_model(segmenter_checkpoint, backend="onnxruntime", precision="32")
    assert read_metadata(segmenter.graph) == read_metadata(exported.graph) and segmenter.threshold == 0.4
    windows = np.random.default_rng(4).integers(0, 256, (1, 3, 64, 64), dtype=np.uint8)
    assert np.abs(segmenter.probabilities(windows) - exported.probabilities(windows)).max() < 1e-4


def test_device_cuda_loads_the_checkpoint_once(cuda_on_the_cpu, segmenter_checkpoint, monkeypatch):
    from crack_lightning.export import gpu

    loaded = []
    real = gpu.load_checkpoint
    monkeypatch.setattr(gpu, "load_checkpoint", lambda *args: loaded.append(args) or real(*args))
    load_model(segmenter_checkpoint, device="cuda")  # its session and its metadata from one load
    load_model("concrete-v1", device="cuda")  # a shipped model's graph carries the metadata: the session's load only
    assert len(loaded) == 2


def test_device_cuda_without_a_checkpoint_is_a_one_line_error(cuda_on_the_cpu, tmp_path):
    graph = tmp_path / "alone.onnx"
    graph.write_bytes(shipped_model("concrete-v1").graph.read_bytes())
    with pytest.raises(CrackLightningError, match="none lies beside it"):
        load_model(graph, device="cuda")
    assert load_model(graph, device="auto").device == "cpu"  # auto: the CPU runtimes run the graph instead


def test_scan_command_on_the_gpu_path_writes_what_the_cpu_path_writes(cuda_on_the_cpu, tmp_path):
    import csv

    from PIL import Image

    from crack_lightning.cli import main

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    rows = {}
    for device in ("cpu", "cuda"):
        main(
            [
                "scan",
                "--ckpt_path",
                "concrete-v1",
                "--input",
                str(folder),
                "--output",
                str(tmp_path / device),
                "--progress",
                "false",
                "--report",
                "false",
                "--device",
                device,
                "--precision",
                "32",
                "--backend",
                "onnxruntime",
            ]
        )
        with open(tmp_path / device / "tiles.csv") as f:
            rows[device] = list(csv.DictReader(f))
    assert len(rows["cpu"]) == len(rows["cuda"]) > 0
    for a, b in zip(rows["cpu"], rows["cuda"]):
        assert a["photo"] == b["photo"] and abs(float(a["crack_probability"]) - float(b["crack_probability"])) < 1e-3
