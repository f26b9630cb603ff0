"""``scan --devices N``: photos shared out across processes launched by Lightning (ddp, gloo on the CPU) give the
files one process writes; parts a killed run leaves are folded in by a resume, never scanned twice."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import crack_lightning
from crack_lightning.data.datasets import sample_root
from crack_lightning.errors import CrackLightningError
from crack_lightning.io.scan_files import find_photos
from crack_lightning.scanning.pipeline import scan_to_folder
from crack_lightning.scanning.shards import Shards, part_path
from tests.conftest import REPO


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Nine photos, a wide one, an unreadable file: shares of 6 and 5 photos."""
    folder = tmp_path_factory.mktemp("photos")
    for kind in ("Positive", "Negative"):
        for src in sorted((sample_root() / kind).glob("*.jpg"))[:4]:
            shutil.copy(src, folder / f"{kind[0]}{src.name}")
    rng = np.random.default_rng(0)
    wide = np.clip(rng.normal(150, 12, (300, 700, 3)), 0, 255).astype(np.uint8)
    wide[140:146, 40:660] = 60  # a dark line: a crack for the segmenter, crack tiles for the classifier
    Image.fromarray(wide).save(folder / "wide.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    assert len(list(folder.iterdir())) == 10
    return folder


def run_scan(*args: str, cwd: Path, rc: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "crack_lightning", "scan", "--progress", "false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == rc, result.stderr[-3000:]
    return result


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.parent != folder
    }  # pictures; the CSVs are compared row by row


@pytest.mark.parametrize("model, details", [("concrete-seg-v1", "cracks.csv"), ("concrete-v1", "tiles.csv")])
def test_two_processes_write_what_one_process_writes(photos, tmp_path, model, details):
    common = ["--input", str(photos), "--ckpt_path", model, "--precision", "32"]
    one_out = run_scan(*common, "--output", str(tmp_path / "one"), cwd=tmp_path).stdout
    two_out = run_scan(*common, "--output", str(tmp_path / "two"), "--devices", "2", cwd=tmp_path).stdout
    one, two = tmp_path / "one", tmp_path / "two"
    assert two_out.count("Scanned 9 photos") == 1 and one_out.splitlines()[0] == two_out.splitlines()[0]
    for name in ("photos.csv", details):
        assert rows(two / name) == rows(one / name), name  # the same rows in the same order
    assert len(rows(one / details)) > 1  # there is something to compare
    assert files(two) == files(one)  # overlays, masks, thumbnails: the same pictures, byte for byte
    assert (two / "report.html").read_text().count("<img") == (one / "report.html").read_text().count("<img")
    assert not list(two.glob(".*.part"))
    if details == "cracks.csv":  # the first process's error, said once; the results stay
        again = run_scan(*common, "--output", str(two), "--devices", "2", cwd=tmp_path, rc=2)
        assert again.stderr.count("error:") == 1 and "already holds scan results" in again.stderr
        assert rows(two / "photos.csv") == rows(one / "photos.csv")


def test_two_processes_killed_together_resume_to_the_files_of_one(tmp_path):
    """kill -9 of both processes mid-scan (parts and pictures half done), then ``--resume true`` with two processes:
    the files equal an uninterrupted one-process scan, row for row."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        photo = np.clip(rng.normal(150, 12, (320, 480, 3)), 0, 255).astype(np.uint8)
        y = int(rng.integers(40, 280))
        photo[y : y + 4, 30:450] = 60
        Image.fromarray(photo).save(folder / f"{i:02d}.jpg", quality=92)
    common = ["--input", str(folder), "--precision", "32", "--progress", "false"]
    run_scan(*common, "--output", str(tmp_path / "reference"), cwd=tmp_path)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "crack_lightning", "scan", *common, "--output", str(out), "--devices", "2"]
    scan = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and scan.poll() is None:
        parts = list(out.glob(".photos.csv.rank*.part"))
        if parts and sum(len(p.read_text().splitlines()) for p in parts) >= 6:
            break
        time.sleep(0.05)
    assert scan.poll() is None, "the scan ended before it could be killed"
    os.killpg(scan.pid, signal.SIGKILL)
    scan.wait()
    resumed = run_scan(*common, "--output", str(out), "--devices", "2", "--resume", "true", cwd=tmp_path)
    assert "already done" in resumed.stdout
    for name in ("photos.csv", "cracks.csv"):
        assert rows(out / name) == rows(tmp_path / "reference" / name), name
    assert not list(out.glob(".*.part")) and not list(out.rglob(".*.partial"))


def test_two_processes_scan_the_first_ones_list_with_the_output_inside_the_input(photos, tmp_path):
    """Each process scans from the first one's photo list: listed by each, this scan's own --output (inside --input,
    locked by the first as the second starts) could come and go from it."""
    inside = tmp_path / "photos"
    shutil.copytree(photos, inside)
    for extra in ([], ["--overwrite", "true"]):
        run_scan(
            "--input",
            str(inside),
            "--output",
            str(inside / "out"),
            "--ckpt_path",
            "concrete-v1",
            "--devices",
            "2",
            *extra,
            cwd=tmp_path,
        )
        assert sorted(r[0] for r in rows(inside / "out" / "photos.csv")[1:]) == sorted(p.name for p in photos.iterdir())


class SecondOfTwo(Shards):
    """Process 1 of 2 of a scan of ``photos``, run alone (a run killed after its share): what the first process
    would broadcast (its photo list, nothing done before), and no one to wait for."""

    rank, world_size = 1, 2

    def __init__(self, photos: Path) -> None:
        self.answers = [("value", list(dict(find_photos(photos)).items())), ("value", set())]

    def broadcast(self, value):
        return self.answers.pop(0) if self.answers else value


def test_resume_folds_in_the_parts_of_a_killed_run(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    task = crack_lightning.load_model("concrete-v1", precision="32").scan_task()
    scan_to_folder(task, photos, out, progress=False, shards=SecondOfTwo(photos))
    shared = rows(part_path(out, "photos.csv", 1))
    assert len(shared) == 5  # every other photo of ten, in input order
    # The kill cut the next photo short: a detail row without its photo row, half a photo row.
    with open(part_path(out, "tiles.csv", 1), "a") as f:
        f.write("unfinished.jpg,0,0,1,1,Positive,0.9\n")
    with open(part_path(out, "photos.csv", 1), "a") as f:
        f.write("unfinished.jpg,3,")
    counts = crack_lightning.scan(photos, out, model="concrete-v1", resume=True, precision="32")
    assert counts["skipped"] == 5 and counts["photos"] == 5
    reference = tmp_path / "reference"
    crack_lightning.scan(photos, reference, model="concrete-v1", precision="32")
    for name in ("photos.csv", "tiles.csv"):
        got, want = rows(out / name), rows(reference / name)
        assert got[0] == want[0] and sorted(got[1:]) == sorted(want[1:]), name  # each photo once, none lost
    assert not list(out.glob(".*.part"))


def test_overwrite_removes_the_parts_of_a_killed_run(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    task = crack_lightning.load_model("concrete-v1", precision="32").scan_task()
    scan_to_folder(task, photos, out, progress=False, shards=SecondOfTwo(photos))
    with pytest.raises(CrackLightningError, match="already holds scan results"):  # parts are results too
        crack_lightning.scan(photos, out, model="concrete-v1")
    counts = crack_lightning.scan(photos, out, model="concrete-v1", overwrite=True, precision="32")
    assert counts["skipped"] == 0 and counts["photos"] == 10
    assert not list(out.glob(".*.part")) and len(rows(out / "photos.csv")) == 11


def test_a_loaded_model_cannot_be_shared_out(photos, tmp_path):
    model = crack_lightning.load_model("concrete-v1")
    with pytest.raises(CrackLightningError, match="pass its name or path"):
        crack_lightning.scan(photos, tmp_path / "out", model=model, devices=2)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_processes_sharing_a_gpu_write_what_one_gpu_process_writes(photos, tmp_path):
    common = ["--input", str(photos), "--device", "cuda"]
    run_scan(*common, "--output", str(tmp_path / "one"), cwd=tmp_path)
    run_scan(*common, "--output", str(tmp_path / "three"), "--devices", "3", cwd=tmp_path)
    for name in ("photos.csv", "cracks.csv"):
        assert rows(tmp_path / "three" / name) == rows(tmp_path / "one" / name), name
