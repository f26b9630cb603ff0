"""The CPU runtimes that run an exported network: ONNX Runtime (float32) and OpenVINO (bf16 where the CPU has it).

No torch here: a session takes and returns NumPy arrays. ONNX Runtime runs MobileNetV2 about twice as fast as PyTorch
on a CPU; OpenVINO's bf16 kernels about twice as fast again on CPUs that compute bf16 natively (docs/performance.md).
"""

from __future__ import annotations

import importlib.util
import os
import queue
from collections.abc import Callable

import numpy as np

from crack_lightning.errors import CrackLightningError, OptionError

BACKENDS = ("auto", "onnxruntime", "openvino")
PRECISIONS = ("auto", "32", "bf16")
RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "cuda": "PyTorch on CUDA"}
Session = Callable[[np.ndarray], np.ndarray]


def cpu_has_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where bf16 matrix multiplies run natively (Linux: the kernel's flags)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity, which containers and taskset narrow), the one count used for
    runtime threads and loader workers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_precision(precision: str) -> str:
    """``32`` or ``bf16``: ``auto`` is ``bf16`` where OpenVINO is installed and the CPU computes bf16 natively, as
    training's ``precision: null`` picks bf16-mixed; an error for anything else."""
    if precision not in PRECISIONS:
        raise OptionError("precision", f"{precision!r}; pass one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if installed("openvino") and cpu_has_bf16() else "32"
    return precision


def choose_backend(backend: str = "auto", precision: str = "32") -> tuple[str, str]:
    """``(backend, why)``: the runtime that runs the network, and the reason, for a log line.

    ``auto`` takes OpenVINO for ``bf16`` where the CPU computes bf16 natively, ONNX Runtime otherwise. OpenVINO would
    emulate bf16 on other CPUs, slowly, so there it computes float32. Precision ``auto`` is ``bf16`` where OpenVINO
    is installed and the CPU computes bf16 natively (AMX, AVX512-BF16), else ``32``.
    """
    if backend not in BACKENDS:
        raise OptionError("backend", f"{backend!r}; pass one of {', '.join(BACKENDS)}")
    precision = resolve_precision(precision)
    if backend != "auto":
        if not installed(backend):
            raise OptionError("backend", f"{backend!r}: it is not installed; pip install {backend}, or pass auto")
        bf16 = backend == "openvino" and precision == "bf16" and cpu_has_bf16()
        return backend, "asked for; " + ("bf16" if bf16 else "float32")
    if precision == "bf16" and installed("openvino") and cpu_has_bf16():
        return "openvino", "bf16 on a CPU with bf16 units"
    if not installed("onnxruntime"):
        raise CrackLightningError("ONNX Runtime is not installed: pip install onnxruntime")
    if precision == "32":
        return "onnxruntime", "float32"
    why = "OpenVINO is not installed" if cpu_has_bf16() else "this CPU has no native bf16"
    return "onnxruntime", f"float32: {why}"


def open_session(
    graph: bytes | str | os.PathLike, backend: str, precision: str = "32", threads: int | None = None
) -> Session:
    """A function ``array -> array`` running the ONNX ``graph`` (bytes or a file) with ``backend`` on the CPU; safe to
    call from several threads at once (ONNX Runtime's ``run`` is; OpenVINO's calls take a request each)."""
    threads, precision = threads or cpu_count(), resolve_precision(precision)
    if backend == "openvino":
        import openvino

        core = openvino.Core()
        model = core.read_model(graph if isinstance(graph, bytes) else os.fspath(graph))
        config = {
            # Said in every case: OpenVINO's own default on an AMX CPU is bf16, also when float32 is asked for.
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" and cpu_has_bf16() else "f32",
            "PERFORMANCE_HINT": "LATENCY",  # one batch at a time on every thread: the caller waits for each
            "INFERENCE_NUM_THREADS": threads,
        }
        compiled = core.compile_model(model, "CPU", config)
        # An infer request runs one batch at a time and raises "Infer Request is busy" (or mixes up answers) when
        # two threads share it: each call takes an idle request, or makes one (a compiled model is thread-safe), so
        # the pool grows to the number of threads running the model at once.
        idle: queue.SimpleQueue = queue.SimpleQueue()

        def infer(array: np.ndarray) -> np.ndarray:
            try:
                request = idle.get_nowait()
            except queue.Empty:
                request = compiled.create_infer_request()
            try:
                # a copy (share_outputs=False, the default), not the request's buffer that the next batch overwrites
                return request.infer({0: array})[0]
            finally:
                idle.put(request)

        return infer
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # Spinning threads would take the cores that decode images in parallel.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    graph = graph if isinstance(graph, bytes) else os.fspath(graph)
    session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(array: np.ndarray) -> np.ndarray:
        return session.run(None, {name: array})[0]

    # The arena keeps what a photo's largest window needed (hundreds of MB for a segmenter's 1024 px): handed back
    # after the photo, so that measuring it has that room, by a run that shrinks the arena when it ends (a run with
    # the arena off instead would fault in its pages anew: windows 1.3-1.7x slower).
    shrink = onnxruntime.RunOptions()
    shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    smallest = np.zeros((1, 3, 32, 32), dtype=np.uint8)  # a segmenter graph's smallest whole input (its stride)
    run.release = lambda: session.run(None, {name: smallest}, shrink)  # type: ignore[attr-defined]
    return run
