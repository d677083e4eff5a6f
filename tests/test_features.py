import re

import numpy as np
import pytest

from rechub_mini import DataError, DenseFeature, SparseFeature
from rechub_mini.features import check_unique_names, feature_from_dict


def test_sparse_feature_accepts_numpy_integer_vocab_size():
    f = SparseFeature("101", np.int64(42), embed_dim=np.int32(8))
    assert f.vocab_size == 42 and type(f.vocab_size) is int
    assert f.embed_dim == 8 and type(f.embed_dim) is int


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_sparse_feature_rejects_bad_vocab_size(bad):
    with pytest.raises(DataError, match=rf"'101': vocab_size must be a positive integer, got "
                                        rf"{re.escape(repr(bad))}\. For vocab_size use"):
        SparseFeature("101", bad)


def test_sparse_feature_rejects_bad_embed_dim_with_its_own_hint():
    with pytest.raises(DataError, match=r"embed_dim must be a positive integer, got 0\. Typical"):
        SparseFeature("101", 10, embed_dim=0)


def test_features_round_trip_through_dicts():
    for f in [SparseFeature("205", 10, 4), DenseFeature("D508")]:
        assert feature_from_dict(f.to_dict()) == f


def test_duplicate_feature_names_are_rejected():
    with pytest.raises(DataError, match="'101' appears twice"):
        check_unique_names([SparseFeature("101", 3), DenseFeature("101")])
