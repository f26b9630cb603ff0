"""The table of config options in docs/configuration.md is generated from the CLI itself; this test keeps it in sync.

Regenerate it with:  UPDATE_README=1 python -m pytest tests/test_readme.py
"""

from __future__ import annotations

import json
import os
import re
import sys

import docstring_parser
import lightning as L
import pytest
import yaml
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from crack_lightning.cli import main
from crack_lightning.cli.train import FIT_DEFAULTS
from crack_lightning.data.classification import CrackDataModule
from crack_lightning.models.classifier import CrackClassifier
from crack_lightning.training.callbacks import AugmentedSamplesGrid, TwoPhaseFinetuning
from tests.conftest import REPO

START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"
CONFIG_DOC = REPO / "docs" / "configuration.md"
SECTIONS = {
    "data": CrackDataModule,
    "model": CrackClassifier,
    "finetuning": TwoPhaseFinetuning,
    "early_stopping": EarlyStopping,
    "checkpoint": ModelCheckpoint,
    "last_checkpoint": ModelCheckpoint,
    "lr_monitor": LearningRateMonitor,
    "sample_grid": AugmentedSamplesGrid,
    "trainer.logger.init_args": TensorBoardLogger,
    "trainer": L.Trainer.__init__,
}
FIXED = {
    "seed_everything": "Seed of Python, NumPy and torch random generators (`seed_everything`).",
    "trainer.logger.class_path": "Logger class; TensorBoard by default.",
    "trainer.precision": "``null``: ``bf16-mixed`` where the hardware computes bf16 natively (CPUs with AMX or "
    "AVX512-BF16, bf16 GPUs), else ``32-true``; a log line says which and why.",
}


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    rows: dict[str, object] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in ("trainer.logger.init_args.comment",) and value:
            rows.update(flatten(value, f"{name}."))
        else:
            rows[name] = value
    return rows


def describe(key: str) -> str:
    if key in FIXED:
        return FIXED[key]
    section = max((s for s in SECTIONS if key.startswith(s + ".")), key=len, default=None)
    if section is None:
        return ""
    param = key[len(section) + 1 :]
    docs = {p.arg_name: p.description for p in docstring_parser.parse(SECTIONS[section].__doc__ or "").params}
    text = " ".join((docs.get(param) or "").split())
    first = re.split(r"\.\s+(?=[A-Z`])", text)[0].rstrip(".")
    if not first and section == "trainer.logger.init_args":
        return "Passed on to TensorBoard's `SummaryWriter`."
    return (first + ".").replace("|", "\\|") if first else ""


def config_table(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(REPO / "configs" / "default.yaml"), "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    config = {k: v for k, v in config.items() if k not in ("ckpt_path", "weights_only")}
    lines = ["| option | default | meaning |", "| --- | --- | --- |"]
    order = [
        "data",
        "model",
        "finetuning",
        "early_stopping",
        "checkpoint",
        "lr_monitor",
        "sample_grid",
        "seed_everything",
    ]
    rank = {name: i for i, name in enumerate(order)}
    # Our own classes' options, and the Lightning options whose defaults we set; `fit --help` lists the rest.
    ours = ("data.", "model.", "finetuning.", "sample_grid.", "seed_everything")
    set_by_us = set(flatten({k: v for k, v in FIT_DEFAULTS.items() if k != "trainer.logger"})) | {
        f"trainer.logger.{k}" for k in flatten(FIT_DEFAULTS["trainer.logger"])
    }
    rows = [(k, v) for k, v in flatten(config).items() if k.startswith(ours) or k in set_by_us]
    rows.sort(key=lambda kv: rank.get(kv[0].split(".")[0], len(order)))
    for key, value in rows:
        lines.append(f"| `{key}` | `{json.dumps(value)}` | {describe(key)} |")
    return "\n".join(lines)


def test_configuration_doc_lists_every_config_option_with_its_default(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["crack_lightning"])
    table = config_table(capsys)
    doc = CONFIG_DOC.read_text()
    start, end = doc.index(START) + len(START), doc.index(END)
    if os.environ.get("UPDATE_README"):
        CONFIG_DOC.write_text(doc[:start] + "\n" + table + "\n" + doc[end:])
        return
    assert doc[start:end].strip() == table, (
        "docs/configuration.md config table is stale: run UPDATE_README=1 pytest tests/test_readme.py"
    )


def test_readme_commands_use_files_that_exist():
    readme = (REPO / "README.md").read_text()
    assert "python -m crack_lightning fit --config configs/default.yaml" in readme
    assert "python -m pytest" in readme
    assert (REPO / "configs" / "default.yaml").is_file()


def test_readme_and_docs_link_to_files_inside_the_repository():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://", "#")):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{page.name} links to {target}, which does not exist"
            assert path.is_relative_to(REPO), f"{page.name} links outside the repository: {target}"
    assert "../" not in (REPO / "README.md").read_text(), "the README names a path outside the repository"


def test_readme_stays_under_300_lines():
    # The README is for users; model cards, API details and studies belong in docs/ (issue 37).
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines < 300, f"README.md has {lines} lines: move details into a page of docs/ and link it"


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats -1, -2."""
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(f"{anchor}-{seen[anchor]}" if anchor in seen else anchor)
        seen[anchor] = seen.get(anchor, 0) + 1
    return anchors


def test_readme_and_docs_link_to_headings_that_exist():
    # Sections move between the README and docs/: a link to a moved section must follow it.
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+\.md)?#([^)\s]+)\)", page.read_text()):
            path = (page.parent / target[0]).resolve() if target[0] else page
            assert target[1] in heading_anchors(path.read_text()), (
                f"{page.name} links to {'#'.join(target)}: no such heading"
            )
