"""The lesson plots draw exactly the numbers they are given: history curves, ROC curves, gates."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from rechub_mini.errors import DataError  # noqa: E402
from rechub_mini.plots import plot_gate_weights, plot_history, plot_roc  # noqa: E402

HISTORY = {
    "epoch": [1, 2, 3],
    "train_loss": {"ctr": [0.52, 0.44, 0.42], "ctcvr": [0.22, 0.17, 0.16]},
    "val": {"cvr": [0.65, 0.70, 0.69], "ctr": [0.73, 0.76, 0.77], "ctcvr": [0.78, 0.81, 0.80]},
    "best_epoch": 2,
}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_history_curves_are_the_history_values():
    fig = plot_history(HISTORY, title="ESMM", val_label="validation AUC")
    loss_ax, val_ax = fig.axes
    for ax, values in ((loss_ax, HISTORY["train_loss"]), (val_ax, HISTORY["val"])):
        lines = lines_by_label(ax)
        for name, ys in values.items():
            assert list(lines[name].get_xdata()) == HISTORY["epoch"]
            assert list(lines[name].get_ydata()) == ys
        assert list(lines["best epoch"].get_xdata()) == [2, 2]
        assert ax.get_xlabel() == "epoch"
    assert loss_ax.get_title() == "ESMM: training loss"
    assert val_ax.get_title() == "ESMM: validation AUC"
    assert val_ax.get_ylabel() == "validation AUC"


def test_history_draws_on_given_axes_and_skips_an_empty_validation():
    fig, axes = plt.subplots(2, 2)
    no_val = {**HISTORY, "val": {"cvr": [], "ctr": [], "ctcvr": []}, "best_epoch": None}
    assert plot_history(no_val, axes=axes[1]) is fig
    assert set(lines_by_label(axes[1][0])) == {"ctr", "ctcvr"}
    assert axes[1][1].get_lines() == [] and axes[1][1].get_legend() is None
    assert axes[0][0].get_lines() == []
    assert axes[1][0].get_title() == "training loss"


def test_history_rejects_something_else():
    with pytest.raises(DataError, match="MTLTrainer.fit"):
        plot_history({"epoch": [1]})


def test_roc_curves_match_sklearn_and_show_the_auc():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = {"good": labels + rng.normal(0, 0.8, 200), "noise": rng.random(200)}
    ax = plot_roc(labels, scores, title="CVR, clicked rows")
    lines = {line.get_label().split(" (")[0]: line for line in ax.get_lines()}
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(labels, s)
        np.testing.assert_array_equal(lines[name].get_xdata(), fpr)
        np.testing.assert_array_equal(lines[name].get_ydata(), tpr)
        assert lines[name].get_label() == f"{name} (AUC {roc_auc_score(labels, s):.3f})"
    assert "random" in lines
    assert ax.get_title() == "CVR, clicked rows"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("false positive rate", "true positive rate")


def test_roc_needs_both_classes_and_matching_scores():
    with pytest.raises(DataError, match="both 0 and 1"):
        plot_roc(np.zeros(5), {"m": np.arange(5)})
    with pytest.raises(DataError, match="one score per labelled row"):
        plot_roc(np.array([0, 1, 1]), {"m": np.array([0.1, 0.2])})


def test_gate_heatmap_values_are_the_gate_weights():
    weights = np.array([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8]])
    ax = plot_gate_weights(weights, ["purchase", "click"])
    np.testing.assert_allclose(ax.images[0].get_array(), weights)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["purchase", "click"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["expert 0", "expert 1", "expert 2"]
    assert [t.get_text() for t in ax.texts] == ["0.70", "0.20", "0.10", "0.05", "0.15", "0.80"]
    assert ax.get_title() == "average gate weights"


def test_gate_heatmap_averages_per_row_weights_from_a_tensor():
    per_row = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    ax = plot_gate_weights(per_row, ["a", "b"], expert_names=["x", "y"], title="gates")
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.5, 0.5], [0.5, 0.5]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y"]
    with pytest.raises(DataError, match="one task per name"):
        plot_gate_weights(np.ones((3, 2)) / 2, ["a", "b"])
