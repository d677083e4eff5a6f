"""The torch-rechub tutorial's way of working, through rechub_mini's public API: plain pandas,
features sized with `max() + 1`, label columns renamed, two task types for ESMM."""
import warnings

import pandas as pd
import pytest
import torch

from rechub_mini import ESMM, MMOE, DataGenerator, DenseFeature, MTLTrainer, SparseFeature
from rechub_mini.datasets.ali_ccp_schema import DENSE_COLUMNS, SPARSE_COLUMNS
from rechub_mini.trainer import LabelLeakWarning


@pytest.fixture(scope="module")
def frames(sample_dir):
    parts = [pd.read_csv(sample_dir / f"ali_ccp_{s}_sample.csv") for s in ("train", "val", "test")]
    everything = pd.concat(parts, axis=0, ignore_index=True)
    everything = everything.rename(columns={"purchase": "cvr_label", "click": "ctr_label"})
    everything["ctcvr_label"] = everything["cvr_label"] * everything["ctr_label"]
    ends = [len(parts[0]), len(parts[0]) + len(parts[1])]
    return everything, ends


def loaders(data, ends, columns, labels):
    pieces = [data.iloc[:ends[0]], data.iloc[ends[0]:ends[1]], data.iloc[ends[1]:]]
    xs = [{c: p[c].values for c in columns} for p in pieces]
    ys = [p[labels].values for p in pieces]
    return DataGenerator(xs[0], ys[0]).generate_dataloader(
        x_val=xs[1], y_val=ys[1], x_test=xs[2], y_test=ys[2], batch_size=1024)


def test_esmm_flow_with_two_task_types_trains_the_cvr_tower(frames, tmp_path):
    data, ends = frames
    item_columns = ["205", "206", "207", "210", "216"]
    user_columns = [c for c in SPARSE_COLUMNS if c not in item_columns]
    torch.manual_seed(7)
    model = ESMM([SparseFeature(c, data[c].max() + 1, embed_dim=16) for c in user_columns],
                 [SparseFeature(c, data[c].max() + 1, embed_dim=16) for c in item_columns],
                 cvr_params={"dims": [16, 8]}, ctr_params={"dims": [16, 8]})
    cvr_before = [p.detach().clone() for p in model.cvr_tower.parameters()]
    train, val, test = loaders(data, ends, SPARSE_COLUMNS,
                               ["cvr_label", "ctr_label", "ctcvr_label"])
    trainer = MTLTrainer(model, task_types=["classification", "classification"],
                         optimizer_params={"lr": 3e-3, "weight_decay": 1e-5}, n_epoch=3,
                         earlystop_patience=1, device="cpu", model_path=tmp_path, verbose=False)
    trainer.fit(train, val)
    auc = trainer.evaluate(trainer.model, test)
    assert len(auc) == 3 and auc.names == ["cvr", "ctr", "ctcvr"]
    assert auc[0] > 0.65  # CVR on clicked rows: learned, although never supervised directly
    assert all(not torch.equal(b, p) for b, p in zip(cvr_before, model.cvr_tower.parameters()))
    assert (tmp_path / "model.pth").exists()


def test_mmoe_flow_with_sparse_and_dense_features(frames):
    data, ends = frames
    torch.manual_seed(7)
    features = [SparseFeature(c, data[c].max() + 1, embed_dim=4) for c in SPARSE_COLUMNS] + \
               [DenseFeature(c) for c in DENSE_COLUMNS]
    task_types = ["classification", "classification"]
    model = MMOE(features, task_types, 8, expert_params={"dims": [16]},
                 tower_params_list=[{"dims": [8]}, {"dims": [8]}])
    train, val, test = loaders(data, ends, SPARSE_COLUMNS + DENSE_COLUMNS,
                               ["cvr_label", "ctr_label"])
    trainer = MTLTrainer(model, task_types=task_types, optimizer_params={"lr": 3e-3},
                         n_epoch=2, earlystop_patience=30, verbose=False)
    trainer.fit(train, val)
    auc = trainer.evaluate(trainer.model, test)
    assert len(auc) == 2 and min(auc) > 0.6


def test_the_seed_label_leak_is_flagged(frames):
    data, ends = frames
    # the seed picks "every column but the two labels" after adding ctcvr_label
    columns = [c for c in data.columns if c not in DENSE_COLUMNS + ["cvr_label", "ctr_label"]]
    assert "ctcvr_label" in columns
    model = MMOE([SparseFeature(c, data[c].max() + 1, embed_dim=4) for c in columns],
                 ["classification"] * 2, 2, {"dims": [4]}, [{}, {}])
    train, val, _ = loaders(data, ends, columns, ["cvr_label", "ctr_label"])
    with pytest.warns(LabelLeakWarning, match="'ctcvr_label' equals the label y\\[:, 0\\]"):
        MTLTrainer(model, n_epoch=1, verbose=False).fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelLeakWarning)
        clean = [c for c in columns if c != "ctcvr_label"]
        model = MMOE([SparseFeature(c, data[c].max() + 1, embed_dim=4) for c in clean],
                     ["classification"] * 2, 2, {"dims": [4]}, [{}, {}])
        train, _, _ = loaders(data, ends, clean, ["cvr_label", "ctr_label"])
        MTLTrainer(model, n_epoch=1, verbose=False).fit(train)
