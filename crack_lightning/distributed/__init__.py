"""Processes for a scan across GPUs, CPU processes or nodes, launched by Lightning."""
