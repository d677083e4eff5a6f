"""Building blocks shared by the models: embedding tables, MLPs, and parallel experts.

`EmbeddingLayer` puts the sparse features of one embedding size into shared tables (offsets tell
the features apart), so a batch needs one lookup per table instead of one per feature: one
table with sparse gradients for the large vocabularies (only the rows in the batch are touched,
which is most of the speed-up over dense Adam on millions of embedding rows) and one with
ordinary gradients for the small ones (gender, age, position...).
Taught in tutorials/*/02_esmm.ipynb and 03_mmoe.ipynb.
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ..columns import check_id_range
from ..errors import DataError
from ..features import DenseFeature, Feature, SparseFeature, check_unique_names
from ..optim import sum_rows
from .linear import Linear, linear

ACTIVATIONS = {"relu": nn.ReLU, "prelu": nn.PReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}
EMBEDDING_INIT_STD = 0.01
SMALL_TABLE_ROWS = 1024  # vocabularies up to this size get dense gradients (see EmbeddingLayer)


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise DataError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def physical_memory_bytes() -> int | None:
    """This machine's RAM, where the OS tells it (Linux, macOS); None elsewhere."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_tables_fit_in_memory(features: Sequence[SparseFeature]) -> None:
    """Refuse tables larger than the machine's memory, naming the features that make them so.

    The usual cause is raw ids (hashes, database keys) used without re-encoding: vocab_size =
    max id + 1 is then astronomically large, and torch would only say that it cannot allocate.
    """
    memory = physical_memory_bytes()
    need = sum(4 * f.vocab_size * f.embed_dim for f in features)  # float32 weights alone
    if memory is None or need <= memory:
        return
    largest = sorted(features, key=lambda f: f.vocab_size * f.embed_dim, reverse=True)[:3]
    listed = ", ".join(f"{f.name!r} (vocab_size {f.vocab_size:,})" for f in largest)
    raise DataError(f"The embedding tables would need {need / 2**30:,.1f} GiB, more than this "
                    f"machine's {memory / 2**30:,.1f} GiB of memory; the largest: {listed}. Ids "
                    f"must be numbered 0 to vocab_size - 1: re-encode raw ids first (as "
                    f"`python -m rechub_mini preprocess` does).")


