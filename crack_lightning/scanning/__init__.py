"""Whole photos through a model: tile maps (classifier), crack masks (segmenter), the output folder (torch-free)."""
