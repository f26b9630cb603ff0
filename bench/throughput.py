"""Throughput of fit (frozen and fine-tune phases), predict and the data loader, next to a hand-written PyTorch
loop doing the same work at the same precision, and next to the Keras original when its Python is given.

    python bench/throughput.py DATA_ROOT [--keras_python ../keras-ref/bin/python]

- fit: the product's own path (``python -m crack_lightning fit`` with configs/default.yaml, the CLI's callbacks,
  logger and checkpoints) for one frozen and one fine-tune epoch; img/s of the training part of each epoch.
- hand-written: a plain PyTorch loop over the same training images with the same transforms, DataLoader
  workers, batch size, optimiser and frozen blocks (channels-last, BatchNorm in eval mode, no folding).
- predict: ``python -m crack_lightning predict`` on ``--predict_images`` images, timed from process start to
  CSV written; the hand-written one is a plain script (decode, resize, normalise, eval model, CSV), timed alike.
- loader: the DataModule's training loader alone (decode + augmentation, with its per-batch half), default workers.
- start-up and memory (issue "Fast start"): the torch-free ``predict`` of one image from process start, and peak
  resident memory (RSS) of a 1-image predict and of a 1-photo scan; ``--startup_only CKPT`` runs these rows and
  the predict row alone (best of two runs each side), without fitting.
- Keras: ``../shared/bench/keras_original.py`` run by ``--keras_python``, in this sitting.
Every figure is measured in this run, on this machine; compare ratios, not img/s, across machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

# torch and torchvision are imported where they are used, so that --help answers at once.
REPO = Path(__file__).resolve().parents[1]

# The hand-written predict runs this file in a process of its own: it must not import Lightning or the product.
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def product_fit(root: str, weights: str, workdir: Path, extra: list[str]) -> dict:
    """One frozen and one fine-tune epoch through the CLI; returns img/s, the run's objects and its checkpoint."""
    from lightning.pytorch.callbacks import Callback

    from crack_lightning.cli.train import CrackLightningCLI
    from crack_lightning.cli.train import run as cli_main

    class PhaseTimer(Callback):
        """Seconds of the training part of each epoch (validation excluded)."""

        def __init__(self) -> None:
            self.train: dict[int, float] = {}
            self._val = 0.0

        def on_train_epoch_start(self, trainer, pl_module):
            self._start, self._val = time.perf_counter(), 0.0

        def on_validation_epoch_start(self, trainer, pl_module):
            self._val_start = time.perf_counter()

        def on_validation_epoch_end(self, trainer, pl_module):
            self._val += time.perf_counter() - self._val_start

        def on_train_epoch_end(self, trainer, pl_module):
            self.train[trainer.current_epoch] = time.perf_counter() - self._start - self._val

    timer = PhaseTimer()
    run: dict = {}

    class TimedCLI(CrackLightningCLI):
        def before_fit(self) -> None:
            super().before_fit()
            self.trainer.callbacks.append(timer)
            run["cli"] = self

    cli_main(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "default.yaml"),
            "--data.root",
            root,
            "--model.weights",
            weights,
            "--trainer.max_epochs",
            "2",
            "--finetuning.unfreeze_at_epoch",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            # The Keras original's input and fine-tuned blocks, whatever the defaults: the same work on both sides.
            "--data.image_size",
            "160",
            "--finetuning.unfreeze_from",
            "12",
            "--trainer.logger.init_args.save_dir",
            str(workdir / "runs"),
            *extra,
        ],
        cli_class=TimedCLI,
    )
    cli = run["cli"]
    data = cli.datamodule
    n = len(data.datasets["train"])
    return {
        "frozen": n / timer.train[0],
        "finetune": n / timer.train[1],
        "images": n,
        "datamodule": data,
        "precision": str(cli.trainer.precision),
        "workers": data.num_workers,
        "ckpt": Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt",
    }


class Images:  # a map-style dataset (torch's Dataset adds nothing a DataLoader needs)
    def __init__(self, samples: list[tuple[str, int]], transform) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from torchvision.io import ImageReadMode, decode_image

        path, label = self.samples[i]
        return self.transform(decode_image(path, mode=ImageReadMode.RGB)), label


