"""Segmenters' speed on this CPU, in one run: megapixels a second of the network alone (each backend and precision)
and of the whole scan (measuring and pictures included), multiply-adds per megapixel, and the share of the CPU's
nominal float32 peak the network reaches.

    python bench/segment_speed.py concrete-seg-v1 concrete-seg-v2 [--megapixels 6] [--rounds 3] [--json out.json]

The photo is the shipped sample's patches tiled into one ``--megapixels`` photo (real concrete texture, a few
cracks). Models run alternately, ``--rounds`` times; each figure is the best round, so that a busy moment of the
machine does not count against one model only. The peak is cores x GHz x float32 FLOPs a cycle of the widest
vector unit the CPU reports (AVX-512: 64, AVX2 with FMA: 32), a nominal figure: clocks vary under load.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scan_scale import cpu_name  # bench/: the scripts import each other

import crack_lightning
from crack_lightning.errors import CrackLightningError

SAMPLE = Path(crack_lightning.__file__).parent / "assets" / "sample"


def nominal_peak_gflops() -> tuple[float, str]:
    """Nominal float32 GFLOP/s of the cores this process may use, and how it was worked out."""
    text = Path("/proc/cpuinfo").read_text()
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    mhz = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 16
    cores = len(os.sched_getaffinity(0))
    ghz = (max(mhz) if mhz else 2000.0) / 1000
    return cores * ghz * per_cycle, f"{cores} cores x {ghz:.2f} GHz x {per_cycle} float32 FLOPs a cycle"


def tiled_photo(megapixels: float) -> np.ndarray:
    """A photo of about ``megapixels`` MP tiled from the shipped sample patches (crack and sound), 4:3."""
    patches = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(SAMPLE.glob("*/*.jpg"))]
    side = patches[0].shape[0]
    cols = max(1, round(math.sqrt(megapixels * 1e6 * 4 / 3) / side))
    rows = max(1, round(cols * 3 / 4))
    grid = [[patches[(r * cols + c) % len(patches)][:side, :side] for c in range(cols)] for r in range(rows)]
    return np.concatenate([np.concatenate(row, axis=1) for row in grid], axis=0)


@functools.cache  # once per model, not per backend
def multiply_adds_per_mp(name: str, window: int, overlap: int, height: int, width: int) -> float | None:
    """Multiply-adds per megapixel of a ``height`` x ``width`` photo: those of the windows the scan runs over it
    (:func:`crack_lightning.runtime.windows.window_tiling`), overlaps included."""
    if str(name).endswith(".onnx"):  # a graph alone: no network to count
        return None
    try:
        from crack_lightning.models.crack_unet import multiply_adds
        from crack_lightning.models.loading import load_checkpoint
    except ImportError:  # no torch
        return None
    from crack_lightning.runtime.windows import window_tiling

    net = load_checkpoint(name).net
    (rows, side_y), (columns, side_x) = window_tiling(height, window, overlap), window_tiling(width, window, overlap)
    return multiply_adds(net, side_y, side_x) * len(rows) * len(columns) * 1e6 / (height * width)


def best_time(run, rounds: int) -> float:
    return min(_timed(run) for _ in range(rounds))


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="shipped names, .ckpt or .onnx files")
    parser.add_argument("--megapixels", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["onnxruntime", "openvino"])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    photo = tiled_photo(args.megapixels)
    mp = photo.shape[0] * photo.shape[1] / 1e6
    peak, peak_how = nominal_peak_gflops()
    loaded = {}
    for name in args.models:
        for backend in args.backends:
            try:
                model = crack_lightning.load_model(name, backend=backend, precision="32")
            except CrackLightningError as err:
                print(f"{name} {backend}: not run ({err})")
                continue
            model.probability_map(photo[:512, :512])  # compiles the graph
            loaded[(name, backend)] = model
    network = {key: math.inf for key in loaded}
    scans = {name: math.inf for name in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        photo_path = Path(tmp) / "photo.jpg"  # as cameras write them (a PNG's decoding alone took 0.25 s of a scan)
        Image.fromarray(photo).save(photo_path, quality=95)
        for r in range(args.rounds):
            for key, model in loaded.items():
                network[key] = min(network[key], _timed(lambda m=model: m.probability_map(photo)))
            for name in args.models:
                out = Path(tmp) / f"scan-{r}-{Path(name).stem}"
                scans[name] = min(
                    scans[name], _timed(lambda o=out, n=name: crack_lightning.scan(photo_path, o, model=n))
                )
    rows = []
    for (name, backend), seconds in network.items():
        model = loaded[(name, backend)]
        macs = multiply_adds_per_mp(name, *model.windows(), *photo.shape[:2])
        gflops = 2 * macs / 1e9 if macs else None
        rows.append(
            {
                "model": name,
                "backend": model.backend,
                "precision": model.precision,
                "mp_per_s": mp / seconds,
                "gflops_per_mp": gflops,
                "share_of_peak": gflops * mp / seconds / peak if gflops else None,
                "scan_mp_per_s": mp / scans[name],
                "window": model.windows()[0],
            }
        )
    first = rows[0]
    print(
        f"CPU: {cpu_name()}; nominal float32 peak {peak:.0f} GFLOP/s ({peak_how}); photo {mp:.1f} MP; "
        f"best of {args.rounds} alternated rounds"
    )
    print(
        "| model | backend | precision | window | network MP/s | x first | GFLOPs/MP | share of peak | scan MP/s | x first |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        gf = f"{row['gflops_per_mp']:.1f}" if row["gflops_per_mp"] else "-"
        share = f"{row['share_of_peak']:.0%}" if row["share_of_peak"] else "-"
        print(
            f"| {row['model']} | {row['backend']} | {row['precision']} | {row['window']} | {row['mp_per_s']:.2f} | "
            f"{row['mp_per_s'] / first['mp_per_s']:.2f} | {gf} | {share} | {row['scan_mp_per_s']:.2f} | "
            f"{row['scan_mp_per_s'] / first['scan_mp_per_s']:.2f} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cpu": cpu_name(),
                    "peak_gflops": peak,
                    "peak": peak_how,
                    "megapixels": mp,
                    "rounds": args.rounds,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
