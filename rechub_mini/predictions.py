"""A trained model's predictions for every row of a split, as a table and as a CSV file.

After `train --save RUN`, `python -m rechub_mini predict --model RUN --data DATA --out FILE`
scores a split with the saved best model and writes one line per impression: where the row is
in the split's CSV, its labels, and one predicted probability per task. Taught in
tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets.ali_ccp_schema import LABEL_COLUMNS
from .errors import DataError
from .files import prepare_folder, replace_when_done

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
        raise DataError(f"{predictions.shape[0]} predictions of {predictions.shape[1]} tasks "
                        f"for {len(frame)} rows and the tasks {list(task_names)}.")
    table = pd.DataFrame({"row": frame.index.to_numpy()})
    for name in LABEL_COLUMNS:
        table[name] = frame[name].to_numpy()
    for i, name in enumerate(task_names):
        table[PREDICTION_PREFIX + name] = predictions[:, i]
    return table


def check_new_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """Make sure `path` can be written as a new file before any long work starts: its folder
    is created, and an existing file is refused rather than replaced (it may be an earlier
    run's predictions that the user still needs)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} {os.fspath(path)!r} is a folder; give a file name in it, e.g. "
                        f"{os.fspath(path / 'predictions.csv')!r}.")
    if path.exists():
        raise DataError(f"{what} {os.fspath(path)!r} already exists, and predicting would "
                        f"replace it. Give another file name, or delete it first.")
    prepare_folder(path.parent, f"the folder of {what}")
    return path


def write_predictions(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write `table` as CSV under a temporary name, then rename it to `path`: an error or
    Ctrl-C on the way leaves no file, never half of one."""
    with replace_when_done([path]) as temporary:
        table.to_csv(temporary[path], index=False, float_format=FLOAT_FORMAT,
                     chunksize=WRITE_CHUNK_ROWS)
