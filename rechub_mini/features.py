"""Feature definitions: what each input column is and how the models turn it into numbers.

A `SparseFeature` is a categorical id column (user id, item category, ...) looked up in an
embedding table; a `DenseFeature` is a number fed to the network as it is. The names and call
shapes follow torch-rechub's (`SparseFeature(name, vocab_size, embed_dim=...)`), so its
tutorials carry over. Taught in tutorials/*/00_quickstart.ipynb.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

from .errors import DataError


@dataclass(frozen=True)
class SparseFeature:
    """A categorical column whose values are ids in `[0, vocab_size)`; 0 means unknown.

    Args:
        name: the column name, also the key of the input dict.
        vocab_size: number of distinct ids (max id + 1). A numpy integer is fine.
        embed_dim: length of the embedding vector learned for each id.
    """

    name: str
    vocab_size: int
    embed_dim: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"SparseFeature name must be a non-empty string, got {self.name!r}.")
        for field in ("vocab_size", "embed_dim"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                hint = (" For vocab_size use the column's max id + 1." if field == "vocab_size"
                        else " Typical sizes are 4 to 64.")
                raise DataError(f"SparseFeature {self.name!r}: {field} must be a positive "
                                f"integer, got {value!r}.{hint}")
            # numpy integers become plain ints so checkpoints and reprs stay simple
            object.__setattr__(self, field, int(value))

    def to_dict(self) -> dict:
        return {"kind": "sparse", **asdict(self)}


@dataclass(frozen=True)
class DenseFeature:
    """A numeric column fed to the network as one float (scale it to about [0, 1] first)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"DenseFeature name must be a non-empty string, got {self.name!r}.")

    def to_dict(self) -> dict:
        return {"kind": "dense", **asdict(self)}


Feature = SparseFeature | DenseFeature


def feature_from_dict(d: dict) -> Feature:
    """Rebuild a feature from `to_dict()` output (used by checkpoints)."""
    kind = d.get("kind")
    args = {k: v for k, v in d.items() if k != "kind"}
    if kind == "sparse":
        return SparseFeature(**args)
    if kind == "dense":
        return DenseFeature(**args)
    raise DataError(f"Unknown feature kind {kind!r} in {d!r}; expected 'sparse' or 'dense'.")


def check_unique_names(features: list[Feature]) -> None:
    """Two features with one name would silently read the same column twice."""
    seen = set()
    for f in features:
        if f.name in seen:
            raise DataError(f"Feature name {f.name!r} appears twice; each column once, please.")
        seen.add(f.name)
