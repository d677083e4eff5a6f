"""Load processed Ali-CCP splits, build the ctcvr label, the features and the model inputs.

Drop `ali_ccp_{train,val,test}.csv` (full data) or `ali_ccp_{train,val,test}_sample.csv` (the
sample names torch-rechub uses) into a folder and `load_ali_ccp(folder)` reads them with
explicit dtypes and checks them. Vocabulary sizes come from the training split only; ids that
training never saw are mapped to 0 (unknown) in the other splits and counted, so a model never
meets an id outside its tables. Taught in tutorials/*/01_data_and_labels.ipynb.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..features import DenseFeature, Feature, SparseFeature
from .ali_ccp_schema import (COMBINATION_COLUMNS, CONTEXT_COLUMNS, DENSE_COLUMNS, ITEM_COLUMNS,
                             SPARSE_COLUMNS, SPLITS, USER_COLUMNS, split_file_name,
                             synthetic_files)
from .csv_arrays import read_csv_arrays

# ESMM's two embedding groups: who is looking (user + context) and what is shown (item and the
# user x item combinations).
ESMM_USER_COLUMNS = USER_COLUMNS + CONTEXT_COLUMNS
ESMM_ITEM_COLUMNS = ITEM_COLUMNS + COMBINATION_COLUMNS
# Label order of torch-rechub's tutorial: task 0 = purchase (CVR), task 1 = click (CTR).
LABELS = ["purchase", "click"]


@dataclass
class AliCCP:
    """The three splits as DataFrames, plus what loading had to change."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    files: dict[str, str] = field(default_factory=dict)
    dropped_purchase_without_click: dict[str, int] = field(default_factory=dict)
    unseen_ids_mapped_to_0: dict[str, int] = field(default_factory=dict)
    synthetic: bool = False  # the files are the synthetic generator's (its meta.json lists them)

    def splits(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "val": self.val, "test": self.test}


