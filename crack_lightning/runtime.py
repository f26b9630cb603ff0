"""Inference runtimes for predict and scan: the BatchNorm-folded PyTorch network, or the same graph in ONNX Runtime.

ONNX Runtime runs MobileNetV2 about twice as fast as PyTorch on a CPU (``bench/throughput.py`` measures it),
with the same probabilities within 1e-5, so ``auto`` takes it for float32 inference on the CPU.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

from crack_lightning.errors import CrackLightningError

BACKENDS = ("auto", "torch", "onnxruntime")
TTA = ("none", "hflip")
Network = Callable[[torch.Tensor], torch.Tensor]


def choose_backend(backend: str, device: torch.device, precision: str = "32") -> tuple[str, str]:
    """``(backend, why)``: the runtime that classifies, and the reason, for a log line."""
    if backend not in BACKENDS:
        raise CrackLightningError(f"inference backend {backend!r}: pass one of {', '.join(BACKENDS)}")
    installed = importlib.util.find_spec("onnxruntime") is not None
    if backend == "onnxruntime":
        if device.type != "cpu" or precision != "32":
            raise CrackLightningError(
                f"inference backend onnxruntime runs float32 on the CPU (asked: {device.type}, precision {precision}); "
                "choose torch or auto"
            )
        if not installed:
            raise CrackLightningError("inference backend onnxruntime: ONNX Runtime is not installed; pip install onnxruntime, or choose torch")
        return backend, "asked for"
    if backend == "torch":
        return backend, "asked for"
    if device.type != "cpu":
        return "torch", f"the model is on {device.type}"
    if precision != "32":
        return "torch", f"precision {precision} runs in PyTorch"
    if not installed:
        return "torch", "ONNX Runtime is not installed (pip install onnxruntime: about 2x faster on CPU)"
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


class Probabilities(nn.Module):
    """A classifier's logits as class probabilities, float32 (averaged with the mirror image's for ``hflip``)."""

    def __init__(self, classifier: nn.Module, tta: str = "none") -> None:
        super().__init__()
        self.classifier = classifier
        self.tta = tta

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return probabilities_of(self.classifier, images, self.tta)


class OnnxRuntimeNetwork:
    """A network exported to ONNX in memory and run by ONNX Runtime on the CPU: tensor in, tensor out."""

    def __init__(self, network: nn.Module, image_size: int, threads: int | None = None) -> None:
        import onnxruntime

        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter: 0.4 s here against 13 s for the dynamo one, which start-up cannot afford.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network.cpu().eval(), (torch.zeros(2, 3, image_size, image_size),), buffer, input_names=["images"],
                output_names=["outputs"], dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "outputs": {0: "batch"}},
                dynamo=False,
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # Spinning threads would take the cores the DataLoader workers decode on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().float().cpu().contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"images": array})[0])


def inference_network(
    classifier: nn.Module, image_size: int, backend: str, device: torch.device, precision: str = "32", tta: str = "none"
) -> tuple[Network, str]:
    """``(images -> probabilities, description)`` for an eval-mode classifier of normalised images."""
    chosen, why = choose_backend(backend, device, precision)
    probabilities = Probabilities(classifier, tta).eval()
    mirrored = ", averaged with the mirror image" if tta == "hflip" else ""
    if chosen == "onnxruntime":
        return OnnxRuntimeNetwork(probabilities, image_size), f"ONNX Runtime ({why}){mirrored}"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast:
            return probabilities(images.to(device))

    return run, f"PyTorch ({why}){mirrored}"
