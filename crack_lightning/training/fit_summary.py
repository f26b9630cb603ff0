"""The block ``fit`` prints at its end: the best checkpoint, its epoch and validation metrics, and what to run next."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from crack_lightning.training.callbacks import TwoPhaseFinetuning


class FitSummary(Callback):
    """At the end of ``fit``, one block: the best checkpoint, its epoch and validation metrics, and what to run next."""

    METRICS = ("val_loss", "val_acc", "val_precision", "val_recall", "val_f1", "val_auroc")

    def __init__(self) -> None:
        self.history: dict[int, dict[str, float]] = {}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            metrics = trainer.callback_metrics
            self.history[trainer.current_epoch] = {k: float(metrics[k]) for k in self.METRICS if k in metrics}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every process must ask
        if not trainer.is_global_zero:
            return
        best = next((c for c in trainer.checkpoint_callbacks if c.monitor and c.best_model_path), None)
        finetuning = next((c for c in trainer.callbacks if isinstance(c, TwoPhaseFinetuning)), None)
        lines = [f"Training finished after {trainer.current_epoch} epoch(s)."]
        if finetuning is not None:
            lines.append(
                f"  fine-tune phase: from epoch {finetuning.unfrozen_epoch}"
                if finetuning.unfrozen
                else "  fine-tune phase: not reached (the backbone stayed frozen)"
            )
        if best is not None:
            epoch = next(
                (e for e, m in self.history.items() if m.get(best.monitor) == float(best.best_model_score)), None
            )
            lines.append(f"  best checkpoint: {best.best_model_path}")
            if epoch is not None:
                scores = ", ".join(f"{k} {v:.4f}" for k, v in self.history[epoch].items())
                lines.append(f"  best epoch: {epoch} ({scores})")
        if log_dir:
            lines.append(f"  run folder: {log_dir}")
        lines.append("Next:")
        save_dir = getattr(trainer.logger, "save_dir", None) if trainer.logger else None
        if save_dir:
            lines.append(f"  tensorboard --logdir {save_dir}")
        if best is not None:
            roots = [str(r) for r in getattr(trainer.datamodule, "roots", [])]
            data = (
                f" --data.root {roots[0]}"
                if len(roots) == 1
                else f" --data.root '[{','.join(roots)}]'"
                if roots
                else ""
            )
            lines.append(f"  python -m crack_lightning test --ckpt_path {best.best_model_path}{data}")
            lines.append(
                f"  python -m crack_lightning predict --ckpt_path {best.best_model_path} --data.predict_dir IMAGES"
            )
            lines.append(
                f"  python -m crack_lightning scan --ckpt_path {best.best_model_path} --input PHOTOS --output SCAN_DIR"
            )
        print("\n".join(lines), flush=True)
