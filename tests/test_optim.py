"""EmbeddingAdam: the SparseAdam update, with repeated ids merged without a sort."""
import copy

import pytest
import torch
from torch import nn

from rechub_mini.optim import NARROW_ROWS, NO_OWNER, EmbeddingAdam, merge_repeated_rows, sum_rows


def test_merge_sums_repeated_ids_and_leaves_the_scratch_clean():
    indices = torch.tensor([7, 3, 7, 0, 3, 7, 9])
    values = torch.arange(14, dtype=torch.float32).view(7, 2)
    slots = torch.full((10,), NO_OWNER, dtype=torch.int32)
    unique, rows = merge_repeated_rows(indices, values, slots)
    assert unique.tolist() == [7, 3, 0, 9]  # in order of first appearance
    expected = torch.zeros(10, 2).index_add_(0, indices, values)[unique]
    assert torch.equal(rows, expected)
    assert (slots == NO_OWNER).all()
    empty_ids, empty_rows = merge_repeated_rows(indices[:0], values[:0], slots)
    assert len(empty_ids) == 0 and len(empty_rows) == 0


@pytest.mark.parametrize("width", [1, 4, NARROW_ROWS, NARROW_ROWS + 1, 16])
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
