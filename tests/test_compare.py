"""The lessons' train-and-compare helpers: splits, loaders, training, gates, the sweep."""
import numpy as np
import pytest
import torch

from rechub_mini import MMOE, SharedBottom
from rechub_mini.compare import (average_gate_weights, fit_model, gate_difference, make_loaders,
                                 relatedness_sweep, split_in_order, sweep_difference)
from rechub_mini.datasets.ali_ccp import build_features
from rechub_mini.datasets.ali_ccp_schema import DENSE_COLUMNS, SPARSE_COLUMNS
from rechub_mini.datasets.synthetic import generate_ali_ccp, oracle_aucs
from rechub_mini.errors import DataError


@pytest.fixture(scope="module")
def small():
    frame, _ = generate_ali_ccp(2000, seed=3, vocab_scale=0.0005)
    return frame, split_in_order(frame)


def mmoe(features):
    torch.manual_seed(0)
    return MMOE(features, ["classification"] * 2, 3, {"dims": [8]}, [{"dims": [4]}] * 2,
                task_names=["purchase", "click"])


def shared_bottom(features):
    torch.manual_seed(0)
    return SharedBottom(features, ["classification"] * 2, {"dims": [8]}, [{"dims": [4]}] * 2,
                        task_names=["purchase", "click"])


def test_split_in_order_keeps_rows_and_maps_unseen_ids(small):
    frame, data = small
    assert [len(f) for f in data.splits().values()] == [1600, 200, 200]
    assert data.val["click"].tolist() == frame["click"].iloc[1600:1800].tolist()
    for column in SPARSE_COLUMNS:
        seen = set(data.train[column]) | {0}
        assert set(data.test[column]) <= seen
    assert set(data.unseen_ids_mapped_to_0) == {"val", "test"}
    with pytest.raises(DataError, match="summing to 1"):
        split_in_order(frame, (0.8, 0.1))


def test_make_loaders_uses_the_features_and_labels(small):
    _, data = small
    features = build_features(data.train, ["101", "D508"], embed_dim=4)
    train, val, test = make_loaders(data, features, labels=["click", "D508"], batch_size=256)
    assert sorted(train.x) == ["101", "D508"]
    assert (train.num_rows, val.num_rows, test.num_rows) == (1600, 200, 200)
    np.testing.assert_allclose(test.y[:, 1].numpy(), data.test["D508"].to_numpy())
    assert train.shuffle and not val.shuffle


def test_fit_model_is_reproducible_and_gates_are_distributions(small):
    _, data = small
    features = build_features(data.train, SPARSE_COLUMNS + DENSE_COLUMNS, embed_dim=4)
    loaders = make_loaders(data, features, ["purchase", "click"])
    runs = [fit_model(mmoe(features), loaders, n_epoch=2) for _ in range(2)]
    assert runs[0].history == runs[1].history
    assert len(runs[0].history["epoch"]) == 2
    weights = average_gate_weights(runs[0].model, loaders[2])
    assert weights.shape == (2, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    every_row = torch.cat([runs[0].model.gate_weights(x) for x, _ in loaders[2]]).mean(0)
    np.testing.assert_allclose(weights, every_row.numpy(), rtol=1e-5)


def test_gate_difference():
    assert gate_difference(np.array([[0.5, 0.5], [0.5, 0.5]])) == 0.0
    assert gate_difference(np.array([[1.0, 0.0], [0.0, 1.0]])) == 1.0
    assert gate_difference(np.array([[0.6, 0.4, 0.0], [0.2, 0.4, 0.4]])) == pytest.approx(0.4)
    with pytest.raises(DataError, match="two tasks"):
        gate_difference(np.ones((3, 2)) / 2)


def test_relatedness_sweep_rows():
    table = relatedness_sweep({"MMoE": mmoe, "shared bottom": shared_bottom}, (0.9, -0.5),
                              rows=2000, n_epoch=1)
    assert table["model"].tolist() == ["oracle", "MMoE", "shared bottom"] * 2
    assert table["relatedness"].tolist() == [0.9] * 3 + [-0.5] * 3
    assert table[["purchase", "click"]].notna().all().all()
    # the oracle rows: purchase over all impressions is CTCVR, click is CTR, on the test split
    for r in (0.9, -0.5):
        frame, truth = generate_ali_ccp(2000, 0, preset="tutorial", vocab_scale=0.0005,
                                        task_relatedness=r)
        test = split_in_order(frame).test
        rows = slice(len(frame) - len(test), None)
        oracle = oracle_aucs(test, truth["p_ctr"][rows], truth["p_cvr"][rows])
        row = table[(table["relatedness"] == r) & (table["model"] == "oracle")].iloc[0]
        assert (row["purchase"], row["click"]) == (oracle["ctcvr"], oracle["ctr"])
    assert table["best epoch"].isna().tolist() == [True, False, False] * 2
    assert table["best epoch"].dropna().tolist() == [1] * 4
    gates = table["gate difference"]
    assert gates.notna().tolist() == [False, True, False] * 2
    assert ((gates.dropna() >= 0) & (gates.dropna() <= 1)).all()
    # the two tasks are less alike when the purchase drivers oppose the click drivers
    corr = table.groupby("relatedness")["true corr"].first()
    assert corr[0.9] > corr[-0.5]
    gap = sweep_difference(table, "MMoE", "shared bottom")
    assert gap.index.tolist() == [0.9, -0.5] and gap.columns.tolist() == ["purchase", "click"]
    rows = table.set_index(["relatedness", "model"])
    for r in (0.9, -0.5):
        for task in ("purchase", "click"):
            expected = rows.loc[(r, "MMoE"), task] - rows.loc[(r, "shared bottom"), task]
            assert gap.loc[r, task] == pytest.approx(expected)
    with pytest.raises(DataError, match="MMoE"):
        sweep_difference(table, "MMoE", "PLE")
