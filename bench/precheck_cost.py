"""Cost of the header pre-check that runs before training: every image's header read once.

    python bench/precheck_cost.py ../shared/data/concrete-crack

Prints the number of images, the seconds taken (file cache cold on the first pass, warm on the second) and
the time per image.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="a class-folder data root, as fit's --data.root")
    root = parser.parse_args().root
    # fit's own listing and header check (torchvision is imported with them): what this script times
    from crack_lightning.data.splits import check_images, scan_folder

    _, samples = scan_folder(root, root)
    for attempt in ("first pass", "second pass"):
        started = time.perf_counter()
        bad = check_images(root, samples)
        seconds = time.perf_counter() - started
        print(
            f"{attempt}: {len(samples)} images, {len(bad)} unreadable, {seconds:.2f} s ({seconds / len(samples) * 1e3:.2f} ms per image)"
        )


if __name__ == "__main__":
    main()
