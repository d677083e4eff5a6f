import numpy as np
import pandas as pd
import pytest
import torch

from rechub_mini import BatchLoader, DataError, DataGenerator, SparseFeature, DenseFeature
from rechub_mini.columns import column_to_tensor, labels_to_tensor


def test_columns_of_any_layout_become_contiguous_tensors():
    base = np.arange(10, dtype=np.int64)
    reversed_view = base[::-1]  # negative stride, what pandas 3 can hand out
    t = column_to_tensor("a", reversed_view)
    assert t.is_contiguous() and t.tolist() == list(range(9, -1, -1))
    ext = pd.Series([1, 2, 3], dtype="Int32")
    assert column_to_tensor("b", ext).dtype == torch.int32
    assert column_to_tensor("big", np.array([2**40])).dtype == torch.int64
    assert column_to_tensor("c", pd.Series([0.5, 1.0])).dtype == torch.float32
    assert column_to_tensor("d", np.array([True, False])).tolist() == [1, 0]
    assert column_to_tensor("e", np.array(["3", "4"], dtype=object)).tolist() == [3, 4]


def test_bad_column_values_name_column_and_row():
    with pytest.raises(DataError, match=r"'u'.*'abc' at row 1"):
        column_to_tensor("u", np.array(["1", "abc"], dtype=object))
    with pytest.raises(DataError, match=r"'v' has 1 missing values \(first at row 2\)"):
        column_to_tensor("v", pd.Series([1, 2, None], dtype="Int64"))


def test_labels_from_frames_and_negative_strides():
    frame = pd.DataFrame({"purchase": [0, 1], "click": [1, 1]})
    assert labels_to_tensor(frame).tolist() == [[0.0, 1.0], [1.0, 1.0]]
    assert labels_to_tensor(frame.to_numpy()[::-1]).tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert labels_to_tensor(np.array([0, 1])).shape == (2, 1)