def find_split_files(data_dir: str | os.PathLike, sample: bool | None = None) -> dict[str, Path]:
    """Paths of the three splits; full files win over samples unless `sample` says otherwise.

    A folder with some but not all full files is an error, not a reason to fall back to the
    sample files next to them: that would train on the sample without a word.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        where = "" if folder.is_absolute() else f" (relative to the current folder {os.getcwd()})"
        raise DataError(f"Data folder {str(data_dir)!r} does not exist{where}. Pass the folder "
                        f"that holds ali_ccp_train.csv (or ali_ccp_train_sample.csv); to make "
                        f"one, run `python -m rechub_mini synth --out FOLDER` (synthetic data) "
                        f"or `python -m rechub_mini preprocess --raw RAW --out FOLDER` (the "
                        f"real Ali-CCP logs).")
    choices = [sample] if sample is not None else [False, True]
    for use_sample in choices:
        paths = {s: folder / split_file_name(s, use_sample) for s in SPLITS}
        present = [p.exists() for p in paths.values()]
        if all(present):
            return paths
        if any(present) and (sample is not None or not use_sample):
            missing = [p.name for p, here in zip(paths.values(), present) if not here]
            raise DataError(f"{folder.name!r} holds only some of the splits: {missing} "
                            f"{'is' if len(missing) == 1 else 'are'} missing. Put all three "
                            f"{split_file_name('*', use_sample)} files there (a misspelt name, "
                            f"e.g. ali_ccp_valid.csv, does not count).")
    wanted = " or ".join(", ".join(split_file_name(s, c) for s in SPLITS) for c in choices)
    found = sorted(p.name for p in folder.glob("*.csv"))
    hint = ""
    if any(name.startswith(("sample_skeleton_", "common_features_")) for name in found):
        hint = (" These are raw Ali-CCP files: turn them into the processed splits first, with "
                "`python -m rechub_mini preprocess --raw FOLDER --out NEW_FOLDER`.")
    raise DataError(f"{folder.name!r} does not hold all three splits: expected {wanted}; "
                    f"found {found or 'no CSV files'}.{hint}")


def load_ali_ccp(data_dir: str | os.PathLike, sample: bool | None = None,
                 cache: bool | None = None) -> AliCCP:
    """Read and check the three processed splits in `data_dir`.

    Rows with purchase = 1 and click = 0 are dropped (as Ali-CCP's preprocessing does) and
    counted; each frame's index stays the rows' places in the file (0 = the line after the
    header), with gaps where rows were dropped. Ids unseen in train are mapped to 0 and
    counted. `cache` is passed to `read_csv_arrays` (default: cache files over 50 MB as .npy
    next to the CSV).
    """
    paths = find_split_files(data_dir, sample)
    frames, dropped = {}, {}
    for split, path in paths.items():
        arrays = read_csv_arrays(path, cache=cache)
        bad = (arrays["purchase"] == 1) & (arrays["click"] == 0)
        dropped[split] = int(bad.sum())
        rows = None  # the frame's index: each row's place among the file's data rows
        if dropped[split]:
            arrays = {c: a[~bad] for c, a in arrays.items()}
            rows = np.flatnonzero(~bad)
            warnings.warn(f"{path.name}: dropped {dropped[split]} rows with purchase = 1 but "
                          f"click = 0 (a purchase needs a click).", stacklevel=2)
        frames[split] = pd.DataFrame(arrays, index=rows, copy=False)
    names = {s: p.name for s, p in paths.items()}
    data = AliCCP(**frames, files=names, dropped_purchase_without_click=dropped,
                  synthetic=set(names.values()) <= synthetic_files(paths["train"].parent))
    data.unseen_ids_mapped_to_0 = map_unseen_ids_to_unknown(data)
    return data


def map_unseen_ids_to_unknown(data: AliCCP) -> dict[str, int]:
    """In val and test, replace sparse ids that train never contains by 0; count them."""
    counts = {}
    for split in ("val", "test"):
        frame = getattr(data, split)
        total = 0
        for c in SPARSE_COLUMNS:
            train_ids = data.train[c].to_numpy()
            seen = np.zeros(int(train_ids.max()) + 1, dtype=bool)
            seen[train_ids] = True
            ids = frame[c].to_numpy()
            unseen = ids >= len(seen)
            unseen[~unseen] = ~seen[ids[~unseen]]
            if unseen.any():
                total += int(unseen.sum())
                frame[c] = np.where(unseen, 0, ids).astype(ids.dtype)
        counts[split] = total
    return counts


def add_ctcvr_label(frame: pd.DataFrame) -> pd.DataFrame:
    """Add `ctcvr` = click x purchase: bought after clicking, the label ESMM trains pCTCVR on.

    Since purchases only follow clicks, it equals `purchase` on clean data; the product makes
    the definition explicit. Returns the same frame for chaining.
    """
    frame["ctcvr"] = (frame["click"] * frame["purchase"]).astype(frame["click"].dtype)
    return frame


def build_features(train: pd.DataFrame, columns: Sequence[str], embed_dim: int = 16
                   ) -> list[Feature]:
    """Features for `columns`: sparse ids sized from the training split, dense as they are."""
    features: list[Feature] = []
    for c in columns:
        if c in SPARSE_COLUMNS:
            features.append(SparseFeature(c, int(train[c].max()) + 1, embed_dim=embed_dim))
        elif c in DENSE_COLUMNS:
            features.append(DenseFeature(c))
        else:
            raise DataError(f"{c!r} is not a feature column of Ali-CCP (labels cannot be "
                            f"features: that leaks the answer into the input).")
    return features


def model_inputs(frame: pd.DataFrame, features: Sequence[Feature],
                 labels: Sequence[str] = LABELS
                 ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """(x, y) for DataGenerator: x = {feature name: column}, y = the label columns in order
    (None with `labels=[]`, for rows to predict on)."""
    missing = [c for c in [*(f.name for f in features), *labels] if c not in frame.columns]
    if missing:
        raise DataError(f"The frame has no columns {missing}, which the features and labels "
                        f"need. Use a split of load_ali_ccp, or features built from this frame.")
    x = {f.name: frame[f.name].to_numpy() for f in features}
    y = np.column_stack([frame[c].to_numpy() for c in labels]) if labels else None
    return x, y
