"""Crack measurement from a mask: length along the skeleton, width across it (torch-free)."""