def test_loader_batches_cover_every_row_once_and_shuffle_is_seeded():
    x = {"a": np.arange(10), "b": np.arange(10) * 2.0}
    y = np.arange(10)
    loader = BatchLoader(x, y, batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 3
    first = [xb["a"].tolist() for xb, _ in loader]
    second = [xb["a"].tolist() for xb, _ in loader]
    assert sorted(sum(first, [])) == list(range(10))
    assert first != second  # a new permutation each epoch
    for xb, yb in loader:  # rows stay aligned across columns and labels
        assert torch.equal(xb["b"], xb["a"] * 2.0)
        assert torch.equal(yb[:, 0], xb["a"].float())
    loader.set_epoch(0)
    again = BatchLoader(x, y, batch_size=4, shuffle=True, seed=3)
    assert [xb["a"].tolist() for xb, _ in again] == first


def test_unshuffled_loader_keeps_order_and_drop_last():
    loader = BatchLoader({"a": np.arange(10)}, None, batch_size=4, drop_last=True)
    assert [xb["a"].tolist() for xb, _ in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_loader_rejects_mismatched_lengths_and_empty_data():
    with pytest.raises(DataError, match="same number of rows.*a: 3, b: 2"):
        BatchLoader({"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(DataError, match=r"y \(labels\): 2"):
        BatchLoader({"a": [1, 2, 3]}, [0, 1])
    with pytest.raises(DataError, match="0 rows"):
        BatchLoader({"a": []})
    for batch_size in (None, "x", 0, 2.5, True):  # None and "x" failed inside int()
        with pytest.raises(DataError, match=f"batch_size must be a whole number of at least 1, "
                                            f"got {batch_size!r}"):
            BatchLoader({"a": [1, 2, 3]}, batch_size=batch_size)
    for whole in (np.int32(2), 2.0, np.float64(2), torch.tensor(2)):  # the int they hold
        assert BatchLoader({"a": [1, 2, 3]}, batch_size=whole).batch_size == 2


def test_check_features_names_missing_and_unexpected_columns():
    loader = BatchLoader({"101": [1, 2], "oops": [1, 2]}, [0, 1])
    with pytest.raises(DataError, match=r"missing \['205'\].*\['oops'\]"):
        loader.check_features([SparseFeature("101", 5), SparseFeature("205", 5)])


def test_check_features_catches_ids_outside_the_vocabulary():
    loader = BatchLoader({"101": [1, 7, 2]}, [0, 1, 0])
    with pytest.raises(DataError, match=r"'101' has id 7 \(first too large at row 1\).*vocab_size is 5"):
        loader.check_features([SparseFeature("101", 5)])
    loader = BatchLoader({"101": [1, -1]}, [0, 1])
    with pytest.raises(DataError, match="negative id -1"):
        loader.check_features([SparseFeature("101", 5)])


def test_check_features_converts_whole_floats_and_rejects_nan_dense():
    for bad in (np.nan, np.inf, -np.inf):  # an infinity is no less fatal than a NaN
        loader = BatchLoader({"101": [1.0, 2.0, 3.0], "D1": [0.1, bad, 0.2]}, [0, 1, 0])
        with pytest.raises(DataError, match=r"'D1' has 1 NaN or infinite values \(first at "
                                            rf"row 1: {bad}\)"):
            loader.check_features([SparseFeature("101", 5), DenseFeature("D1")])
    loader = BatchLoader({"101": [1.0, 2.0]}, [0, 1])
    loader.check_features([SparseFeature("101", 5)])
    assert loader.x["101"].dtype == torch.int32
    with pytest.raises(DataError, match="non-integer id 1.5"):
        BatchLoader({"101": [1.5]}, [0]).check_features([SparseFeature("101", 5)])


def test_columns_are_packed_by_dtype_and_batches_match_the_columns():
    generator = np.random.default_rng(0)
    x = {"a": generator.integers(0, 50, 300), "D1": generator.random(300),
         "b": generator.integers(0, 9, 300).astype(np.int16), "D2": generator.random(300)}
    loader = BatchLoader(x, np.zeros(300), batch_size=64, shuffle=True, seed=3)
    assert [len(names) for _, names in loader._blocks] == [2, 2]  # int32 ids, float32 values
    assert list(loader.x) == ["a", "D1", "b", "D2"]
    for name, values in x.items():
        assert np.allclose(loader.x[name].numpy(), values)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(3))
    first, _ = next(iter(loader))
    for name, values in x.items():
        assert np.allclose(first[name].numpy(), values[order[:64].numpy()])
    # a float id column converted by check_features: batches serve the converted column
    floats = BatchLoader({"101": [1.0, 2.0, 3.0], "D1": [0.5, 0.25, 0.0]}, [0, 1, 0])
    floats.check_features([SparseFeature("101", 5), DenseFeature("D1")])
    batch = floats._gather(torch.tensor([2, 0]))
    assert batch["101"].dtype == torch.int32 and batch["101"].tolist() == [3, 1]
    assert batch["D1"].tolist() == [0.0, 0.5]


def test_data_generator_with_given_splits_and_with_split_ratio():
    x = {"a": np.arange(100)}
    y = np.zeros(100)
    train, val, test = DataGenerator(x, y).generate_dataloader(
        x_val={"a": np.arange(10)}, y_val=np.zeros(10), batch_size=8)
    assert train.num_rows == 100 and val.num_rows == 10 and test is None
    assert train.shuffle and not val.shuffle
    train, val, test = DataGenerator(x, y).generate_dataloader(split_ratio=[0.7, 0.2], batch_size=8)
    assert (train.num_rows, val.num_rows, test.num_rows) == (70, 20, 10)
    rows = torch.cat([l.x["a"] for l in (train, val, test)])
    assert sorted(rows.tolist()) == list(range(100))
    with pytest.raises(DataError, match="split_ratio"):
        DataGenerator(x, y).generate_dataloader(split_ratio=[0.9, 0.2])


def test_a_dataframe_is_taken_as_its_columns():
    x = {"a": np.arange(50) % 7, "d": np.linspace(0, 1, 50, dtype=np.float32)}
    y = np.arange(50) % 2
    from_frame = DataGenerator(pd.DataFrame(x), y).generate_dataloader(split_ratio=[0.6, 0.2],
                                                                      batch_size=8)
    from_dict = DataGenerator(x, y).generate_dataloader(split_ratio=[0.6, 0.2], batch_size=8)
    for frame_loader, dict_loader in zip(from_frame, from_dict):
        assert frame_loader.x.keys() == dict_loader.x.keys()
        for (xf, yf), (xd, yd) in zip(frame_loader, dict_loader, strict=True):
            assert all(torch.equal(xf[k], xd[k]) for k in xd) and torch.equal(yf, yd)
    with pytest.raises(DataError, match="dict .* or a DataFrame"):
        BatchLoader([[1, 2], [3, 4]])


def test_memory_mapped_columns_are_used_without_copying(tmp_path):
    np.save(tmp_path / "ids.npy", np.arange(10, dtype=np.int32))
    ids = np.load(tmp_path / "ids.npy", mmap_mode="r")
    loader = BatchLoader({"a": ids}, None, batch_size=4)
    assert loader.x["a"].data_ptr() == ids.ctypes.data
    assert [xb["a"].tolist() for xb, _ in loader][-1] == [8, 9]


def test_shards_split_the_rows_between_processes():
    x, y = {"a": np.arange(10)}, np.arange(10)
    seen = []
    for rank in range(3):
        train = BatchLoader(x, y, batch_size=2, shuffle=True, seed=1)
        train.shard(rank, 3)
        seen.append(sum((xb["a"].tolist() for xb, _ in train), []))
    assert [len(s) for s in seen] == [3, 3, 3]  # equal steps on every process
    assert len(set(sum(seen, []))) == 9
    blocks = []
    for rank in range(3):
        val = BatchLoader(x, y, batch_size=2)
        val.shard(rank, 3)
        blocks += sum((xb["a"].tolist() for xb, _ in val), [])
    assert blocks == list(range(10))  # blocks in rank order restore the row order


def test_seeds_may_be_numpy_integers_or_none():
    x = {"a": np.arange(100)}
    numpy_seed = BatchLoader(x, None, batch_size=10, shuffle=True, seed=np.int64(3))
    plain = BatchLoader(x, None, batch_size=10, shuffle=True, seed=3)
    assert [b[0]["a"].tolist() for b in numpy_seed] == [b[0]["a"].tolist() for b in plain]
    torch.manual_seed(5)
    first = [b[0]["a"].tolist() for b in BatchLoader(x, None, 10, shuffle=True, seed=None)]
    torch.manual_seed(5)
    again = [b[0]["a"].tolist() for b in BatchLoader(x, None, 10, shuffle=True, seed=None)]
    assert first == again  # None: drawn from torch's generator, so manual_seed still rules
    for bad in (1.5, 2**70, -1):
        with pytest.raises(DataError, match="seed must be a whole number from 0 to 2"):
            BatchLoader(x, None, seed=bad)
    loaders = DataGenerator(x, np.zeros(100)).generate_dataloader(split_ratio=[0.8, 0.1],
                                                                 seed=np.int64(1))
    assert loaders[0].num_rows == 80


def test_float_ids_beyond_float32s_whole_numbers_are_refused():
    ids = np.arange(2**24, 2**24 + 1000, dtype=np.float64)  # float32 would merge half of them
    loader = BatchLoader({"item": ids}, np.zeros(1000))
    with pytest.raises(DataError, match=r"'item' holds its ids as floats up to 16,778,21\d.*"
                                        r"astype\('int64'\)"):
        loader.check_features([SparseFeature("item", 2**24 + 1000)])


def test_missing_labels_are_named_as_labels():
    y = pd.DataFrame({"click": pd.array([1, None, 0], dtype="Int64")})
    with pytest.raises(DataError, match=r"Label 'click' has 1 missing values \(first at row 1\)"
                                        r"\. Drop the rows without a label"):
        BatchLoader({"a": np.arange(3)}, y)
