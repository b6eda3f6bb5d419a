"""Score output: a JSON-ready dict and a fixed-width table."""

from __future__ import annotations

from collections.abc import Mapping

from magseg.metrics.scores import ClassScores

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("n_truth", "truth"),
    ("n_pred", "pred"),
    ("mean_iou", "mean IoU"),
    ("median_iou", "med IoU"),
    ("fnr", "FNR"),
    ("fpr", "FPR"),
    ("precision", "P@0.5"),
    ("recall", "R@0.5"),
    ("f1", "F1@0.5"),
)


def scores_to_json(scores: Mapping[str, ClassScores]) -> dict[str, dict[str, float | int | None]]:
    """{class name: {mean_iou, median_iou, fnr, fpr, n_truth, n_pred, precision, recall, f1}}; None -> null."""
    return {name: s.as_dict() for name, s in scores.items()}


def _cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def format_table(scores: Mapping[str, ClassScores]) -> str:
    """A readable fixed-width table, one row per class; '-' where a score is undefined."""
    header = ["class"] + [title for _, title in _COLUMNS]
    rows = [[name] + [_cell(getattr(s, key)) for key, _ in _COLUMNS] for name, s in scores.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])
