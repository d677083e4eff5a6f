import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rechub_mini import (ESMM, MMOE, BaseCVR, DataError, DataGenerator, DenseFeature,
                         MTLTrainer, SharedBottom, SparseFeature)
from rechub_mini.models.esmm import log1mexp

USER = [SparseFeature("u1", 20, 8), SparseFeature("u2", 5, 8)]
ITEM = [SparseFeature("i1", 30, 8)]
MIXED = [SparseFeature("u1", 20, 4), SparseFeature("i1", 30, 6), DenseFeature("d1")]


def batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {"u1": torch.randint(0, 20, (n,), generator=g), "u2": torch.randint(0, 5, (n,), generator=g),
         "i1": torch.randint(0, 30, (n,), generator=g), "d1": torch.rand(n, generator=g)}
    click = (torch.rand(n, generator=g) < 0.5).float()
    purchase = click * (torch.rand(n, generator=g) < 0.5).float()
    return x, torch.stack([purchase, click], 1)


def test_esmm_outputs_cvr_ctr_and_their_product():
    model = ESMM(USER, ITEM, {"dims": [16, 8]}, {"dims": [16, 8]})
    x, _ = batch()
    out = model(x)
    assert out.shape == (64, 3)
    assert torch.allclose(out[:, 2], out[:, 0] * out[:, 1])
    assert ((out > 0) & (out < 1)).all()


def test_esmm_loss_is_ctr_plus_ctcvr_bce():
    model = ESMM(USER, ITEM, {"dims": [8]}, {"dims": [8]})
    x, y = batch()
    total, parts = model.loss(x, y)
    out = model(x)
    ctr = F.binary_cross_entropy(out[:, 1], y[:, 1])
    ctcvr = F.binary_cross_entropy(out[:, 2], y[:, 0] * y[:, 1])
    assert torch.allclose(parts["ctr"], ctr, atol=1e-5)
    assert torch.allclose(parts["ctcvr"], ctcvr, atol=1e-5)
    assert torch.allclose(total, ctr + ctcvr, atol=1e-5)
    # the third label column is optional and does not change the loss
    total3, _ = model.loss(x, torch.cat([y, (y[:, :1] * y[:, 1:])], 1))
    assert torch.allclose(total, total3)


def test_log1mexp_is_finite_for_tiny_and_near_one_probabilities():
    log_p = torch.tensor([-50.0, -1e-3, -0.5, -3.0])
    expected = torch.log(1 - torch.exp(log_p.double())).float()
    assert torch.allclose(log1mexp(log_p), expected, rtol=1e-4)
    assert torch.isfinite(log1mexp(torch.tensor([0.0, -1e-12]))).all()


@pytest.mark.parametrize("task_types", [["classification"] * 2, ["classification"] * 3, None])
def test_esmm_cvr_tower_trains_whatever_task_types_the_trainer_gets(task_types):
    torch.manual_seed(0)
    model = ESMM(USER, ITEM, {"dims": [8]}, {"dims": [8]})
    before = [p.detach().clone() for p in model.cvr_tower.parameters()]
    x, y = batch(256)
    loader = DataGenerator({k: v.numpy() for k, v in x.items() if k != "d1"}, y.numpy()) \
        .generate_dataloader(batch_size=64)[0]
    MTLTrainer(model, task_types=task_types, n_epoch=1, verbose=False,
               optimizer_params={"lr": 1e-2, "weight_decay": 1e-5}).fit(loader)
    moved = [not torch.equal(b, p) for b, p in zip(before, model.cvr_tower.parameters())]
    assert all(moved)


def test_esmm_sum_pooling_sums_fields():
    torch.manual_seed(0)
    # a large and a small table; a dense user feature between them is no field to sum
    user = [SparseFeature("u1", 2000, 8), DenseFeature("d1"), SparseFeature("u2", 5, 8)]
    model = ESMM(user, ITEM, {"dims": [8]}, {"dims": [8]}, pooling="sum")
    assert model.cvr_tower.net[0].in_features == 8 + 8 + 1  # user sum + item sum + dense
    x, _ = batch()
    small, large = model.embedding.tables[0].weight, model.embedding.tables[1].weight
    fields = model.embedding.field_embeddings(x)  # in the order the features were given
    assert torch.equal(fields[:, 0], large[x["u1"]])
    assert torch.equal(fields[:, 1], small[x["u2"]])
    assert torch.equal(fields[:, 2], small[x["i1"] + 5])
    h = torch.cat([large[x["u1"]] + small[x["u2"]], small[x["i1"] + 5], x["d1"][:, None]], dim=1)
    cvr_logit, ctr_logit = model.logits(x)
    assert torch.allclose(cvr_logit, model.cvr_tower(h).squeeze(1))
    assert torch.allclose(ctr_logit, model.ctr_tower(h).squeeze(1))


