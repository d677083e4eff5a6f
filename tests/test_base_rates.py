"""Outputs that start at the labels' averages (TaskHeadsModel.start_at_base_rates), and when
the trainer calls it."""
import math

import numpy as np
import pytest
import torch

from rechub_mini import ESMM, MMOE, DataError, DataGenerator, MTLTrainer, SharedBottom, SparseFeature
from rechub_mini.models.base import TaskHeadsModel

FEATURES = [SparseFeature("u", 50, 4), SparseFeature("i", 40, 4)]


def rare_purchase_data(n, seed):
    """Clicks at ~20 %, purchases at ~1 %, both driven by the ids; and a regression target."""
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, 50, n), rng.integers(0, 40, n)
    click = rng.random(n) < 1 / (1 + np.exp(-(np.sin(u) + np.cos(i) - 1.5)))
    purchase = click & (rng.random(n) < 1 / (1 + np.exp(-(2 * np.sin(i * 3) - 2.5))))
    return {"u": u, "i": i}, np.stack([purchase, click], 1).astype(np.float32)


def output_biases(model: TaskHeadsModel) -> list[float]:
    return [t.net[-1].bias.item() for t in model.towers]


def shared_bottom(seed=0):
    torch.manual_seed(seed)
    return SharedBottom(FEATURES, ["classification", "regression", "classification"],
                        {"dims": [8]}, [{"dims": [4]}, {}, {"dims": [4]}])


def test_biases_are_the_smoothed_log_odds_and_the_mean():
    y = torch.tensor([[1.0, 2.0, 0.0], [0.0, 4.0, 0.0], [0.0, 9.0, 0.0], [0.0, -3.0, 0.0]])
    fresh, started = shared_bottom(), shared_bottom()
    started.start_at_base_rates(y)
    rate = 1.5 / 5  # one positive in four rows: (1 + 0.5) / (4 + 1)
    no_positive = 0.5 / 5
    assert output_biases(started) == pytest.approx(
        [math.log(rate / (1 - rate)), 3.0, math.log(no_positive / (1 - no_positive))])
    # only the output layers moved (Linear, ReLU, Linear; the second task has no hidden layer)
    built = dict(fresh.named_parameters())
    changed = [name for name, p in started.named_parameters() if not torch.equal(p, built[name])]
    assert changed == ["towers.0.net.2.bias", "towers.1.net.0.bias", "towers.2.net.2.bias"]


def test_mean_prediction_starts_near_the_base_rate():
    x, y = rare_purchase_data(4000, 0)
    loader = DataGenerator(x, y).generate_dataloader(batch_size=4000)[0]
    torch.manual_seed(0)
    model = MMOE(FEATURES, ["classification"] * 2, 3, {"dims": [8]}, [{"dims": [4]}] * 2)
    trainer = MTLTrainer(model, verbose=False)
    before = trainer.predict(model, loader).mean(0)
    model.start_at_base_rates(torch.as_tensor(y))
    after = trainer.predict(model, loader).mean(0)
    rates = y.mean(0)
    assert np.all(np.abs(before - rates) > 0.2)  # built with bias 0: near 50 %
    assert np.all(np.abs(after - rates) < 0.25 * rates)


def test_bad_labels_are_named_and_esmm_is_left_as_built():
    model = MMOE(FEATURES, ["classification"] * 2, 2, {"dims": [4]}, [{}, {}])
    with pytest.raises(DataError, match="must hold only 0 and 1"):
        model.start_at_base_rates(torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(DataError, match="Labels have 3 columns"):
        model.start_at_base_rates(torch.zeros(4, 3))
    esmm = ESMM(FEATURES[:1], FEATURES[1:], {"dims": [4]}, {"dims": [4]})
    before = {k: v.clone() for k, v in esmm.state_dict().items()}
    esmm.start_at_base_rates(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert all(torch.equal(before[k], v) for k, v in esmm.state_dict().items())


def test_fit_starts_a_new_run_at_the_base_rates_once(monkeypatch):
    x, y = rare_purchase_data(2000, 0)
    loader = DataGenerator(x, y).generate_dataloader(batch_size=500)[0]
    calls = []
    original = MMOE.start_at_base_rates
    monkeypatch.setattr(MMOE, "start_at_base_rates",
                        lambda self, labels: calls.append(labels.clone()) or original(self, labels))
    model = MMOE(FEATURES, ["classification"] * 2, 2, {"dims": [4]}, [{}, {}])
    trainer = MTLTrainer(model, n_epoch=1, verbose=False)
    trainer.fit(loader)
    assert len(calls) == 1 and torch.equal(calls[0], loader.y)
    trainer.fit(loader)  # the same trainer goes on training: its outputs are not reset
    assert len(calls) == 1
    MTLTrainer(model, n_epoch=1, verbose=False, start_at_base_rates=False).fit(loader)
    assert len(calls) == 1
    # a new trainer for a trained model (as when a notebook's training cell is run again)
    # goes on from the trained weights: resetting its output biases would undo training
    biases = [t.net[-1].bias.detach().clone() for t in model.towers]
    MTLTrainer(model, n_epoch=1, verbose=False).fit(loader)
    assert len(calls) == 1
    assert any(not torch.equal(b, t.net[-1].bias) for b, t in zip(biases, model.towers))
    fresh = MMOE(FEATURES, ["classification"] * 2, 2, {"dims": [4]}, [{}, {}])
    MTLTrainer(fresh, n_epoch=1, verbose=False).fit(loader)
    assert len(calls) == 2


def test_starting_at_the_base_rate_learns_a_rare_label_faster():
    """The first epoch's purchase loss and the purchase AUC after it, same seed both ways."""
    x, y = rare_purchase_data(20000, 0)
    xt, yt = rare_purchase_data(20000, 1)
    train, _, test = DataGenerator(x, y).generate_dataloader(x_test=xt, y_test=yt,
                                                             batch_size=256, seed=0)
    results = {}
    for start in (False, True):
        torch.manual_seed(0)
        model = MMOE(FEATURES, ["classification"] * 2, 3, {"dims": [8]}, [{"dims": [4]}] * 2,
                     task_names=["purchase", "click"])
        trainer = MTLTrainer(model, n_epoch=1, seed=0, verbose=False,
                             start_at_base_rates=start)
        history = trainer.fit(train)
        results[start] = (history["train_loss"]["purchase"][0],
                          trainer.evaluate(model, test)["purchase"])
    (loss_zero, auc_zero), (loss_started, auc_started) = results[False], results[True]
    assert loss_started < 0.5 * loss_zero
    assert auc_started > auc_zero
