"""Evaluate: after ``test``, a metrics table, a JSON report and pictures of where the model fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics.classification import (
    BinaryPrecisionRecallCurve,
    BinaryROC,
    MulticlassConfusionMatrix,
)
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_f1_score,
    binary_precision,
    binary_recall,
    binary_stat_scores,
    multiclass_accuracy,
    multiclass_confusion_matrix,
)

from crack_lightning.data.datasets import read_image_tensor
from crack_lightning.errors import OptionError

REPORT_JSON = "test_report.json"


def compute_report(probabilities: torch.Tensor, labels: torch.Tensor, class_names: list[str], crack_index: int) -> dict:
    """Accuracy, crack-vs-rest precision/recall/F1/AUROC and the confusion matrix of one test run."""
    predicted = probabilities.argmax(dim=1)
    crack_probability = probabilities[:, crack_index]
    is_crack = (labels == crack_index).long()
    predicted_crack = (predicted == crack_index).long()
    matrix = multiclass_confusion_matrix(predicted, labels, len(class_names))  # rows: true class
    true_positive, false_positive, true_negative, false_negative, _ = binary_stat_scores(predicted_crack, is_crack)
    both_classes = 0 < int(is_crack.sum()) < len(is_crack)
    return {
        "images": len(labels),
        "class_names": class_names,
        "crack_class": class_names[crack_index],
        "accuracy": multiclass_accuracy(predicted, labels, len(class_names), average="micro").item(),
        "precision": binary_precision(predicted_crack, is_crack).item(),
        "recall": binary_recall(predicted_crack, is_crack).item(),
        "f1": binary_f1_score(predicted_crack, is_crack).item(),
        # AUROC is undefined when the test set holds one class only.
        "auroc": binary_auroc(crack_probability, is_crack).item() if both_classes else None,
        "confusion_matrix": {"rows": "true class", "columns": "predicted class", "counts": matrix.tolist()},
        "crack_counts": {
            "true_positive": int(true_positive),
            "false_positive": int(false_positive),
            "true_negative": int(true_negative),
            "false_negative": int(false_negative),
        },
    }


def format_table(report: dict) -> str:
    """The report as the plain-text table printed after ``test``."""
    names = report["class_names"]
    rows = [f"Test report: {report['images']} images, crack class {report['crack_class']!r}"]
    for key in ("accuracy", "precision", "recall", "f1", "auroc"):
        value = report[key]
        rows.append(f"  {key:<10} {'n/a' if value is None else f'{value:.4f}'}")
    width = max(len(n) for n in names + ["true \\ predicted"])
    rows.append("  " + "true \\ predicted".ljust(width) + "".join(f"  {n:>10}" for n in names))
    for name, counts in zip(names, report["confusion_matrix"]["counts"]):
        rows.append("  " + name.ljust(width) + "".join(f"  {c:>10}" for c in counts))
    return "\n".join(rows)


def misclassified_figure(items: list[dict], columns: int = 8) -> plt.Figure:
    """A grid of misclassified images titled with their true class and predicted crack probability."""
    columns = max(1, min(columns, len(items)))
    rows = max(1, -(-len(items) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 2.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, item in zip(axes.flat, items):
        ax.imshow(read_image_tensor(item["path"]).permute(1, 2, 0).numpy())
        ax.set_title(f"true {item['true']}\np(crack) {item['crack_probability']:.2f}", fontsize=7)
    if not items:
        axes.flat[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle("Misclassified test images (most confident mistakes first)", fontsize=9)
    fig.tight_layout()
    return fig


def in_dataset_order(trainer: L.Trainer, values: torch.Tensor, size: int) -> torch.Tensor:
    """Every process's share of the test set (``UnrepeatedDistributedSampler``), gathered into dataset order.

    Process ``r`` holds items ``r, r + world, r + 2 world, ...``; the shares are padded to one length for
    the gather, interleaved, and cut to ``size``: every padded slot lands beyond the last item.
    """
    share = -(-size // trainer.world_size)
    padded = torch.zeros(share, *values.shape[1:], dtype=values.dtype)
    padded[: len(values)] = values
    gathered = trainer.strategy.all_gather(padded.to(trainer.strategy.root_device)).cpu()  # (world, share, ...)
    return gathered.transpose(0, 1).reshape(-1, *values.shape[1:])[:size]


class TestReport(Callback):
    """After ``test``: print a metrics table and write ``test_report.json`` and PNG pictures, also to TensorBoard.

    Args:
        output_dir: Folder for the report; ``null``: ``test_report/`` in the run's log directory. It must
            not hold an earlier report (nothing is overwritten).
        max_misclassified: Misclassified images shown in the grid, the most confident mistakes first.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, output_dir: str | None = None, max_misclassified: int = 32) -> None:
        self.output_dir = output_dir
        self.max_misclassified = max_misclassified

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "test":
            return
        self.dir = Path(self.output_dir) if self.output_dir else Path(trainer.log_dir or ".") / "test_report"
        if (self.dir / REPORT_JSON).exists():
            raise OptionError("output_dir", f"{self.dir} holds a report already; pass another folder")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.probabilities: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.probabilities.append(outputs.float().cpu())
        self.labels.append(batch[1].cpu())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.probabilities:
            return
        probabilities, labels = torch.cat(self.probabilities), torch.cat(self.labels)
        dataset = trainer.datamodule.datasets["test"]
        if trainer.world_size > 1:
            probabilities = in_dataset_order(trainer, probabilities, len(dataset))
            labels = in_dataset_order(trainer, labels, len(dataset))
        if not trainer.is_global_zero:
            return
        names, crack = pl_module.class_names, pl_module.crack_index
        report = compute_report(probabilities, labels, names, crack)
        report["data_root"] = str(dataset.root)
        report["checkpoint"] = str(trainer.ckpt_path) if trainer.ckpt_path else None
        predicted = probabilities.argmax(dim=1)
        wrong = (predicted != labels).nonzero().flatten().tolist()
        wrong.sort(key=lambda i: -probabilities[i, predicted[i]].item())
        report["misclassified"] = [
            {
                "path": str(dataset.root / dataset.samples[i][0]),
                "true": names[labels[i]],
                "predicted": names[predicted[i]],
                "crack_probability": round(probabilities[i, crack].item(), 6),
            }
            for i in wrong
        ]
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")

        is_crack = (labels == crack).long()
        counts = torch.tensor(report["confusion_matrix"]["counts"])
        fig, ax = MulticlassConfusionMatrix(len(names)).plot(counts, labels=names)
        ax.set_title(f"Confusion matrix, {report['images']} test images")
        figures = {"confusion_matrix": fig}
        if report["auroc"] is not None:
            # Local metrics on gathered data: no syncing with the other processes, which are done by now.
            roc, pr = BinaryROC(sync_on_compute=False), BinaryPrecisionRecallCurve(sync_on_compute=False)
            roc.update(probabilities[:, crack], is_crack)
            pr.update(probabilities[:, crack], is_crack)
            for name, metric in (("roc_curve", roc), ("precision_recall_curve", pr)):
                fig, ax = metric.plot(score=True)
                ax.set_title(f"{name.replace('_', ' ').capitalize()}, crack class {names[crack]!r}")
                figures[name] = fig
        figures["misclassified"] = misclassified_figure(report["misclassified"][: self.max_misclassified])
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        for name, fig in figures.items():
            fig.savefig(self.dir / f"{name}.png", dpi=120, bbox_inches="tight")
            for logger in loggers:
                logger.experiment.add_figure(f"test/{name}", fig, global_step=trainer.global_step, close=False)
            plt.close(fig)
        for logger in loggers:
            logger.experiment.add_pr_curve("test/pr_curve", is_crack, probabilities[:, crack], trainer.global_step)
            logger.experiment.flush()
        print(format_table(report))
        rank_zero_info(f"Test report written to {self.dir}")
