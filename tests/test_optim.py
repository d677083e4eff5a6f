"""EmbeddingAdam: the SparseAdam update, with repeated ids merged without a sort."""
import copy
from unittest import mock

import pytest
import torch
from torch import nn

from rechub_mini import ESMM, SparseFeature
from rechub_mini.optim import (NARROW_WIDTH, DenseAdam, EmbeddingAdam, flush_tiny_values,
                               merge_repeated_rows, sum_rows)


def test_merge_sums_repeated_ids_whatever_the_scratch_holds():
    indices = torch.tensor([7, 3, 7, 0, 3, 7, 9])
    values = torch.arange(14, dtype=torch.float32).view(7, 2)
    # leftovers of earlier batches (positions, out-of-range numbers) must not matter
    for slots in (torch.zeros(10, dtype=torch.int32), torch.tensor([5, 6, 1, 0, 2, 9, 4, 3, 8, 7],
                                                                   dtype=torch.int32)):
        unique, rows = merge_repeated_rows(indices, values, slots)
        assert sorted(unique.tolist()) == [0, 3, 7, 9]
        expected = torch.zeros(10, 2).index_add_(0, indices, values)[unique]
        assert torch.equal(rows, expected)
    empty_ids, empty_rows = merge_repeated_rows(indices[:0], values[:0], slots)
    assert len(empty_ids) == 0 and len(empty_rows) == 0


