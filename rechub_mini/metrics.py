"""Per-task metrics: AUC for classification tasks, MSE for regression tasks.

Each task is scored on the rows its model says it is defined on: for ESMM and BASE the CVR AUC
uses clicked impressions only (CVR is purchase *given a click*), while CTR and CTCVR use all
impressions. torch-rechub scores CVR on all impressions, which measures something else.
Taught in tutorials/*/02_esmm.ipynb.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import mean_squared_error, roc_auc_score

from .errors import DataError


class MetricWarning(UserWarning):
    """A metric could not be computed (e.g. only one class) and is reported as NaN."""


def auc(y_true: np.ndarray, y_score: np.ndarray, name: str = "task") -> float:
    """ROC AUC, or NaN with a warning when the rows hold only one class."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if len(y_true) != len(y_score):
        raise DataError(f"AUC of {name}: {len(y_true)} labels but {len(y_score)} scores; give "
                        f"one score per row.")
    bad = ~np.isfinite(y_score)
    if bad.any():
        raise DataError(f"AUC of {name}: {int(bad.sum())} of {len(y_score)} scores are NaN or "
                        f"infinite (first at row {int(np.flatnonzero(bad)[0])}). The model's "
                        f"weights have stopped being finite: train again with a lower learning "
                        f"rate.")
    labels = pd.unique(pd.Series(y_true.ravel()))
    if pd.isna(labels).any() or not set(labels.tolist()) <= {0, 1}:
        odd = [v for v in labels.tolist() if pd.isna(v) or v not in (0, 1)][:5]
        raise DataError(f"AUC of {name}: labels must be 0 or 1, found {odd}. Score a binary "
                        f"label (e.g. click), or use MSE for a regression task.")
    if len(y_true) == 0 or len(np.unique(y_true)) < 2:
        present = np.unique(y_true).tolist()
        warnings.warn(f"AUC of {name} is undefined on {len(y_true)} rows with labels {present}"
                      f" (needs both 0 and 1); reporting NaN. Use a larger split.",
                      MetricWarning, stacklevel=2)
        return float("nan")
    return float(roc_auc_score(y_true, y_score))


class TaskScores(list):
    """Scores in the model's task order: a plain list (like torch-rechub's) that prints names.

    `scores[0]` and `scores["cvr"]` both work; `scores.as_dict()` gives {task: score}.
    """

    def __init__(self, names: Sequence[str], values: Sequence[float],
                 metrics: Sequence[str], notes: Sequence[str], digits: int = 3) -> None:
        super().__init__(float(v) for v in values)
        self.names, self.metrics, self.notes, self.digits = list(names), list(metrics), list(notes), digits

    def __getitem__(self, key):
        if isinstance(key, str):
            return list.__getitem__(self, self.names.index(key))
        return list.__getitem__(self, key)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self))

    def __repr__(self) -> str:
        parts = []
        for name, metric, note, value in zip(self.names, self.metrics, self.notes, self):
            shown = "nan" if math.isnan(value) else f"{value:.{self.digits}f}"
            parts.append(f"{name} {metric} {shown}" + (f" ({note})" if note else ""))
        return " | ".join(parts)

    __str__ = __repr__

    def table(self, digits: int | None = None) -> str:
        """A small aligned text table, one task per line (`digits` decimals, default 3)."""
        digits = self.digits if digits is None else digits
        width = max(len(n) for n in ["task", *self.names])
        lines = [f"{'task':<{width}}  metric  {'score':>7}  rows"]
        for name, metric, note, value in zip(self.names, self.metrics, self.notes, self):
            lines.append(f"{name:<{width}}  {metric:<6}  {value:>7.{digits}f}  {note or 'all rows'}")
        return "\n".join(lines)


def task_scores(model, y: torch.Tensor, predictions: torch.Tensor) -> TaskScores:
    """Score every task of `model` on labels `y` and `predictions` (both [rows, ...])."""
    labels, masks = model.targets(y)
    names, values, metrics, notes = [], [], [], []
    for i, (name, task_type) in enumerate(zip(model.task_names, model.task_types)):
        mask = masks[:, i].numpy()
        truth, score = labels[:, i].numpy()[mask], predictions[:, i].numpy()[mask]
        note = model.scored_on.get(name, "")
        if task_type == "classification":
            values.append(auc(truth, score, name=name))
            metrics.append("AUC")
        else:
            values.append(float(mean_squared_error(truth, score)) if len(truth) else float("nan"))
            metrics.append("MSE")
        names.append(name)
        notes.append(note)
    return TaskScores(names, values, metrics, notes)
