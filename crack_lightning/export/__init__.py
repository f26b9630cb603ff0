"""The one ONNX exporter (torch)."""