def test_merge_of_many_batches_through_one_scratch_array():
    generator = torch.Generator().manual_seed(0)
    slots = torch.zeros(1000, dtype=torch.int32)
    for size in (5000, 20, 3000, 1):
        indices = torch.randint(0, 1000 if size > 100 else 30, (size,), generator=generator)
        values = torch.randn(size, 3, generator=generator)
        unique, rows = merge_repeated_rows(indices, values, slots)
        assert torch.equal(unique.sort().values, indices.unique())
        expected = torch.zeros(1000, 3).index_add_(0, indices, values)[unique]
        torch.testing.assert_close(rows, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("width", [1, 4, NARROW_WIDTH, NARROW_WIDTH + 1, 16])
def test_sum_rows_equals_index_add_for_narrow_and_wide_rows(width):
    generator = torch.Generator().manual_seed(width)
    index = torch.randint(0, 50, (3000,), generator=generator)
    values = torch.randn(3000, width, generator=generator)
    expected = torch.zeros(60, width).index_add_(0, index, values)
    got = sum_rows(index, values, 60)
    assert got.shape == (60, width)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert (got[50:] == 0).all()


def test_matches_torch_sparse_adam_over_many_steps():
    torch.manual_seed(0)
    ours, theirs = nn.Embedding(500, 4, sparse=True), nn.Embedding(500, 4, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    optimizers = [EmbeddingAdam(ours.parameters(), lr=0.01, betas=(0.8, 0.99)),
                  torch.optim.SparseAdam(theirs.parameters(), lr=0.01, betas=(0.8, 0.99))]
    for step in range(40):
        ids = torch.randint(0, 30 if step % 2 else 500, (64, 3))  # many repeats every other step
        target = torch.randn(64, 3, 4)
        for table, optimizer in zip((ours, theirs), optimizers):
            optimizer.zero_grad()
            ((table(ids) - target) ** 2).sum().backward()
            optimizer.step()
    assert torch.allclose(ours.weight, theirs.weight, atol=1e-5)
    assert not torch.allclose(ours.weight, nn.Embedding(500, 4).weight)  # it did train


def test_rows_outside_the_batch_keep_weights_and_moments():
    torch.manual_seed(0)
    table = nn.Embedding(100, 3, sparse=True)
    optimizer = EmbeddingAdam(table.parameters(), lr=0.1)
    table(torch.tensor([1, 2])).sum().backward()
    optimizer.step()
    before = table.weight.detach().clone()
    moments = optimizer.state[table.weight]["moments"].clone()
    optimizer.zero_grad()
    table(torch.tensor([5, 5, 6])).sum().backward()
    optimizer.step()
    changed = (table.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [5, 6]
    assert torch.equal(optimizer.state[table.weight]["moments"][[1, 2]], moments[[1, 2]])


def test_runs_are_bitwise_reproducible():
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        table = nn.Embedding(2000, 8, sparse=True)
        optimizer = EmbeddingAdam(table.parameters())
        for _ in range(5):
            optimizer.zero_grad()
            table(torch.randint(0, 50, (256, 4))).pow(2).sum().backward()
            optimizer.step()
        results.append(table.weight.detach().clone())
    assert torch.equal(results[0], results[1])


def test_dense_gradients_and_bad_settings_are_refused():
    table = nn.Embedding(10, 2)  # dense gradients
    optimizer = EmbeddingAdam(table.parameters())
    table(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse=True"):
        optimizer.step()
    with pytest.raises(ValueError, match="betas"):
        EmbeddingAdam(table.parameters(), betas=(0.9, 1.0))


def test_continues_from_a_state_saved_by_sparse_adam():
    torch.manual_seed(1)
    table = nn.Embedding(300, 4, sparse=True)
    sparse_adam = torch.optim.SparseAdam(table.parameters(), lr=0.01)
    steps = [(torch.randint(0, 40, (32, 3)), torch.randn(32, 3, 4)) for _ in range(10)]

    def train(optimizer, part):
        for ids, target in part:
            optimizer.zero_grad()
            ((table(ids) - target) ** 2).sum().backward()
            optimizer.step()

    train(sparse_adam, steps[:5])
    saved_weights = copy.deepcopy(table.state_dict())
    saved_state = copy.deepcopy(sparse_adam.state_dict())
    train(sparse_adam, steps[5:])
    reference = table.weight.detach().clone()
    table.load_state_dict(saved_weights)  # the same run again, switching to EmbeddingAdam
    ours = EmbeddingAdam(table.parameters(), lr=0.01)
    ours.load_state_dict(saved_state)
    train(ours, steps[5:])
    assert torch.allclose(table.weight, reference, atol=1e-5)


def _dense_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 1))


def test_dense_adam_matches_torch_fused_adam_and_skips_torch_step():
    ours, theirs = _dense_model(0), _dense_model(0)

    def groups(model):  # two groups, as the trainer makes: with and without weight decay
        return [{"params": list(model[0].parameters()), "weight_decay": 0.01},
                {"params": list(model[2].parameters()), "weight_decay": 0.0}]

    optimizers = [DenseAdam(groups(ours), lr=0.01, betas=(0.8, 0.99)),
                  torch.optim.Adam(groups(theirs), lr=0.01, betas=(0.8, 0.99), fused=True)]
    generator = torch.Generator().manual_seed(1)
    torch_steps = []
    original_step = torch.optim.Adam.step

    def counting_step(self, *args, **kwargs):
        torch_steps.append(type(self).__name__)
        return original_step(self, *args, **kwargs)

    with mock.patch.object(torch.optim.Adam, "step", counting_step):
        for step in range(30):
            x, y = torch.randn(16, 6, generator=generator), torch.randn(16, 1, generator=generator)
            for model, optimizer in zip((ours, theirs), optimizers):
                optimizer.zero_grad()
                ((model(x) - y) ** 2).mean().backward()
                if step == 10:  # a step where one layer got no gradient: torch's own step
                    model[2].bias.grad = None
                optimizer.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(ours[0].weight, _dense_model(0)[0].weight)  # it did train
    # DenseAdam used torch's step only for the first step and the step with a missing gradient
    assert torch_steps.count("DenseAdam") == 2 and torch_steps.count("Adam") == 30
    assert optimizers[0].state_dict()["state"].keys() == optimizers[1].state_dict()["state"].keys()


def test_dense_adam_continues_from_a_torch_adam_state():
    model = _dense_model(2)
    generator = torch.Generator().manual_seed(3)
    batches = [(torch.randn(8, 6, generator=generator), torch.randn(8, 1, generator=generator))
               for _ in range(8)]

    def train(optimizer, part):
        for x, y in part:
            optimizer.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            optimizer.step()

    adam = torch.optim.Adam(model.parameters(), lr=0.05, fused=True)
    train(adam, batches[:4])
    saved_weights, saved_state = copy.deepcopy(model.state_dict()), copy.deepcopy(adam.state_dict())
    train(adam, batches[4:])
    reference = [p.detach().clone() for p in model.parameters()]
    model.load_state_dict(saved_weights)
    ours = DenseAdam(model.parameters(), lr=0.05)
    ours.load_state_dict(saved_state)
    train(ours, batches[4:])
    for p, expected in zip(model.parameters(), reference):
        assert torch.equal(p, expected)


def test_flush_zeroes_only_entries_below_the_square_root_of_the_smallest_normal():
    small = torch.finfo(torch.float32).tiny  # the smallest normal float32; its root is 1.08e-19
    weights = torch.tensor([1e-39, -3e-42, small, -small, 5e-30, -1e-19, 2e-19, -1.0, 0.0, 2.5])
    flush_tiny_values([weights])
    assert torch.equal(weights, torch.tensor([0.0] * 6 + [2e-19, -1.0, 0.0, 2.5]))
    # float64's threshold is its own (1.5e-154); integers are left alone
    doubles = torch.tensor([1e-310, 1e-160, 1e-150, 1e-39], dtype=torch.float64)
    ids = torch.tensor([0, 1, 2])
    flush_tiny_values([doubles, ids])
    assert doubles.tolist() == [0.0, 0.0, 1e-150, 1e-39] and ids.tolist() == [0, 1, 2]


def test_adam_leaves_a_flushed_dead_unit_at_zero():
    """A weight and first moment at 0 with no gradient stay exactly 0, weight decay or not."""
    weight = nn.Parameter(torch.tensor([[0.0, 0.5], [0.0, -0.3]]))
    opt = DenseAdam([weight], lr=0.01, weight_decay=1e-5)
    for _ in range(50):
        weight.grad = torch.tensor([[0.0, 0.2], [0.0, -0.1]])
        opt.step()
    assert weight[:, 0].tolist() == [0.0, 0.0] and opt.state[weight]["exp_avg"][:, 0].tolist() == [0.0, 0.0]
    assert (weight[:, 1] - torch.tensor([0.5, -0.3])).abs().min() > 0.1  # the live ones moved


def test_flushed_tiny_weights_leave_predictions_unchanged_bit_for_bit():
    torch.manual_seed(0)
    features = [SparseFeature("u", 30, 8), SparseFeature("i", 20, 8)]
    model = ESMM(features[:1], features[1:], {"dims": [16, 8]}, {"dims": [16, 8]}).eval()
    first = model.ctr_tower.net[0]
    with torch.no_grad():  # dead units whose weights decayed to the subnormal range and above
        first.weight[:2] = torch.randn(2, 16).sign() * torch.rand(2, 16) * 1e-39
        first.weight[2] = torch.randn(16).sign() * torch.rand(16) * 1e-25
        first.bias[:3] = -0.1
        model.cvr_tower.net[0].weight[3, ::2] = 3e-41
        model.cvr_tower.net[0].weight[4, ::2] = -5e-20
    x = {"u": torch.randint(0, 30, (500,)), "i": torch.randint(0, 20, (500,))}
    with torch.no_grad():
        before = model(x)
        flush_tiny_values(model.parameters())
        after = model(x)
    assert int((first.weight[:3] != 0).sum()) == 0
    assert int((model.cvr_tower.net[0].weight[3:5, ::2] != 0).sum()) == 0
    assert torch.equal(before, after)
