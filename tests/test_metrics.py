import math

import pytest
import torch

from rechub_mini import ESMM, DataError, SparseFeature
from rechub_mini.metrics import MetricWarning, TaskScores, auc, task_scores


def test_auc_matches_a_hand_computed_value():
    # pairs (pos, neg): (0.8 > 0.1), (0.8 > 0.4), (0.3 > 0.1), (0.3 < 0.4) -> 3 of 4
    assert auc([1, 0, 1, 0], [0.8, 0.1, 0.3, 0.4]) == pytest.approx(0.75)


def test_auc_with_one_class_is_nan_with_a_warning():
    with pytest.warns(MetricWarning, match="cvr.*needs both 0 and 1"):
        assert math.isnan(auc([0, 0, 0], [0.1, 0.2, 0.3], name="cvr"))


def test_auc_of_scores_that_are_not_finite_or_not_one_per_row_is_a_clear_error():
    with pytest.raises(DataError, match=r"AUC of ctr: 1 of 4 scores are NaN .*first at row 2"):
        auc([1, 0, 1, 0], [0.8, 0.1, float("nan"), 0.4], name="ctr")
    with pytest.raises(DataError, match="4 labels but 3 scores"):
        auc([1, 0, 1, 0], [0.8, 0.1, 0.4])


def test_esmm_cvr_is_scored_on_clicked_rows_only():
    model = ESMM([SparseFeature("u", 3)], [SparseFeature("i", 3)], {"dims": [4]}, {"dims": [4]})
    # purchase, click
    y = torch.tensor([[1, 1], [0, 1], [0, 0], [0, 0]], dtype=torch.float32)
    # pCVR ranks the clicked rows perfectly, but the unclicked rows score highest:
    # on all rows that would be AUC < 1, on clicked rows it is exactly 1.
    pred = torch.tensor([[0.6, 0.9, 0.54], [0.5, 0.8, 0.4], [0.9, 0.1, 0.09], [0.95, 0.2, 0.19]])
    scores = task_scores(model, y, pred)
    assert scores["cvr"] == 1.0
    assert scores["ctr"] == 1.0
    assert scores.names == ["cvr", "ctr", "ctcvr"]
    assert "cvr AUC 1.000 (clicked rows)" in repr(scores)


def test_task_scores_behave_like_a_list_and_print_a_table():
    s = TaskScores(["cvr", "ctr"], [0.61234, 0.7], ["AUC", "AUC"], ["clicked rows", ""])
    assert list(s) == [0.61234, 0.7] and s[1] == 0.7 and s["cvr"] == 0.61234
    assert s.as_dict() == {"cvr": 0.61234, "ctr": 0.7}
    assert str(s) == "cvr AUC 0.612 (clicked rows) | ctr AUC 0.700"
    s.digits = 4
    assert str(s).startswith("cvr AUC 0.6123")
    assert s.table().splitlines()[1].split() == ["cvr", "AUC", "0.6123", "clicked", "rows"]