def test_base_cvr_ignores_purchase_labels_of_unclicked_rows():
    torch.manual_seed(0)
    model = BaseCVR(USER, ITEM, {"dims": [8]}, {"dims": [8]})
    x, y = batch()
    _, parts = model.loss(x, y)
    noisy = y.clone()
    noisy[y[:, 1] == 0, 0] = 1  # labels the model must never see
    _, noisy_parts = model.loss(x, noisy)
    assert torch.equal(parts["cvr_clicked"], noisy_parts["cvr_clicked"])
    # the mean BCE over the clicked rows, not over all rows
    cvr_logit, ctr_logit = model.logits(x)
    clicked = y[:, 1] == 1
    assert 0 < clicked.sum() < len(y)
    assert torch.allclose(parts["cvr_clicked"], F.binary_cross_entropy_with_logits(
        cvr_logit[clicked], y[clicked, 0]), atol=1e-6)
    assert torch.allclose(parts["ctr"], F.binary_cross_entropy_with_logits(ctr_logit, y[:, 1]))
    no_clicks = y.clone()
    no_clicks[:] = 0
    assert model.loss(x, no_clicks)[1]["cvr_clicked"] == 0  # a batch without clicks


def test_mmoe_gates_are_distributions_and_tasks_can_be_regression():
    torch.manual_seed(0)
    model = MMOE(MIXED, ["classification", "regression"], 4, {"dims": [16, 8]},
                 [{"dims": [8]}, {"dims": [4]}], task_names=["click", "dwell"])
    x, y = batch()
    gates = model.gate_weights(x)
    assert gates.shape == (64, 2, 4)
    assert torch.allclose(gates.sum(-1), torch.ones(64, 2))
    out = model(x)
    assert ((out[:, 0] > 0) & (out[:, 0] < 1)).all()
    y_reg = torch.stack([y[:, 1], torch.randn(64) * 5], 1)
    _, parts = model.loss(x, y_reg)
    assert torch.allclose(parts["dwell"], F.mse_loss(model.raw_outputs(x)[:, 1], y_reg[:, 1]))


def test_mmoe_experts_match_separate_mlps():
    torch.manual_seed(0)
    model = MMOE(MIXED, ["classification"], 3, {"dims": [5]}, [{"dims": [2]}])
    h = torch.randn(7, model.embedding.output_dim)
    out = model.experts(h)
    for e in range(3):
        expected = torch.relu(h @ model.experts.weights[0][e] + model.experts.biases[0][e])
        assert torch.allclose(out[:, e], expected, atol=1e-6)


def test_mmoe_mixes_experts_with_each_tasks_gate():
    torch.manual_seed(0)
    model = MMOE(MIXED, ["classification"] * 2, 3, {"dims": [5]}, [{"dims": [2]}, {"dims": [3]}])
    x, _ = batch()
    gates = model.gate_weights(x)
    experts = model.experts(model.embedding(x))
    mixed = torch.bmm(gates, experts)  # [batch, tasks, hidden], the textbook formula
    expected = torch.cat([tower(mixed[:, i]) for i, tower in enumerate(model.towers)], dim=1)
    assert torch.allclose(model.raw_outputs(x), expected, atol=1e-6)


@pytest.mark.parametrize("dim", [4, 16])
def test_small_table_lookup_gradient_sums_repeated_ids(dim):
    from rechub_mini.models.layers import SmallTableLookup
    weight = torch.randn(30, dim, requires_grad=True)
    ids = torch.randint(0, 30, (500,), generator=torch.Generator().manual_seed(dim))
    upstream = torch.randn(500, dim)
    SmallTableLookup.apply(weight, ids).backward(upstream)
    ours = weight.grad.clone()
    weight.grad = None
    weight.index_select(0, ids).backward(upstream)
    assert torch.allclose(ours, weight.grad, atol=1e-5)
    assert torch.equal(SmallTableLookup.apply(weight, ids), weight[ids])


def test_shared_bottom_gives_each_task_its_own_tower_over_one_bottom():
    torch.manual_seed(0)
    model = SharedBottom(MIXED, ["classification", "regression"], {"dims": [16]},
                         [{"dims": [8]}, {"dims": [4]}])
    x, _ = batch()
    h = model.bottom(model.embedding(x))
    expected = torch.cat([model.towers[0](h), model.towers[1](h)], dim=1)
    assert torch.allclose(model.raw_outputs(x), expected)
    assert not torch.allclose(expected[:, 0], expected[:, 1])  # two towers, not one twice
    assert torch.allclose(model(x), torch.stack([torch.sigmoid(expected[:, 0]),
                                                 expected[:, 1]], 1))


