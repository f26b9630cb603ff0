"""Crack measurement from a mask and its probability map: length along the skeleton, width across it (torch-free)."""
