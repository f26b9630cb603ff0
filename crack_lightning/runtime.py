"""Inference runtimes for predict and scan: the BatchNorm-folded PyTorch network, or the same graph in ONNX Runtime
or OpenVINO.

ONNX Runtime runs MobileNetV2 about twice as fast as PyTorch on a CPU (``bench/throughput.py`` measures it),
with the same probabilities within 1e-5, so ``auto`` takes it for float32 inference on the CPU. Under bf16, on CPUs
with AMX or avx512_bf16, OpenVINO's bf16 kernels are faster still, so ``auto`` takes OpenVINO there.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from crack_lightning import precision as hardware
from crack_lightning.errors import CrackLightningError

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
TTA = ("none", "hflip")
Network = Callable[[torch.Tensor], torch.Tensor]
RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "torch": "PyTorch"}


def choose_backend(backend: str, device: torch.device, precision: str = "32") -> tuple[str, str]:
    """``(backend, why)``: the runtime that classifies, and the reason, for a log line.

    On the CPU, ``auto`` takes OpenVINO for ``bf16`` where the CPU computes bf16 natively (MobileNetV2 at 160 px,
    batch 32, on a 2-core AMX Xeon: 1258 img/s, against 577 for ONNX Runtime's float32 and 394 for PyTorch's bf16)
    and ONNX Runtime for float32 (637 against 482 for PyTorch's bf16 autocast). ``onnxruntime`` always computes
    float32, ``torch`` runs ``precision``, ``openvino`` runs it where the CPU computes it natively.
    """
    if backend not in BACKENDS:
        raise CrackLightningError(f"inference backend {backend!r}: pass one of {', '.join(BACKENDS)}")
    installed = {name: importlib.util.find_spec(name) is not None for name in ("onnxruntime", "openvino")}
    if backend in installed:
        if device.type != "cpu":
            raise CrackLightningError(
                f"inference backend {backend} runs on the CPU (the model is on {device.type}); choose torch or auto"
            )
        if not installed[backend]:
            raise CrackLightningError(f"inference backend {backend}: it is not installed; pip install {backend}, or choose torch")
        bf16 = backend == "openvino" and precision == "bf16" and hardware.cpu_has_bf16()
        return backend, "asked for; " + ("bf16" if bf16 else "float32")
    if backend == "torch":
        return backend, "asked for"
    if device.type != "cpu":
        return "torch", f"the model is on {device.type}"
    if precision == "bf16" and installed["openvino"] and hardware.cpu_has_bf16():
        return "openvino", "bf16 on the CPU: about 2x faster than ONNX Runtime's float32 where the CPU has bf16 units"
    if not installed["onnxruntime"]:
        return "torch", "ONNX Runtime is not installed (pip install onnxruntime: about 2x faster on CPU)"
    if precision != "32":
        return "onnxruntime", f"float32 on the CPU: faster than PyTorch's {precision} and exact"
    return "onnxruntime", "float32 on the CPU: about 2x faster than PyTorch"


def probabilities_of(classifier: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Class probabilities (float32) of a classifier of logits; ``tta="hflip"`` averages them over the images and
    their mirror images, in one batch of twice the size."""
    if tta == "none":
        return classifier(images).float().softmax(dim=1)
    if tta != "hflip":
        raise CrackLightningError(f"test-time augmentation {tta!r}: pass one of {', '.join(TTA)}")
    both = classifier(torch.cat([images, images.flip(3)])).float().softmax(dim=1)
    return both.unflatten(0, (2, -1)).mean(dim=0)  # no batch size in the graph: ONNX export keeps it dynamic


Normalisation = tuple[Sequence[float], Sequence[float]]  # (mean, std) of images scaled to [0, 1]


class Probabilities(nn.Module):
    """A classifier's logits as class probabilities, float32 (averaged with the mirror image's for ``hflip``).

    With ``normalisation`` (mean, std) it takes ``uint8`` images and normalises them itself, on the whole batch:
    2.5x cheaper than per image in the loader, and inside the ONNX graph nearly free.
    """

    def __init__(self, classifier: nn.Module, tta: str = "none", normalisation: Normalisation | None = None) -> None:
        super().__init__()
        self.classifier = classifier
        self.tta = tta
        self.takes_uint8 = normalisation is not None
        if normalisation is not None:
            mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in normalisation)
            # (x / 255 - mean) / std in one multiply-add
            self.register_buffer("scale", 1.0 / (255.0 * std), persistent=False)
            self.register_buffer("shift", mean / std, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.takes_uint8:
            images = images.float() * self.scale - self.shift
        return probabilities_of(self.classifier, images, self.tta)


def onnx_graph(network: nn.Module, image_size: int, dtype: torch.dtype = torch.float32, fixed_size: bool = False) -> bytes:
    """``network`` exported to ONNX in memory, float32, with a dynamic batch (and dynamic sides unless ``fixed_size``)."""
    axes = {"images": {0: "batch"}, "outputs": {0: "batch"}}
    if not fixed_size:  # a fixed image size lets the runtime plan every layer: 6-9% faster
        axes["images"].update({2: "height", 3: "width"})
    buffer = io.BytesIO()
    # no autocast: built inside a bf16-mixed training step, the graph must still be float32
    with warnings.catch_warnings(), torch.no_grad(), torch.autocast("cpu", enabled=False):
        # The TorchScript exporter: 0.4 s here against 13 s for the dynamo one, which start-up cannot afford.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network.cpu().eval(), (torch.zeros(2, 3, image_size, image_size, dtype=dtype),), buffer, input_names=["images"],
            output_names=["outputs"], dynamic_axes=axes, dynamo=False,
        )
    return buffer.getvalue()


