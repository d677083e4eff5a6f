"""Small summaries of Ali-CCP: label rates, who gets clicked, and how sparse the ids are.

Each function takes frames in the processed layout (`ali_ccp_schema.ALL_COLUMNS`) and returns
plain numbers or a small DataFrame, so that the data lesson's cells stay short and show the idea
rather than the bookkeeping. Taught in tutorials/*/01_data_and_labels.ipynb.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import DataError
from .ali_ccp_schema import (COMBINATION_COLUMNS, CONTEXT_COLUMNS, FIELD_MEANINGS, ITEM_COLUMNS,
                             REAL_STATS, REAL_VOCAB_SIZES, USER_COLUMNS)

FIELD_GROUPS = {"user": USER_COLUMNS, "item": ITEM_COLUMNS,
                "combination": COMBINATION_COLUMNS, "context": CONTEXT_COLUMNS}


def label_rates(frame: pd.DataFrame) -> dict[str, float]:
    """Counts and rates of one split.

    ctr = clicks / impressions, cvr = purchases / clicks (post-click, defined on clicked rows
    only), ctcvr = purchases / impressions.
    """
    rows, clicks = len(frame), int(frame["click"].sum())
    purchases = int(frame["purchase"].sum())
    if rows == 0:
        raise DataError("label_rates got a frame with 0 rows; pass a loaded split.")
    return {"rows": rows, "clicks": clicks, "purchases": purchases, "ctr": clicks / rows,
            "cvr": purchases / clicks if clicks else float("nan"), "ctcvr": purchases / rows}


def label_rate_table(splits: Mapping[str, pd.DataFrame], real: bool = True) -> pd.DataFrame:
    """`label_rates` of every split, one row each, plus the real Ali-CCP's (ESMM paper Table 1)."""
    table = pd.DataFrame({name: label_rates(frame) for name, frame in splits.items()}).T
    if real:
        table.loc["real Ali-CCP"] = [REAL_STATS["impressions"], REAL_STATS["clicks"],
                                     REAL_STATS["conversions"], REAL_STATS["ctr"],
                                     REAL_STATS["cvr"], REAL_STATS["ctcvr"]]
    for column in ("rows", "clicks", "purchases"):
        table[column] = table[column].astype(np.int64)
    return table


def field_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per sparse field: its group (user/item/combination/context), meaning, id counts.

    `ids` is the number of distinct non-zero ids in `frame` (0 is the unknown id); `real_ids`
    the vocabulary size reported for the public Ali-CCP (<NA> where none was reported).
    """
    rows = []
    for group, columns in FIELD_GROUPS.items():
        for c in columns:
            ids = np.unique(frame[c].to_numpy())
            rows.append({"group": group, "field": c, "meaning": FIELD_MEANINGS[c],
                         "ids": int((ids != 0).sum()), "real_ids": REAL_VOCAB_SIZES[c]})
    table = pd.DataFrame(rows)
    table["real_ids"] = table["real_ids"].astype("Int64")
    return table


def id_counts(values: np.ndarray | pd.Series, vocab_size: int | None = None) -> np.ndarray:
    """Rows per id for ids 1 .. vocab_size - 1 (default: max id); id 0, unknown, is left out."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and values.min() < 0:
        raise DataError(f"ids must be >= 0 (0 = unknown); found {values.min()}.")
    if vocab_size is None:
        size = int(values.max()) + 1 if values.size else 1
    else:
        size = int(vocab_size)
    if values.size and values.max() >= size:
        raise DataError(f"an id {values.max()} is not below vocab_size {size}; pass the "
                        f"training split's max id + 1, or leave vocab_size out.")
    return np.bincount(values, minlength=size)[1:]


def popularity_curve(values: np.ndarray | pd.Series) -> np.ndarray:
    """Rows per id, most frequent first: the y-values of a popularity (long-tail) plot.

    Only ids that occur are kept, so the curve can be drawn on log-log axes.
    """
    counts = id_counts(values)
    return np.sort(counts[counts > 0])[::-1]


def ids_seen(values: np.ndarray | pd.Series) -> np.ndarray:
    """The distinct ids that occur in `values`, sorted; id 0 (unknown) left out.

    Ids below the largest one need not all occur (a synthetic field draws its ids from a
    range; real ids are re-encoded only if frequent), so counting 1 .. max would add ids that
    exist nowhere.
    """
    ids = np.unique(np.asarray(values, dtype=np.int64))
    return ids[ids > 0]


def share_of_ids_seen_fewer_than(values: np.ndarray | pd.Series, k: int,
                                 ids: np.ndarray | None = None) -> float:
    """Share of `ids` (default: the ids that occur in `values`) that occur fewer than `k` times
    in `values`. Pass e.g. the training split's ids to ask how many of them are rare among its
    clicked rows."""
    ids = ids_seen(values) if ids is None else np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise DataError(f"ids must be a list of ids, e.g. explore.ids_seen(train[field]); got "
                        f"{ids.tolist()!r}.")
    if ids.size == 0:
        return float("nan")
    values = np.asarray(values, dtype=np.int64)
    counts = np.bincount(values, minlength=int(max(ids.max(), values.max(initial=0))) + 1)
    return float((counts[ids] < k).mean())


def top_share(values: np.ndarray | pd.Series, fraction: float) -> float:
    """Share of rows (unknown id 0 left out) taken by the top `fraction` of the ids that occur."""
    if not 0 < fraction <= 1:
        raise DataError(f"fraction must be in (0, 1], e.g. 0.1 for the top 10%; got {fraction}.")
    curve = popularity_curve(values)
    top = max(1, int(round(fraction * len(curve))))
    return float(curve[:top].sum() / curve.sum())


def clicked_vs_all(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Share of each value of `column` among all impressions and among clicked ones.

    If clicked impressions were a random sample of all impressions, the two columns would be
    about equal; `ratio` = clicked / all shows where they differ.
    """
    everywhere = frame[column].value_counts(normalize=True).sort_index()
    clicked = frame.loc[frame["click"] == 1, column].value_counts(normalize=True)
    table = pd.DataFrame({"all": everywhere, "clicked": clicked.reindex(everywhere.index,
                                                                       fill_value=0.0)})
    table["ratio"] = table["clicked"] / table["all"]
    return table


def mean_on_clicked_vs_all(values: np.ndarray, click: np.ndarray) -> dict[str, float]:
    """Mean of `values` (e.g. each row's true pCVR) over all rows and over clicked rows."""
    values, clicked = np.asarray(values, dtype=np.float64), np.asarray(click) == 1
    if len(values) != len(clicked):
        raise DataError(f"values has {len(values)} rows but click has {len(clicked)}; pass "
                        f"arrays of the same rows.")
    return {"all rows": float(values.mean()), "clicked rows": float(values[clicked].mean())}


def same_values(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True if both frames have the same columns in order and equal values (dtypes may differ)."""
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    return all(np.array_equal(a[c].to_numpy(), b[c].to_numpy()) for c in a.columns)
