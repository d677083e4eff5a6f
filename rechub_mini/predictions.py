"""A trained model's predictions for every row of a split, as a table and as a CSV file.

After `train --save RUN`, `python -m rechub_mini predict --model RUN --data DATA --out FILE`
scores a split with the saved best model and writes one line per impression: where the row is
in the split's CSV, its labels, and one predicted probability per task. Taught in
tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .datasets.ali_ccp_schema import LABEL_COLUMNS
from .files import replace_when_done

PREDICTION_PREFIX = "p_"  # p_ctr: the predicted click probability, next to the click label
FLOAT_FORMAT = "%.9g"  # 9 significant digits read back as the same float32, bit for bit
WRITE_CHUNK_ROWS = 1_000_000  # rows turned into text at a time: bounded memory on large splits


def predictions_table(frame: pd.DataFrame, task_names: Sequence[str],
                      predictions: np.ndarray) -> pd.DataFrame:
    """`row`, the labels of `frame`, then one `p_<task>` column per task.

    `row` is the row's place among the data rows of the split's CSV (0 = the line after the
    header), which stays true where loading dropped rows (a purchase without a click).
    """
    if predictions.shape != (len(frame), len(task_names)):
        raise ValueError(f"{predictions.shape[0]} predictions of {predictions.shape[1]} tasks "
                         f"for {len(frame)} rows and the tasks {list(task_names)}.")
    table = pd.DataFrame({"row": frame.index.to_numpy()})
    for name in LABEL_COLUMNS:
        table[name] = frame[name].to_numpy()
    for i, name in enumerate(task_names):
        table[PREDICTION_PREFIX + name] = predictions[:, i]
    return table


def write_predictions(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write `table` as CSV under a temporary name, then rename it to `path`: an error or
    Ctrl-C on the way leaves no file, never half of one, and a file that appeared at `path`
    meanwhile is kept (see files.check_new_file: predictions never replace a file)."""
    with replace_when_done([path], keep_existing=True) as temporary:
        table.to_csv(temporary[path], index=False, float_format=FLOAT_FORMAT,
                     chunksize=WRITE_CHUNK_ROWS)
