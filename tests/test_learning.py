"""Models must learn: on the bundled synthetic sample their test AUCs approach the oracle AUCs
(the AUCs of the hidden true probabilities, recorded in meta.json)."""
import pytest
import torch

from rechub_mini import ESMM, MMOE, BaseCVR, DataGenerator, MTLTrainer, SharedBottom
from rechub_mini.datasets import ali_ccp
from rechub_mini.datasets.ali_ccp_schema import DENSE_COLUMNS, SPARSE_COLUMNS


def fit_and_score(model, data, epochs=10, lr=3e-3):
    inputs = {s: ali_ccp.model_inputs(f, model.features) for s, f in data.splits().items()}
    train, val, test = DataGenerator(*inputs["train"]).generate_dataloader(
        x_val=inputs["val"][0], y_val=inputs["val"][1], x_test=inputs["test"][0],
        y_test=inputs["test"][1], batch_size=1024)
    trainer = MTLTrainer(model, optimizer_params={"lr": lr, "weight_decay": 1e-5},
                         n_epoch=epochs, earlystop_patience=2, seed=0, verbose=False)
    trainer.fit(train, val)
    return trainer.evaluate(trainer.model, test)


def esmm_features(data):
    return (ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, 16),
            ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, 16))


@pytest.mark.parametrize("pooling", ["concat", "sum"])
def test_esmm_approaches_the_oracle(sample_data, sample_meta, pooling):
    torch.manual_seed(0)
    model = ESMM(*esmm_features(sample_data), {"dims": [16, 8]}, {"dims": [16, 8]}, pooling=pooling)
    scores = fit_and_score(model, sample_data)
    oracle = sample_meta["splits"]["test"]["oracle_auc"]
    assert scores["cvr"] > oracle["cvr_clicked"] - 0.05
    assert scores["ctr"] > oracle["ctr"] - 0.05
    assert scores["ctcvr"] > oracle["ctcvr"] - 0.05
    assert scores["cvr"] <= oracle["cvr_clicked"] + 0.02  # an oracle is a ceiling, up to noise


def test_base_cvr_learns_cvr_from_clicked_rows(sample_data, sample_meta):
    torch.manual_seed(0)
    model = BaseCVR(*esmm_features(sample_data), {"dims": [16, 8]}, {"dims": [16, 8]})
    scores = fit_and_score(model, sample_data)
    oracle = sample_meta["splits"]["test"]["oracle_auc"]
    assert scores["cvr"] > oracle["cvr_clicked"] - 0.06
    assert scores["ctr"] > oracle["ctr"] - 0.06


@pytest.mark.parametrize("cls", [MMOE, SharedBottom])
def test_multi_task_models_learn_purchase_and_click(sample_data, sample_meta, cls):
    torch.manual_seed(0)
    features = ali_ccp.build_features(sample_data.train, SPARSE_COLUMNS + DENSE_COLUMNS, 4)
    tasks, towers = ["classification"] * 2, [{"dims": [8]}, {"dims": [8]}]
    if cls is MMOE:
        model = MMOE(features, tasks, 8, {"dims": [16]}, towers, task_names=["purchase", "click"])
    else:
        model = SharedBottom(features, tasks, {"dims": [16]}, towers, task_names=["purchase", "click"])
    scores = fit_and_score(model, sample_data)
    oracle = sample_meta["splits"]["test"]["oracle_auc"]
    # purchase over all impressions is the CTCVR label
    assert scores["purchase"] > oracle["ctcvr"] - 0.05
    assert scores["click"] > oracle["ctr"] - 0.05