class ExportedNetwork:
    """A network exported to ONNX in memory, for a CPU runtime to run: tensor in, float32 tensor out."""

    def __init__(self, network: nn.Module, image_size: int, dtype: torch.dtype = torch.float32, fixed_size: bool = False) -> None:
        self.dtype = dtype
        self.graph = onnx_graph(network, image_size, dtype, fixed_size)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.run(images.detach().to(self.dtype).cpu().contiguous().numpy()))

    def run(self, array: Any) -> Any:
        raise NotImplementedError


class OnnxRuntimeNetwork(ExportedNetwork):
    """The exported network run by ONNX Runtime, in float32."""

    def __init__(
        self,
        network: nn.Module,
        image_size: int,
        threads: int | None = None,
        dtype: torch.dtype = torch.float32,
        fixed_size: bool = False,
    ) -> None:
        import onnxruntime

        super().__init__(network, image_size, dtype, fixed_size)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # Spinning threads would take the cores the DataLoader workers decode on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(self.graph, options, providers=["CPUExecutionProvider"])

    def run(self, array: Any) -> Any:
        return self.session.run(None, {"images": array})[0]


class OpenVinoNetwork(ExportedNetwork):
    """The exported network run by OpenVINO at ``precision`` (``32`` or ``bf16``). bf16 only where the CPU computes
    it natively (AMX / AVX512-BF16), float32 elsewhere: OpenVINO would emulate it, slowly, on other AVX-512 CPUs."""

    def __init__(
        self, network: nn.Module, image_size: int, precision: str = "32", threads: int | None = None,
        dtype: torch.dtype = torch.float32, fixed_size: bool = False,
    ) -> None:
        import openvino

        super().__init__(network, image_size, dtype, fixed_size)
        core = openvino.Core()
        # Said in every case: OpenVINO's own default on an AMX CPU is bf16, also when float32 is asked for.
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" and hardware.cpu_has_bf16() else "f32",
            "PERFORMANCE_HINT": "LATENCY",  # one batch at a time on every thread: the caller waits for each
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        }
        self.request = core.compile_model(core.read_model(self.graph), "CPU", config).create_infer_request()

    def run(self, array: Any) -> Any:
        # share_outputs=False (the default): a copy, not the request's buffer that the next batch overwrites
        return self.request.infer({0: array})[0]


def cpu_runtime(
    backend: str, network: nn.Module, image_size: int, precision: str = "32", dtype: torch.dtype = torch.float32,
    fixed_size: bool = False,
) -> Network:
    """``network`` run by ``backend`` (``onnxruntime`` or ``openvino``) on the CPU."""
    if backend == "openvino":
        return OpenVinoNetwork(network, image_size, precision, dtype=dtype, fixed_size=fixed_size)
    return OnnxRuntimeNetwork(network, image_size, dtype=dtype, fixed_size=fixed_size)


def inference_network(
    classifier: nn.Module,
    image_size: int,
    backend: str,
    device: torch.device,
    precision: str = "32",
    tta: str = "none",
    normalisation: Normalisation | None = None,
) -> tuple[Network, str]:
    """``(images -> probabilities, description)`` for an eval-mode classifier of normalised images, or of ``uint8``
    images ``(N, 3, image_size, image_size)`` that it normalises itself with ``normalisation`` (mean, std)."""
    chosen, why = choose_backend(backend, device, precision)
    probabilities = Probabilities(classifier, tta, normalisation).eval()
    mirrored = ", averaged with the mirror image" if tta == "hflip" else ""
    if chosen in ("onnxruntime", "openvino"):
        # uint8 images come resized to the model's size: a fixed size, the fastest graph
        uint8 = normalisation is not None
        network = cpu_runtime(chosen, probabilities, image_size, precision, torch.uint8 if uint8 else torch.float32, uint8)
        return network, f"{RUNTIME_NAMES[chosen]} ({why}){mirrored}"
    probabilities.to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast:
            return probabilities(images.to(device))

    return run, f"{RUNTIME_NAMES[chosen]} ({why}){mirrored}"
