"""Plots for the lessons: training curves, ROC curves and MMoE's gate weights.

Each helper draws with matplotlib and returns the Figure or Axes; none calls `plt.show()`, so
a notebook cell decides when to show and a test can inspect what was drawn.
Used by tutorials/*/02_esmm.ipynb (`plot_history`, `plot_roc`) and tutorials/*/03_mmoe.ipynb
(`plot_history`, `plot_gate_weights`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_curve

from .errors import DataError
from .metrics import auc


def plot_history(history: Mapping, title: str = "", axes: Sequence[Axes] | None = None,
                 val_label: str = "validation score") -> Figure:
    """Training loss per part (left) and validation score per task (right), per epoch.

    Args:
        history: what `MTLTrainer.fit` returns: {"epoch", "train_loss", "val", "best_epoch"}.
        title: put in front of both panel titles, e.g. the model's name.
        axes: two Axes to draw on (e.g. one row of a larger grid); default: a new figure.
        val_label: y-axis label of the right panel ("validation AUC", "validation MSE", ...).
    """
    missing = {"epoch", "train_loss", "val"} - set(history)
    if missing:
        raise DataError(f"history lacks {sorted(missing)}; pass the dict MTLTrainer.fit "
                        f"returns (or trainer.history).")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    loss_ax, val_ax = axes
    epochs = history["epoch"]
    for name, values in history["train_loss"].items():
        loss_ax.plot(epochs, values, marker="o", label=name)
    for name, values in history["val"].items():
        if values:  # empty when fit ran without a validation loader
            val_ax.plot(epochs, values, marker="o", label=name)
    best = history.get("best_epoch")
    prefix = f"{title}: " if title else ""
    for ax, what, ylabel in ((loss_ax, "training loss", "loss"), (val_ax, val_label, val_label)):
        if best is not None:
            ax.axvline(best, color="grey", linestyle="--", linewidth=1, label="best epoch")
        ax.set_title(prefix + what)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        if ax.get_lines():
            ax.legend(fontsize="small")
    loss_ax.figure.tight_layout()
    return loss_ax.figure


def plot_roc(labels: np.ndarray, scores_by_model: Mapping[str, np.ndarray], title: str = "",
             ax: Axes | None = None) -> Axes:
    """ROC curves of several models' scores against one label column; AUCs in the legend.

    Args:
        labels: 0/1 labels of the rows.
        scores_by_model: {model name: scores of the same rows}.
        title: the panel title, e.g. "CVR on clicked rows".
        ax: Axes to draw on; default: a new figure.
    """
    labels = np.asarray(labels)
    if np.unique(labels).size != 2:
        raise DataError(f"A ROC curve needs labels with both 0 and 1; these {len(labels)} rows "
                        f"hold {np.unique(labels).tolist()}. Pick rows with both classes.")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, scores in scores_by_model.items():
        scores = np.asarray(scores)
        if scores.shape != labels.shape:
            raise DataError(f"Scores of {name!r} have shape {scores.shape}, labels "
                            f"{labels.shape}; pass one score per labelled row.")
        area = auc(labels, scores, name)  # first: its errors name the model and the rows
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {area:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random (AUC 0.5)")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_gate_weights(weights: np.ndarray, task_names: Sequence[str],
                      expert_names: Sequence[str] | None = None,
                      title: str = "average gate weights", ax: Axes | None = None) -> Axes:
    """Heatmap of gate weights, tasks x experts, with each value written in its cell.

    Args:
        weights: [tasks, experts], or [rows, tasks, experts] (as `MMOE.gate_weights` returns),
            which is averaged over the rows. A torch tensor or numpy array.
        task_names: one name per task (the heatmap's rows).
        expert_names: one name per expert; default "expert 0", "expert 1", ...
        title: the panel title.
        ax: Axes to draw on; default: a new figure.
    """
    w = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights,
                   dtype=np.float64)
    if w.ndim == 3:
        w = w.mean(axis=0)
    if w.ndim != 2 or w.shape[0] != len(task_names):
        raise DataError(f"Gate weights must be [tasks, experts] or [rows, tasks, experts] with "
                        f"one task per name in {list(task_names)}; got shape {w.shape}.")
    experts = list(expert_names) if expert_names is not None else [
        f"expert {j}" for j in range(w.shape[1])]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * w.shape[1] + 2.5, 0.8 * w.shape[0] + 1.5))
    image = ax.imshow(w, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center",
                    color="white" if w[i, j] > 0.6 else "black")
    ax.set_xticks(range(w.shape[1]), experts)
    ax.set_yticks(range(w.shape[0]), list(task_names))
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label="gate weight")
    return ax
