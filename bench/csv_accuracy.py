"""Accuracy of a predictions CSV whose image paths sit in class folders: `.../<true class>/<image>`.

    python bench/csv_accuracy.py predictions.csv

Rows with an error are counted apart. Used to check a checkpoint on folders of images it has never seen.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path


def main(path: str) -> None:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    errors = [r for r in rows if r["error"]]
    scored = [r for r in rows if not r["error"]]
    correct = sum(Path(r["path"]).parent.name == r["label"] for r in scored)
    confusion = Counter((Path(r["path"]).parent.name, r["label"]) for r in scored)
    print(f"{len(rows)} rows, {len(errors)} unreadable, accuracy {correct}/{len(scored)} = {correct / len(scored):.4f}")
    for (true, predicted), count in sorted(confusion.items()):
        print(f"  true {true:<10} predicted {predicted:<10} {count}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", help="a CSV written by predict (columns path, label, error)")
    main(parser.parse_args().csv)
