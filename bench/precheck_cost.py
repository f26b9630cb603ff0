"""Cost of the header pre-check that runs before training: every image's header read once.

    python bench/precheck_cost.py ../shared/data/concrete-crack

Prints the number of images, the seconds taken (file cache cold on the first pass, warm on the second) and
the time per image.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from crack_lightning.data.splits import check_images, scan_folder


def main() -> None:
    root = Path(sys.argv[1])
    _, samples = scan_folder(root, root)
    for attempt in ("first pass", "second pass"):
        started = time.perf_counter()
        bad = check_images(root, samples)
        seconds = time.perf_counter() - started
        print(f"{attempt}: {len(samples)} images, {len(bad)} unreadable, {seconds:.2f} s ({seconds / len(samples) * 1e3:.2f} ms per image)")


if __name__ == "__main__":
    main()
