"""How good a segmenter is on photos with true masks, measured through the product: each photo scanned as ``scan``
scans it, its mask and measurements scored against the true ones (:func:`crack_lightning.evaluate`). Torch-free."""
