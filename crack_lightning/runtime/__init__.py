"""Running exported networks without torch: the ONNX Runtime / OpenVINO sessions (:mod:`.backends`), an exported
graph and its metadata (:mod:`.exported`, :mod:`.onnx_file`), the torch-free predictors :class:`.classifier.Classifier`
and :class:`.segmenter.Segmenter`, labels from probabilities (:mod:`.labels`), windowed inference (:mod:`.windows`),
and which model files exist (:mod:`.models`: the shipped models, the graph cache). The lowest of the scan's layers: it
imports nothing of ``results``, ``scanning`` or ``report`` (:mod:`crack_lightning.scanning.models` adds ``scan``).
:func:`crack_lightning.load_model` loads one."""
