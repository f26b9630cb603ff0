"""How a loaded model runs: one options object holding the defaults and the checks of :func:`crack_lightning.load_model`
(and of the models it gives); its errors name the field, a command names its flag instead."""

from __future__ import annotations

from dataclasses import dataclass

from crack_lightning.errors import OptionError
from crack_lightning.options import Options, at_least
from crack_lightning.runtime.backends import BACKENDS, PRECISIONS
from crack_lightning.runtime.cuda import DEVICES
from crack_lightning.runtime.exported import TTA


def one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(name, f"{value!r}; pass one of {', '.join(choices)}")


@dataclass(frozen=True)
class RunOptions(Options):
    """``backend``: ``auto``, ``onnxruntime`` or ``openvino``; ``precision``: ``32``, ``bf16`` or ``auto`` (``bf16``
    where the CPU computes it natively); ``tta``: ``none``, ``hflip`` or ``flips``; ``threads`` of the runtime
    (``None``: one per core); ``device``: ``cpu`` (no torch), ``cuda`` or ``auto`` (see
    :class:`~crack_lightning.runtime.exported.ExportedModel` and :func:`crack_lightning.load_model`)."""

    backend: str = "auto"
    precision: str = "32"
    tta: str = "none"
    threads: int | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        one_of("backend", self.backend, BACKENDS)
        one_of("precision", self.precision, PRECISIONS)
        one_of("tta", self.tta, TTA)
        one_of("device", self.device, DEVICES)
        at_least("threads", self.threads, none=True)
