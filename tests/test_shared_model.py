"""One loaded model shared by several threads (a web server's workers, say) answers each as it answers one thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from crack_lightning import load_model
from crack_lightning.data.classification import sample_root
from crack_lightning.runtime.backends import cpu_has_bf16, installed

THREADS = 8
# OpenVINO in bf16 where the CPU has it: the default on such CPUs (precision auto), and float32 elsewhere.
BACKENDS = [
    pytest.param(backend, marks=pytest.mark.skipif(not installed(backend), reason=f"{backend} is not installed"))
    for backend in ("onnxruntime", "openvino")
]


def precision(backend: str) -> str:
    return "bf16" if backend == "openvino" and cpu_has_bf16() else "32"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """Four real patches side by side (454 x 454 px): two with cracks, two without."""
    paths = [sorted((sample_root() / name).glob("*.jpg"))[i] for name in ("Positive", "Negative") for i in (0, 1)]
    patches = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    return np.vstack([np.hstack(patches[:2]), np.hstack(patches[2:])])


def in_threads(job, count: int = THREADS) -> list:
    """``job()`` in ``count`` threads started together (a barrier: they reach the model at once)."""
    start = threading.Barrier(count)

    def run(_):
        start.wait()
        return job()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_classifier_shared_by_threads_answers_as_one_thread(backend, photo):
    model = load_model("concrete-v1", backend=backend, precision=precision(backend), threads=1)
    patches = sorted((sample_root() / "Positive").glob("*.jpg"))[:4]
    # The threads come first, on a model that has not run yet: its session is opened by the first of them.
    scans = in_threads(lambda: model.scan(photo, tile=152, batch_size=3).crack_probability)
    predicted = in_threads(lambda: model.predict(patches, batch_size=2).crack_probability)
    alone_scan = model.scan(photo, tile=152, batch_size=3).crack_probability
    alone_predict = model.predict(patches, batch_size=2).crack_probability
    assert len(alone_scan) == 9 and alone_scan.max() > 0.5 > alone_scan.min()  # cracked and sound tiles
    for scanned, labelled in zip(scans, predicted):
        np.testing.assert_array_equal(scanned, alone_scan)
        np.testing.assert_array_equal(labelled, alone_predict)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_segmenter_shared_by_threads_answers_as_one_thread(backend, photo):
    model = load_model("concrete-seg-v1", backend=backend, precision=precision(backend), threads=1)
    scans = in_threads(lambda: model.scan(photo, window=128, overlap=16))
    alone = model.scan(photo, window=128, overlap=16)
    assert alone.cracks  # the cracked patches' cracks are found
    for scan in scans:
        np.testing.assert_array_equal(scan.probability, alone.probability)
        assert scan.summary == alone.summary
