"""Synthetic cracks with exact masks, drawn onto photos of sound concrete, and look-alikes drawn without masks.

A crack segmenter needs pixel masks, and no concrete crack masks that may be shipped exist: this package makes
them. Every sample is a pure function of ``(seed, index)`` and the background files, so a data set is rebuilt
bit for bit from its command line (``python -m crack_lightning.synth --help``). NumPy, SciPy and PIL only.
"""

from crack_lightning.synth.sample import SYNTH_VERSION, SampleSpec, synthesise

__all__ = ["SYNTH_VERSION", "SampleSpec", "synthesise"]
