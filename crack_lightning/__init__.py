"""crack-lightning: MobileNetV2 transfer learning that tells cracked concrete from sound concrete."""

from crack_lightning.data import CrackDataModule
from crack_lightning.model import CrackClassifier

__all__ = ["CrackClassifier", "CrackDataModule"]
__version__ = "0.1.0"
