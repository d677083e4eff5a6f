"""Tests of the data lesson's summaries (rechub_mini.datasets.explore)."""
import math

import numpy as np
import pandas as pd
import pytest

from rechub_mini.datasets import explore
from rechub_mini.datasets.ali_ccp_schema import REAL_STATS, SPARSE_COLUMNS
from rechub_mini.datasets.synthetic import generate_ali_ccp
from rechub_mini.errors import DataError


def tiny():
    return pd.DataFrame({"click": [1, 1, 0, 0, 1, 0, 0, 0],
                         "purchase": [1, 0, 0, 0, 0, 0, 0, 0],
                         "301": [1, 1, 1, 2, 2, 3, 3, 0]})


def test_label_rates_counts_and_rates():
    r = explore.label_rates(tiny())
    assert (r["rows"], r["clicks"], r["purchases"]) == (8, 3, 1)
    assert r["ctr"] == 3 / 8 and r["cvr"] == 1 / 3 and r["ctcvr"] == 1 / 8
    assert math.isclose(r["ctcvr"], r["ctr"] * r["cvr"])


def test_label_rates_without_clicks_has_nan_cvr_and_empty_frame_is_an_error():
    frame = tiny().assign(click=0, purchase=0)
    assert math.isnan(explore.label_rates(frame)["cvr"])
    with pytest.raises(DataError, match="0 rows"):
        explore.label_rates(frame.iloc[:0])


def test_label_rate_table_has_a_row_per_split_and_the_real_dataset():
    table = explore.label_rate_table({"train": tiny(), "test": tiny().iloc[:4]})
    assert list(table.index) == ["train", "test", "real Ali-CCP"]
    assert table.loc["test", "clicks"] == 2 and table["rows"].dtype == np.int64
    assert table.loc["real Ali-CCP", "ctr"] == REAL_STATS["ctr"]
    assert "real Ali-CCP" not in explore.label_rate_table({"a": tiny()}, real=False).index


def test_field_table_covers_every_sparse_field_once_in_four_groups(sample_data):
    table = explore.field_table(sample_data.train)
    assert sorted(table["field"]) == sorted(SPARSE_COLUMNS)
    assert set(table["group"]) == {"user", "item", "combination", "context"}
    position = table.set_index("field").loc["301"]
    assert position["group"] == "context" and position["ids"] == 4
    assert position["real_ids"] == 4
    assert table.set_index("field")["real_ids"].isna().sum() == 5  # not reported in the paper


def test_id_counts_leave_out_the_unknown_id_and_respect_vocab_size():
    values = np.array([0, 0, 1, 3, 3, 3])
    assert explore.id_counts(values).tolist() == [1, 0, 3]
    assert explore.id_counts(values, vocab_size=6).tolist() == [1, 0, 3, 0, 0]
    with pytest.raises(DataError, match="vocab_size"):
        explore.id_counts(values, vocab_size=3)
    assert explore.id_counts(np.array([], dtype=np.int32), vocab_size=3).tolist() == [0, 0]
    assert explore.id_counts(np.array([], dtype=np.int32)).tolist() == []
    with pytest.raises(DataError, match=">= 0"):
        explore.id_counts(np.array([1, -1]))


def test_popularity_curve_share_and_top_share():
    values = pd.Series([1] * 6 + [2] * 3 + [3] + [0] * 5)
    assert explore.popularity_curve(values).tolist() == [6, 3, 1]
    assert explore.popularity_curve(pd.Series([5, 5, 1])).tolist() == [2, 1]  # 2..4 never occur
    assert explore.ids_seen(values).tolist() == [1, 2, 3]  # 0 is unknown, not an id
    assert explore.share_of_ids_seen_fewer_than(values, 3) == pytest.approx(1 / 3)
    # ids that never occur are not counted as rare; ids asked about explicitly are
    gaps = pd.Series([1, 1, 1, 9, 9, 9, 5])
    assert explore.share_of_ids_seen_fewer_than(gaps, 3) == pytest.approx(1 / 3)
    assert explore.share_of_ids_seen_fewer_than(gaps, 3, ids=[1, 5, 9, 12]) == pytest.approx(2 / 4)
    assert explore.top_share(values, 0.34) == pytest.approx(6 / 10)  # one id of three
    assert explore.top_share(gaps, 0.5) == pytest.approx(6 / 7)  # 1 and 9 of three ids seen
    with pytest.raises(DataError, match="ids must be a list of ids"):
        explore.share_of_ids_seen_fewer_than(gaps, 3, 10)  # once the vocab_size argument
    assert explore.top_share(values, 1.0) == 1.0
    with pytest.raises(DataError, match="fraction"):
        explore.top_share(values, 0)


def test_clicked_vs_all_shares_sum_to_one_and_keep_values_without_clicks():
    table = explore.clicked_vs_all(tiny(), "301")
    assert list(table.index) == [0, 1, 2, 3]
    assert table["all"].sum() == pytest.approx(1) and table["clicked"].sum() == pytest.approx(1)
    assert table.loc[1, "clicked"] == pytest.approx(2 / 3) and table.loc[3, "clicked"] == 0
    assert table.loc[1, "ratio"] == pytest.approx((2 / 3) / (3 / 8))


def test_mean_on_clicked_vs_all_and_length_check():
    means = explore.mean_on_clicked_vs_all(np.array([0.1, 0.3, 0.5, 0.7]), np.array([0, 1, 0, 1]))
    assert means == pytest.approx({"all rows": 0.4, "clicked rows": 0.5})
    with pytest.raises(DataError, match="same rows"):
        explore.mean_on_clicked_vs_all(np.zeros(3), np.zeros(4))


def test_same_values_ignores_dtypes_but_not_values_or_column_order():
    a = tiny()
    b = a.astype({"click": np.int8, "301": np.int32})
    assert explore.same_values(a, b)
    assert not explore.same_values(a, b.assign(click=1))
    assert not explore.same_values(a, b[["purchase", "click", "301"]])
    assert not explore.same_values(a, b.iloc[:-1])


def test_clicked_impressions_are_a_biased_sample_of_the_generated_truth():
    frame, truth = generate_ali_ccp(20_000, seed=1)
    means = explore.mean_on_clicked_vs_all(truth["p_cvr"], frame["click"])
    assert means["clicked rows"] > means["all rows"]  # task_relatedness 0.3 > 0
    positions = explore.clicked_vs_all(frame, "301")
    assert positions.loc[1, "ratio"] > 1 > positions.loc[4, "ratio"]  # top slots draw clicks
