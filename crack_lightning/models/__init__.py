"""The LightningModules (classifier, segmenter), their backbone and checkpoints (torch)."""
