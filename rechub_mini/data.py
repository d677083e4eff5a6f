"""Fast batching: the columns become tensors once, batches are slices or gathers of them.

torch-rechub builds a per-sample `Dataset` of Python dicts and lets `DataLoader` collate them
back into tensors, which costs 14-46% of its training time. Here the whole input is converted
once (any numpy/pandas layout: negative strides, pandas extension dtypes, int/float mixes) into
one matrix per dtype with the columns side by side, and each batch is a slice, or, when
shuffling, one vectorised gather per matrix. Taught in tutorials/*/00_quickstart.ipynb.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

import pandas as pd
import torch

from .checks import check_count, check_seed
from .columns import (check_finite, checked_ids, column_to_numpy, column_to_tensor,
                      labels_to_tensor, pack_columns, stored_in_file)
from .errors import DataError
from .features import DenseFeature, Feature, SparseFeature

Batch = tuple[dict[str, torch.Tensor], "torch.Tensor | None"]


class BatchLoader:
    """Yields `(x_dict, y)` batches from tensors held in memory; no per-sample Python.

    With `shuffle=True` each pass uses a new permutation drawn from `seed + epoch`, so runs are
    reproducible; `set_epoch` picks the epoch explicitly (as distributed samplers do).
    After `shard(rank, world_size)` a loader yields only that process's share of the rows:
    for training, every process gets the same number of rows of the common permutation (up to
    world_size - 1 rows are left out each epoch, different ones each time); for evaluation,
    process r gets the r-th contiguous block, so gathering blocks in rank order restores the
    row order.
    """

    def __init__(self, x: Mapping | pd.DataFrame, y=None, batch_size: int = 1024,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = False) -> None:
        if isinstance(x, pd.DataFrame):  # a table is a dict of its columns
            x = {name: x[name] for name in x.columns}
        if not isinstance(x, Mapping) or not x:
            raise DataError("x must be a non-empty dict {feature name: column values} or a "
                            "DataFrame with one column per feature.")
        batch_size = check_count("batch_size", batch_size)
        arrays = {str(name): column_to_numpy(str(name), v) for name, v in x.items()}
        self.y = None if y is None else labels_to_tensor(y)
        lengths = {name: len(a) for name, a in arrays.items()}
        if self.y is not None:
            lengths["y (labels)"] = len(self.y)
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{k}: {v}" for k, v in lengths.items())
            raise DataError(f"All columns and the labels must have the same number of rows; "
                            f"got {listed}.")
        self.num_rows = next(iter(lengths.values()))
        if self.num_rows == 0:
            raise DataError("The data has 0 rows; check the split or the file you loaded.")
        # columns are packed by stored dtype (see pack_columns), except memory-mapped ones
        # (the .npy cache of a large CSV): they stay in their files, gathered one by one
        packed, self._blocks = pack_columns(
            {name: a for name, a in arrays.items() if not stored_in_file(a)})
        self.x = {name: packed[name] if name in packed else column_to_tensor(name, a)
                  for name, a in arrays.items()}
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = check_seed(seed)
        self.drop_last = drop_last
        self.epoch = 0
        self.rank, self.world_size = 0, 1
        self._checked: set = set()

    def shard(self, rank: int, world_size: int) -> None:
        """Yield only process `rank`'s share of the rows (see the class docstring)."""
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is not in [0, {world_size}).")
        self.rank, self.world_size = rank, world_size

    def _block(self) -> tuple[int, int]:
        """This process's rows: (first, count); without sharding, all of them."""
        if self.shuffle:
            return 0, self.num_rows // self.world_size
        return self.contiguous_block()

    def contiguous_block(self) -> tuple[int, int]:
        """Process r's r-th contiguous block of rows: (first, count)."""
        per_rank = -(-self.num_rows // self.world_size)
        first = min(self.rank * per_rank, self.num_rows)
        return first, min(per_rank, self.num_rows - first)

    def __len__(self) -> int:
        rows = self._block()[1]
        return rows // self.batch_size if self.drop_last else -(-rows // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Batch]:
        return self.batches()

    def batches(self, first: int = 0, every: int = 1) -> Iterator[Batch]:
        """One pass's batches number first, first + every, first + 2 * every, ... (by default
        all of them, as iterating does): a Hogwild process's share of an epoch
        (rechub_mini/hogwild.py), so that the processes together train the batches of a pass."""
        if not self.shuffle:
            last = None if not self.drop_last else len(self) * self.batch_size
            yield from itertools.islice(self.in_order(self.batch_size, last), first, None, every)
            return
        rows = self._block()[1]
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_rows, generator=generator)
        order = order[self.rank::self.world_size][:rows]
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size)[first::every]:
            idx = order[start:start + self.batch_size]
            yield self._gather(idx), None if self.y is None else self.y.index_select(0, idx)

    def _gather(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rows `idx` of every column: one gather per packed block, one per other column."""
        rows: dict[str, torch.Tensor] = {}
        for matrix, names in self._blocks:
            for name, column in zip(names, matrix.index_select(0, idx).unbind(1)):
                if name is not None:
                    rows[name] = column
        return {name: rows[name] if name in rows else t.index_select(0, idx)
                for name, t in self.x.items()}

    def in_order(self, batch_size: int | None = None, rows: int | None = None
                 ) -> Iterator[Batch]:
        """This process's block of rows in stored order, never shuffled, as slices (no copy).

        What prediction reads, with batches as large as it likes: a forward pass needs no
        small batches. `rows` stops early (drop_last).
        """
        batch_size = batch_size or self.batch_size
        first, count = self.contiguous_block()
        count = count if rows is None else min(rows, count)
        for start in range(first, first + count, batch_size):
            stop = min(start + batch_size, first + count)
            xb = {name: t[start:stop] for name, t in self.x.items()}
            yield xb, None if self.y is None else self.y[start:stop]

    def check_features(self, features: Sequence[Feature]) -> None:
        """Check once that every feature's column exists and holds valid values.

        Sparse ids must be integers in [0, vocab_size); dense values must be finite. A float
        column whose values are all whole numbers is converted to ids (pandas turns int columns
        into floats after a merge with missing rows, for instance).
        """
        key = tuple(features)
        if key in self._checked:
            return
        names = [f.name for f in features]
        missing = [n for n in names if n not in self.x]
        if missing:
            unexpected = [n for n in self.x if n not in names]
            raise DataError(
                f"The model needs columns that x does not have: missing {missing}; x has "
                f"these columns no feature uses: {unexpected}. Build x with one key per "
                f"feature name."
            )
        for f in features:
            column = self.x[f.name]
            if isinstance(f, SparseFeature):
                checked = checked_ids(f, column)
                if checked is not column:  # converted: batches read the new column instead
                    self.x[f.name] = checked
                    for _, block_names in self._blocks:
                        block_names[:] = [n if n != f.name else None for n in block_names]
            elif isinstance(f, DenseFeature):
                check_finite(f.name, column)
        self._checked.add(key)

    def label_leaks(self, names: Sequence[str]) -> list[str]:
        """Descriptions of input columns in `names` that equal a label or a product of two.

        A label that sneaks in as a feature (torch-rechub's tutorial builds `ctcvr_label`
        before choosing "every other column" as features) makes every AUC meaningless.
        """
        if self.y is None:
            return []
        labels = {f"y[:, {j}]": self.y[:, j] for j in range(self.y.shape[1])}
        for j in range(self.y.shape[1]):
            for k in range(j + 1, self.y.shape[1]):
                labels[f"y[:, {j}] x y[:, {k}]"] = self.y[:, j] * self.y[:, k]
        leaks = []
        for name in names:
            column = self.x[name].float()
            for label, values in labels.items():
                if values.min() != values.max() and torch.equal(column, values):
                    leaks.append(f"feature {name!r} equals the label {label}")
                    break
        return leaks


class DataGenerator:
    """Builds train/val/test `BatchLoader`s from dicts of columns, as torch-rechub's does.

    Args:
        x: dict {feature name: column values} for training, or a DataFrame with those columns.
        y: labels, rows x tasks (1-D for one task).
    """

    def __init__(self, x: Mapping | pd.DataFrame, y) -> None:
        self.x = x
        self.y = y

    def generate_dataloader(self, x_val: Mapping | pd.DataFrame | None = None, y_val=None,
                            x_test: Mapping | pd.DataFrame | None = None, y_test=None,
                            split_ratio: Sequence[float] | None = None, batch_size: int = 16,
                            num_workers: int = 0, seed: int = 0, shuffle: bool = True
                            ) -> tuple[BatchLoader, BatchLoader | None, BatchLoader | None]:
        """Return `(train_loader, val_loader, test_loader)`.

        Either pass the validation and test splits, or `split_ratio=[train, val]` to cut them
        from `x` with a seeded permutation (the rest is test). Batching is vectorised, so
        `num_workers` is accepted for compatibility and ignored. The test loader is None when
        there is no test data.
        """
        if split_ratio is not None:
            return self._split(split_ratio, batch_size, seed, shuffle)
        train = BatchLoader(self.x, self.y, batch_size, shuffle=shuffle, seed=seed)
        val = None if x_val is None else BatchLoader(x_val, y_val, batch_size)
        test = None if x_test is None else BatchLoader(x_test, y_test, batch_size)
        return train, val, test

    def _split(self, split_ratio, batch_size, seed, shuffle):
        if len(split_ratio) != 2 or min(split_ratio) <= 0 or sum(split_ratio) > 1:
            raise DataError(f"split_ratio must be [train, val] fractions with train + val <= 1, "
                            f"got {list(split_ratio)}.")
        everything = BatchLoader(self.x, self.y)
        n = everything.num_rows
        seed = check_seed(seed)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_train, n_val = int(n * split_ratio[0]), int(n * split_ratio[1])
        parts = [order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]]

        def subset(idx, is_train):
            if len(idx) == 0:
                return None
            x = {k: v[idx] for k, v in everything.x.items()}
            y = None if everything.y is None else everything.y[idx]
            return BatchLoader(x, y, batch_size, shuffle=shuffle and is_train, seed=seed)

        return subset(parts[0], True), subset(parts[1], False), subset(parts[2], False)