class EmbeddingLayer(nn.Module):
    """Turns a batch dict into one flat vector per row: sparse embeddings, then dense values.

    Features are grouped into one table per embedding size and kind. Large vocabularies get a
    table with sparse gradients (only the rows in the batch are touched, by EmbeddingAdam); small
    ones (at most SMALL_TABLE_ROWS ids: gender, age, position...) share a table with ordinary
    dense gradients, which is cheaper than sorting their many repeated ids every step.

    Args:
        features: SparseFeature and DenseFeature definitions, in any order.
        sparse_grad: give the large tables sparse gradients (for EmbeddingAdam); set False for
            optimizers or backends that need dense gradients (e.g. DDP with nccl).
    """

    def __init__(self, features: Sequence[Feature], sparse_grad: bool = True) -> None:
        super().__init__()
        check_unique_names(list(features))
        self.sparse_features = [f for f in features if isinstance(f, SparseFeature)]
        self.dense_features = [f for f in features if isinstance(f, DenseFeature)]
        check_tables_fit_in_memory(self.sparse_features)
        self.dims = sorted({f.embed_dim for f in self.sparse_features})
        self.tables = nn.ModuleList()
        self.groups: list[list[SparseFeature]] = []
        kinds = [(dim, large) for dim in self.dims for large in (False, True)]
        for dim, large in kinds:
            group = [f for f in self.sparse_features if f.embed_dim == dim
                     and (f.vocab_size > SMALL_TABLE_ROWS) == large]
            if not group:
                continue
            i = len(self.groups)
            sizes = torch.tensor([f.vocab_size for f in group])
            offsets = torch.cumsum(sizes, 0) - sizes
            table = nn.Embedding(int(sizes.sum()), dim, sparse=sparse_grad and large)
            nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)
            self.tables.append(table)
            self.groups.append(group)
            self.register_buffer(f"offsets_{i}", offsets, persistent=False)
            self.register_buffer(f"vocab_sizes_{i}", sizes, persistent=False)
        # where each feature sits once the groups are joined, for field_embeddings
        grouped = [f.name for group in self.groups for f in group]
        self.register_buffer("field_order", torch.tensor(
            [grouped.index(f.name) for f in self.sparse_features], dtype=torch.long),
            persistent=False)
        self.output_dim = sum(f.embed_dim for f in self.sparse_features) + len(self.dense_features)
        self.check_ids = True  # each batch's ids against the vocab sizes (see ids_already_checked)

    def _lookup(self, x: Mapping[str, torch.Tensor], i: int) -> torch.Tensor:
        """Embeddings of group i as [batch, fields, dim]."""
        group = self.groups[i]
        try:
            ids = torch.stack([x[f.name] for f in group], dim=1)
        except KeyError as missing:
            raise DataError(f"The batch has no column {missing.args[0]!r}, which the model's "
                            f"features need. Build x with one key per feature.") from None
        if ids.is_floating_point():
            floats = [f.name for f in group if x[f.name].is_floating_point()]
            raise DataError(f"Sparse features {floats} must hold integer ids, got "
                            f"{x[floats[0]].dtype}. Convert the columns to int.")
        sizes = getattr(self, f"vocab_sizes_{i}")
        if self.check_ids and len(ids) and (
                bool(ids.amin() < 0) or bool((ids.amax(0) >= sizes).any())):
            for j, f in enumerate(group):
                check_id_range(f, ids[:, j])
        ids = ids + getattr(self, f"offsets_{i}")
        table = self.tables[i]
        if table.sparse:
            return table(ids)
        return SmallTableLookup.apply(table.weight, ids.flatten()).view(*ids.shape, -1)

    def dense_values(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The dense features as [batch, n_dense]."""
        return torch.stack([x[f.name] for f in self.dense_features], dim=1).float()

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        parts = [self._lookup(x, i).flatten(1) for i in range(len(self.tables))]
        if self.dense_features:
            parts.append(self.dense_values(x))
        return torch.cat(parts, dim=1)

    def field_embeddings(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sparse embeddings as [batch, fields, dim], fields in the order they were given."""
        if len(self.dims) != 1:
            raise DataError(f"Field-wise embeddings need one embed_dim for all sparse "
                            f"features, got {self.dims}.")
        grouped = torch.cat([self._lookup(x, i) for i in range(len(self.tables))], dim=1)
        return grouped.index_select(1, self.field_order)


@contextmanager
def ids_already_checked(model: nn.Module) -> Iterator[None]:
    """Within this block the model's embedding layers trust that every id fits its table.

    For batches of a loader whose columns were checked once (BatchLoader.check_features): the
    per-batch check is then redundant, and costs 4 % of a forward pass of ESMM's predict.
    """
    layers = [m for m in model.modules() if isinstance(m, EmbeddingLayer)]
    for layer in layers:
        layer.check_ids = False
    try:
        yield
    finally:
        for layer in layers:
            layer.check_ids = True


class SmallTableLookup(torch.autograd.Function):
    """`weight[ids]` for a small table with a dense gradient (gender, age, position...).

    Its backward sums the gradient rows of repeated ids with `sum_rows`: 2-4x faster here than
    nn.Embedding's backward (which sorts the ids) and, for narrow rows, than index_select's.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.n_rows = len(weight)
        return weight.index_select(0, ids)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        return sum_rows(ids, grad, ctx.n_rows), None


class MLP(nn.Module):
    """Linear layers with activation (and optional batch norm and dropout) between them.

    With `output_layer=True` a final Linear maps to one output (a logit or a regression value).
    """

    def __init__(self, input_dim: int, dims: Sequence[int] = (), dropout: float = 0.0,
                 activation: str = "relu", output_layer: bool = True,
                 batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for dim in dims:
            layers.append(Linear(input_dim, dim))
            if batch_norm:
                layers.append(nn.BatchNorm1d(dim))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            input_dim = dim
        if output_layer:
            layers.append(Linear(input_dim, 1))
            input_dim = 1
        self.output_dim = input_dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ParallelMLP(nn.Module):
    """`copies` independent MLPs (the experts of MMoE) run as one batched matrix product.

    Input [batch, input_dim] -> output [batch, copies, dims[-1]].
    """

    def __init__(self, copies: int, input_dim: int, dims: Sequence[int], dropout: float = 0.0,
                 activation: str = "relu") -> None:
        super().__init__()
        if not dims:
            raise DataError("Experts need at least one hidden layer: expert_params={'dims': [16]}.")
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for dim in dims:
            bound = 1.0 / input_dim ** 0.5  # the same uniform init as nn.Linear
            self.weights.append(nn.Parameter(torch.empty(copies, input_dim, dim).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(copies, dim).uniform_(-bound, bound)))
            input_dim = dim
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output_dim = input_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # first layer: every expert reads the same x, so all of them are one matrix product
        first = self.weights[0].transpose(1, 2).reshape(-1, x.shape[1])  # [copies*dim, input]
        h = linear(x, first, self.biases[0].flatten()).view(len(x), *self.biases[0].shape)
        h = self.dropout(self.activation(h))
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = self.dropout(self.activation(torch.einsum("bci,cih->bch", h, w) + b))
        return h


MLP_OPTIONS = {"dims", "dropout", "activation", "batch_norm"}


def check_layer_options(what: str, options: Mapping) -> None:
    """The layer sizes and dropout of a params dict, checked before any layer is built: a size
    of 0 would build a layer that passes nothing on, a negative one fails deep inside torch."""
    dims = options.get("dims", ())
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise DataError(f"{what}['dims'] must be a list of layer sizes of at least 1, e.g. "
                        f"[16, 8]; got {dims!r}.")
    dropout = options.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise DataError(f"{what}['dropout'] must be a number in [0, 1), got {dropout!r}.")


def tower(input_dim: int, params: Mapping | None, what: str, output_layer: bool = True) -> MLP:
    """An MLP built from a params dict such as {"dims": [16, 8], "dropout": 0.1}."""
    params = dict(params or {})
    unknown = set(params) - MLP_OPTIONS
    if unknown:
        raise DataError(f"{what} has unknown options {sorted(unknown)}; allowed: "
                        f"{sorted(MLP_OPTIONS)}, e.g. {{'dims': [16, 8]}}.")
    check_layer_options(what, params)
    return MLP(input_dim, output_layer=output_layer, **params)