def test_model_arguments_get_clear_errors():
    with pytest.raises(DataError, match="2 task_types but 1 tower_params_list"):
        MMOE(MIXED, ["classification"] * 2, 4, {"dims": [8]}, [{"dims": [8]}])
    with pytest.raises(DataError, match="SharedBottom got 1 task_types but 2 tower_params_list "
                                        "entries; give one tower per task"):
        SharedBottom(MIXED, ["classification"], {"dims": [8]}, [{}, {}])
    with pytest.raises(DataError, match="Unknown task type 'binary'"):
        SharedBottom(MIXED, ["binary"], {"dims": [8]}, [{}])
    with pytest.raises(DataError, match=r"cvr_params has unknown options \['dim'\]"):
        ESMM(USER, ITEM, {"dim": [8]}, {"dims": [8]})
    with pytest.raises(DataError, match="pooling"):
        ESMM(USER, ITEM, {}, {}, pooling="mean")
    sizes = r"\['dims'\] must be a list of layer sizes of at least 1"
    with pytest.raises(DataError, match=r"ctr_params" + sizes + r".*got \[16, 0\]"):
        ESMM(USER, ITEM, {"dims": [8]}, {"dims": [16, 0]})
    with pytest.raises(DataError, match=r"cvr_params" + sizes + ".*got 8"):
        ESMM(USER, ITEM, {"dims": 8}, {"dims": [8]})
    with pytest.raises(DataError, match=r"expert_params" + sizes):
        MMOE(MIXED, ["classification"] * 2, 4, {"dims": [-3]}, [{}, {}])
    with pytest.raises(DataError, match=r"bottom_params" + sizes):
        SharedBottom(MIXED, ["classification"], {"dims": [0]}, [{}])
    with pytest.raises(DataError, match=r"expert_params\['dropout'\] must be a number in \[0, 1\)"):
        MMOE(MIXED, ["classification"] * 2, 4, {"dims": [8], "dropout": 1.5}, [{}, {}])
    with pytest.raises(DataError, match=r"tower_params_list\[1\]\['dropout'\]"):
        MMOE(MIXED, ["classification"] * 2, 4, {"dims": [8]}, [{}, {"dropout": -0.1}])
    for n_expert in (2.7, None, 0, "4"):  # 2.7 used to build 2 experts without a word
        with pytest.raises(DataError, match=rf"n_expert must be a whole number of at least 1, "
                                            rf"got {n_expert!r}"):
            MMOE(MIXED, ["classification"] * 2, n_expert, {"dims": [8]}, [{}, {}])
    assert MMOE(MIXED, ["classification"] * 2, np.int64(3), {"dims": [8]},
                [{}, {}]).init_args["n_expert"] == 3


def test_float_ids_in_forward_name_only_the_float_columns():
    model = ESMM(USER, ITEM, {"dims": [8]}, {"dims": [8]})
    x, _ = batch()
    float_column = next(iter(x))
    x[float_column] = x[float_column].float()
    with pytest.raises(DataError, match=rf"Sparse features \['{float_column}'\] must hold integer"):
        model(x)


def test_tables_larger_than_the_memory_name_their_features():
    from rechub_mini.models.layers import physical_memory_bytes
    if physical_memory_bytes() is None:
        pytest.skip("this OS does not tell the machine's memory")
    raw_ids = SparseFeature("item_hash", 2**40, 8)  # vocab_size from raw ids, not re-encoded
    with pytest.raises(DataError, match=r"would need 32,768.0 GiB, more than this machine's.*"
                                        r"'item_hash' \(vocab_size 1,099,511,627,776\).*re-encode"):
        MMOE([raw_ids] + MIXED, ["classification"] * 2, 2, {"dims": [8]}, [{}, {}])


def test_out_of_range_id_in_forward_names_feature_not_index_error():
    model = ESMM(USER, ITEM, {"dims": [8]}, {"dims": [8]})
    x, _ = batch()
    x["i1"][5] = 30
    with pytest.raises(DataError, match=r"'i1' has id 30 \(first too large at row 5\)"):
        model(x)


def test_esmm_labels_are_checked():
    model = ESMM(USER, ITEM, {"dims": [8]}, {"dims": [8]})
    with pytest.raises(DataError, match="purchase = 1 but click = 0.*row 1"):
        model.check_labels(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(DataError, match="only 0 and 1, found 2.0 at row 0"):
        model.check_labels(torch.tensor([[2.0, 1.0]]))
    with pytest.raises(DataError, match="1 columns; ESMM needs 2 or 3"):
        model.check_labels(torch.tensor([[1.0]]))
    with pytest.raises(DataError, match=r"y\[:, 2\] must be click x purchase, but differs at "
                                        r"row 1"):
        model.check_labels(torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]))
    model.check_labels(torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]))  # a correct third


def test_regression_labels_must_be_finite():
    model = MMOE(MIXED, ["classification", "regression"], 2, {"dims": [4]}, [{}, {}],
                 task_names=["click", "spend"])
    y = torch.tensor([[0.0, 1.5], [1.0, 2.0], [0.0, float("nan")]])
    with pytest.raises(DataError, match=r"Regression label column 1 \(spend\) has a non-finite "
                                        r"value at row 2"):
        model.check_labels(y)
