"""Running trained networks fast: the one ONNX exporter, the ONNX Runtime / OpenVINO sessions, test-time
augmentation, and the shipped model. Only :mod:`crack_lightning.export.onnx` imports torch."""

from crack_lightning.runtime.classifier import Classifier, Predictions, decide_labels
from crack_lightning.runtime.models import DEFAULT_MODEL, load_model, shipped_models
from crack_lightning.runtime.segmenter import Segmenter

__all__ = ["Classifier", "DEFAULT_MODEL", "Predictions", "Segmenter", "decide_labels", "load_model", "shipped_models"]