def handwritten_fit(samples: list[tuple[str, int]], weights: str, workers: int, precision: str) -> dict[str, float]:
    """The same two epochs as a plain PyTorch loop: img/s of each."""
    import torch
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.utils.data import DataLoader
    from torchvision.models import mobilenet_v2
    from torchvision.transforms import v2

    torch.manual_seed(42)
    transform = v2.Compose(
        [
            v2.Resize((160, 160), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(72.0, interpolation=v2.InterpolationMode.BILINEAR, fill=[round(255 * m) for m in MEAN]),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    loader = DataLoader(
        Images(samples, transform), batch_size=32, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    backbone = mobilenet_v2().features
    state = torch.load(weights, map_location="cpu", weights_only=True)
    backbone.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    backbone = backbone.to(memory_format=torch.channels_last)
    head = nn.Sequential(nn.Dropout(0.3), nn.Linear(1280, 2))
    backbone.requires_grad_(False)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-4)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    rates = {}
    for phase in ("frozen", "finetune"):
        if phase == "finetune":
            backbone[12:].requires_grad_(True)
            optimizer.add_param_group({"params": list(backbone[12:].parameters()), "lr": 1e-5})
        head.train()
        backbone.train()
        for m in backbone.modules():
            if isinstance(m, _BatchNorm):
                m.eval()
        start = time.perf_counter()
        for images, labels in loader:
            images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                if phase == "frozen":
                    with torch.no_grad():
                        features = backbone(images)
                else:
                    features = backbone(images)
                loss = nn.functional.cross_entropy(head(features.mean(dim=(2, 3))), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rates[phase] = len(samples) / (time.perf_counter() - start)
    return rates


def handwritten_predict(ckpt: str, listing: str, output: str, precision: str) -> None:
    """A plain predict script: the checkpoint's weights in torchvision's model, eval mode, CSV rows."""
    import torch
    from torch import nn
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.models import mobilenet_v2
    from torchvision.transforms import v2

    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    backbone = mobilenet_v2().features
    backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    head = nn.Linear(1280, 2)
    head.load_state_dict({"weight": state["head.1.weight"], "bias": state["head.1.bias"]})
    backbone = backbone.eval().to(memory_format=torch.channels_last)
    transform = v2.Compose(
        [v2.Resize((160, 160), antialias=True), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
    )
    paths = Path(listing).read_text().split()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    with open(output, "w", newline="") as f, torch.inference_mode(), autocast:
        writer = csv.writer(f)
        for i in range(0, len(paths), 32):
            chunk = paths[i : i + 32]
            images = torch.stack([transform(decode_image(p, mode=ImageReadMode.RGB)) for p in chunk])
            logits = head(backbone(images.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3)))
            for path, p in zip(chunk, logits.float().softmax(dim=1)[:, 1].tolist()):
                writer.writerow([path, f"{p:.6f}"])


def timed_process(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory of ``command``, in MB, measured by a fresh parent process that runs only it."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True, cwd=REPO)
    return int(out.stdout.strip()) / 1024


def startup_rows(model: str, images: list[str], photo: str, work: Path) -> dict[str, float]:
    """Start-up (1-image predict, process start to CSV) and peak RSS of a 1-image predict and a 1-photo scan,
    torch-free path, best of two runs each; the graph cache is warmed first, as every run after the first finds it."""
    python = sys.executable
    predict = [
        python,
        "-m",
        "crack_lightning",
        "predict",
        "--ckpt_path",
        model,
        "--data.predict_dir",
        images[0],
        "--output",
        str(work / "one.csv"),
        "--overwrite",
        "true",
    ]
    scan = [
        python,
        "-m",
        "crack_lightning",
        "scan",
        "--ckpt_path",
        model,
        "--input",
        photo,
        "--output",
        str(work / "scan"),
        "--overwrite",
        "true",
        "--progress",
        "false",
    ]
    timed_process(predict)  # fills the exported-graph cache for a checkpoint
    return {
        "startup_s": min(timed_process(predict) for _ in range(2)),
        "predict_rss_mb": min(peak_rss_mb(predict) for _ in range(2)),
        "scan_rss_mb": min(peak_rss_mb(scan) for _ in range(2)),
    }


def predict_rate(model: str, listing: Path, n: int, work: Path, extra: list[str] = ()) -> float:
    """img/s of the torch-free ``predict`` from process start to CSV, best of two runs."""
    command = [
        sys.executable,
        "-m",
        "crack_lightning",
        "predict",
        "--ckpt_path",
        model,
        "--data.predict_dir",
        str(listing),
        "--output",
        str(work / "fast.csv"),
        "--overwrite",
        "true",
        *extra,
    ]
    return max(n / timed_process(command) for _ in range(2))


def float32_parts(model: str, images: list[str], n: int = 2000) -> dict[str, float]:
    """Where float32 predict time goes: decode + resize of one image in one thread, and the network alone in ONNX
    Runtime float32 on decoded batches of 32 (all threads)."""
    from crack_lightning import load_model

    classifier = load_model(model, backend="onnxruntime", precision="32")
    started = time.perf_counter()
    for path in images[:n]:
        classifier.prepare(path)
    decode = n / (time.perf_counter() - started)
    batch = np.stack([classifier.prepare(p) for p in images[:32]])
    classifier.probabilities(batch)
    started = time.perf_counter()
    for _ in range(n // 32):
        classifier.probabilities(batch)
    return {"decode_img_s": decode, "network_img_s": (n // 32) * 32 / (time.perf_counter() - started)}


def keras_runs(keras_python: str, root: str, steps: int, runs: int) -> dict[str, float]:
    """The Keras original's rates, best of ``runs`` runs (it swings run to run)."""
    best: dict[str, float] = {}
    for _ in range(runs):
        out = subprocess.run(
            [keras_python, str(REPO.parent / "shared" / "bench" / "keras_original.py"), root, "--steps", str(steps)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for key, value in json.loads(out.strip().splitlines()[-1]).items():
            best[key] = max(best.get(key, 0.0), value)
    return best


def startup_report(args, root: str) -> None:
    """``--startup_only CKPT``: the fast-start rows alone, against the Keras original's predict loop."""
    from scan_scale import cpu_name

    from crack_lightning.io.images import find_images

    images = [str(p) for p in find_images(root)]
    photo = args.photo or images[0]
    keras = keras_runs(args.keras_python, root, args.keras_steps, 2) if args.keras_python else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        listing = work / "predict.txt"
        n = min(args.predict_images, len(images))
        listing.write_text("\n".join(images[:n]) + "\n")
        rows = startup_rows(args.startup_only, images, photo, work)
        rate = predict_rate(args.startup_only, listing, n, work, ["--precision", "32"])
        rate_bf16 = predict_rate(args.startup_only, listing, n, work, ["--precision", "bf16"])
        parts = float32_parts(args.startup_only, images)
    k = keras.get("keras_predict_img_s")
    print(f"\n{cpu_name()}, {os.cpu_count()} cores; model {args.startup_only}; {n} images of {root}\n")
    print("| measure | crack_lightning | Keras original | ratio |")
    print("|---|---|---|---|")
    print(
        f"| predict img/s, --precision 32 (ONNX Runtime float32), process start to CSV (best of 2) | {rate:.1f} | {f'{k:.1f}' if k else 'not run'} | "
        f"{f'**{rate / k:.2f}x**' if k else '-'} |"
    )
    print(
        f"| predict img/s, --precision bf16 (OpenVINO where the CPU has bf16 units), process start to CSV (best of 2) | "
        f"{rate_bf16:.1f} | {f'{k:.1f}' if k else 'not run'} | {f'**{rate_bf16 / k:.2f}x**' if k else '-'} |"
    )
    print(f"| float32 parts: decode + resize, one thread (img/s) | {parts['decode_img_s']:.0f} | | |")
    print(
        f"| float32 parts: the network alone, ONNX Runtime, decoded batches of 32 (img/s) | {parts['network_img_s']:.0f} | | |"
    )
    print(f"| start-up: 1-image predict, process start to CSV (s) | {rows['startup_s']:.2f} | | |")
    print(f"| peak RSS, 1-image predict (MB) | {rows['predict_rss_mb']:.0f} | | |")
    print(f"| peak RSS, 1-photo scan of {Path(photo).name} (MB) | {rows['scan_rss_mb']:.0f} | | |")
    if keras:
        print("\nKeras predict is its model.predict over the tf.data pipeline (start-up not included), best of 2 runs.")


def loader_rate(datamodule) -> float:
    loader = datamodule.train_dataloader()
    start, n = time.perf_counter(), 0
    for images, _ in loader:
        n += len(datamodule.augment(images))  # the batch's half of the augmentation (rotation, normalisation) too
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="class-folder data root (../shared/data/concrete-crack: 4,000 training images)")
    parser.add_argument("--weights", help="backbone .pth (default: the bundled one; speed does not depend on it)")
    parser.add_argument("--predict_images", type=int, default=4000, help="images predicted (default 4000)")
    parser.add_argument("--keras_python", help="Python of a TensorFlow environment: also run the Keras original")
    parser.add_argument("--keras_steps", type=int, default=30)
    parser.add_argument(
        "--fit_args", nargs=argparse.REMAINDER, default=[], help="more fit flags for the product run (last)"
    )
    parser.add_argument(
        "--startup_only",
        metavar="MODEL",
        help="a checkpoint, .onnx or shipped model name: only the start-up, memory and predict rows",
    )
    parser.add_argument("--photo", help="the photo of the 1-photo scan (default: the first image of ROOT)")
    parser.add_argument(
        "--handwritten_predict", nargs=4, metavar=("CKPT", "LIST", "CSV", "PRECISION"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.handwritten_predict:
        handwritten_predict(*args.handwritten_predict)
        return
    from scan_scale import cpu_name  # a sibling bench; it imports the product, which this process may

    root = str(Path(args.root).resolve())
    if args.startup_only:
        startup_report(args, root)
        return
    if args.weights is None:  # the bundled backbone (docs/configuration.md#backbone-weights), a file of the package
        weights = (
            resources.files("crack_lightning") / "assets" / "weights" / "mobilenet_v2_features_partial_imagenet.pth"
        )
        args.weights = str(weights)
    keras = keras_runs(args.keras_python, root, args.keras_steps, 1) if args.keras_python else {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fit = product_fit(root, args.weights, work, args.fit_args)
        data = fit["datamodule"]
        samples = [(str(data.root / p), y) for p, y in data.splits["train"]]
        hand = handwritten_fit(samples, args.weights, fit["workers"], fit["precision"])
        loader = loader_rate(data)
        every = sorted(str(data.root / p) for split in data.splits.values() for p, _ in split)
        listing = work / "predict.txt"
        listing.write_text("\n".join(every[: args.predict_images]) + "\n")
        n_predict = min(args.predict_images, len(every))
        python = sys.executable
        precision = ["--precision", "bf16"] if fit["precision"].startswith("bf16") else []
        product_predict = predict_rate(str(fit["ckpt"]), listing, n_predict, work, precision)
        hand_predict = n_predict / timed_process(
            [
                python,
                __file__,
                root,
                "--handwritten_predict",
                str(fit["ckpt"]),
                str(listing),
                str(work / "hand.csv"),
                fit["precision"],
            ]
        )
    import torch

    rows = [
        ("fit, frozen phase", keras.get("keras_frozen_img_s"), fit["frozen"], hand["frozen"]),
        ("fit, fine-tune phase", keras.get("keras_finetune_img_s"), fit["finetune"], hand["finetune"]),
        (
            f"predict, {n_predict} images, process start to CSV",
            keras.get("keras_predict_img_s"),
            product_predict,
            hand_predict,
        ),
    ]
    print(
        f"\n{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"precision {fit['precision']}; {fit['images']} training images of {root}, batch 32, 160 px; "
        f"DataLoader workers {fit['workers']}\n"
    )
    print(
        "| img/s | Keras original | crack_lightning | hand-written PyTorch | crack_lightning / Keras | crack_lightning / hand-written |"
    )
    print("|---|---|---|---|---|---|")
    for name, k, ours, plain in rows:
        ks = f"{k:.1f}" if k else "not run"
        kr = f"**{ours / k:.2f}**" if k else "-"
        print(f"| {name} | {ks} | {ours:.1f} | {plain:.1f} | {kr} | {ours / plain:.2f} |")
    print(
        f"| loader alone (decode + augmentation, {fit['workers']} workers) | | {loader:.1f} | | | "
        f"{loader / fit['frozen']:.2f}x the frozen-phase fit |"
    )
    if keras:
        print("\nKeras predict is its model.predict over the tf.data pipeline (start-up not included).")


if __name__ == "__main__":
    main()
