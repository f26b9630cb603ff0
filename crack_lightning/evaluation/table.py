"""An evaluation's figures as Markdown tables."""

from __future__ import annotations

from crack_lightning.evaluation.scores import LENGTH_TOLERANCE, TOLERANCE

SCORE_COLUMNS = (
    "photos",
    "P",
    "R",
    "F1",
    f"F1, {TOLERANCE}-px tolerance",
    "IoU, mean of photos",
    "ODS F1 (threshold)",
    f"ODS F1, {TOLERANCE}-px tolerance",
    "length: median abs. error",
    f"length within {LENGTH_TOLERANCE:.0%} (95% CI)",
    "mean width: median abs. error",
    "width: median error",
)


def score_row(label: str, s: dict) -> str:
    low, high = s["length_within_95ci"]
    cells = (
        f"{label}: {s['photos']}",
        f"{s['precision']:.3f}",
        f"{s['recall']:.3f}",
        f"{s['f1']:.3f}",
        f"{s['f1_tolerant']:.3f}",
        f"{s['mean_iou']:.3f}",
        f"{s['ods_f1']:.3f} ({s['ods_threshold']:.2f})",
        f"{s['ods_f1_tolerant']:.3f}",
        f"{s['length_error']:.1%}",
        f"{s['length_within']:.0%} ({low:.0%}-{high:.0%})",
        f"{s['width_error']:.2f} px",
        f"{s['width_bias']:+.2f} px",
    )
    return "| " + " | ".join(cells) + " |"


def score_table(sets: dict[str, dict], threshold: float, low_threshold: float | None = None) -> str:
    """A row per set of photos; P, R, F1 and IoU at the operating point (``threshold``, hysteresis down to
    ``low_threshold``), ODS over the fixed thresholds of the probability map."""
    point = f"threshold {threshold:g}" + (f", hysteresis from {low_threshold:g}" if low_threshold is not None else "")
    lines = [
        f"Operating point: {point}.",
        "",
        "| " + " | ".join(SCORE_COLUMNS) + " |",
        "| --- " * len(SCORE_COLUMNS) + "|",
    ]
    return "\n".join(lines + [score_row(label, s) for label, s in sets.items()])


def patch_table(patches: dict) -> str:
    lines = [
        f"| {patches['folder']} | patches | with a crack of at least {patches['min_area']} px found (95% CI) |",
        "| --- | --- | --- |",
    ]
    for kind in ("Positive", "Negative"):
        row = patches[kind]
        low, high = row["share_95ci"]
        lines.append(f"| {kind} | {row['patches']} | {row['crack_found']} ({row['share']:.1%}, {low:.1%}-{high:.1%}) |")
    return "\n".join(lines)
