"""Running exported networks without torch: the ONNX Runtime / OpenVINO sessions (:mod:`.backends`), an exported
graph and its metadata (:mod:`.exported`, :mod:`.onnx_file`), the torch-free :class:`.classifier.Classifier` and
:class:`.segmenter.Segmenter`, windowed inference (:mod:`.windows`), and which model files exist (:mod:`.models`:
the shipped models, the graph cache). :func:`crack_lightning.load_model` loads one."""
