"""Read a processed Ali-CCP CSV into typed column arrays, in chunks, with an `.npy` cache.

The full training split has ~42M rows: pandas' default int64/float64 parse of it needs several
times the memory of the final arrays. Here the rows are counted first, int32/float32/int8
arrays are allocated once and filled chunk by chunk, so the peak stays near the arrays' own
size. The arrays are then saved next to the CSV (`<file>.npy.cache/`) and memory-mapped on the
next load, as long as the CSV's size and modification time are unchanged; a cache that no
longer matches its CSV is replaced, or removed when the CSV is now too small to be cached.
Taught in tutorials/*/04_full_dataset.ipynb.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..files import warn_about_leftovers
from .ali_ccp_schema import ALL_COLUMNS, DENSE_COLUMNS, LABEL_COLUMNS, SPARSE_COLUMNS

CACHE_FORMAT = "rechub_mini.csv_arrays/1"
CACHE_MIN_BYTES = 50 * 1024 * 1024  # smaller files parse in well under a second
DTYPES = {**{c: np.int8 for c in LABEL_COLUMNS}, **{c: np.int32 for c in SPARSE_COLUMNS},
          **{c: np.float32 for c in DENSE_COLUMNS}}
_unwritable_folders: set[Path] = set()  # data folders already warned about, once per process


def count_data_rows(path: Path) -> int:
    """Number of data lines (lines after the header), counted in binary blocks."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1  # a last line without newline
    return max(lines - 1, 0)


def check_header(path: Path) -> list[str]:
    if path.stat().st_size == 0:
        raise DataError(f"{path.name} is empty (0 bytes): an interrupted copy or download? "
                        f"Copy or write it again.")
    # utf-8-sig: a spreadsheet's "CSV UTF-8" export starts with a byte-order mark
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline().strip().split(",")
    spaced = [name for name in header if name != name.strip()]
    if spaced:
        raise DataError(f"{path.name}: the header has spaces around column names, e.g. "
                        f"{spaced[:3]}; write it without them (click,purchase,101,...).")
    missing = [c for c in ALL_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path.name}: missing columns {missing}. A processed Ali-CCP file has "
                        f"the columns click, purchase, 23 sparse ids and 8 dense values "
                        f"(see rechub_mini.datasets.ali_ccp_schema.ALL_COLUMNS).")
    return header


def _diagnose(path: Path, first_row: int, rows: int) -> DataError:
    """Find the first cell that does not parse, in data rows [first_row, first_row + rows)."""
    raw = pd.read_csv(path, usecols=ALL_COLUMNS, dtype=str, skiprows=range(1, first_row + 1),
                      nrows=rows, keep_default_na=False)
    for column in ALL_COLUMNS:
        text = raw[column]
        kind = "integer" if DTYPES[column] != np.float32 else "number"
        parsed = pd.to_numeric(text, errors="coerce")
        bad = parsed.isna().to_numpy()
        if kind == "integer":
            bad = bad | ~np.isclose(parsed.fillna(0.5).to_numpy() % 1, 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            value = text.iloc[i]
            hint = ("the file may be truncated or a field missing" if value == ""
                    else f"expected {'an ' if kind == 'integer' else 'a '}{kind}")
            return DataError(f"{path.name}, line {first_row + i + 2}, column {column!r}: value "
                             f"{value!r} cannot be read ({hint}). Fix or remove that line.")
    return DataError(f"{path.name}: rows {first_row + 2}..{first_row + rows + 1} cannot be read; "
                     f"check the file for stray quotes or separators.")


def check_last_line(path: Path, n_fields: int, line_number: int) -> None:
    """A download or copy cut short leaves a last line with too few fields."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 65536))
        last = f.read().rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    found = last.count(b",") + 1
    if found < n_fields:
        raise DataError(f"{path.name}, line {line_number}: {found} of {n_fields} fields; the file "
                        f"looks truncated (an interrupted download or copy?). Get it again.")


def parse_csv(path: Path, chunk_rows: int = 1_000_000) -> dict[str, np.ndarray]:
    """Parse the schema's columns into preallocated arrays, validating each chunk."""
    header = check_header(path)
    n = count_data_rows(path)
    if n == 0:
        raise DataError(f"{path.name} has no data rows (only a header or nothing at all).")
    check_last_line(path, len(header), n + 1)
    arrays = {c: np.empty(n, dtype=DTYPES[c]) for c in ALL_COLUMNS}
    start = 0
    # no usecols: with it pandas silently accepts lines that have too many fields
    reader = pd.read_csv(path, dtype=DTYPES, chunksize=chunk_rows)
    while True:
        try:
            chunk = next(reader)
        except StopIteration:
            break
        except (ValueError, TypeError, pd.errors.ParserError) as err:
            if isinstance(err, pd.errors.ParserError):
                detail = str(err).strip().removeprefix("Error tokenizing data. C error: ")
                raise DataError(f"{path.name}: {detail}. That line has the wrong number of "
                                f"fields; fix or remove it.") from None
            raise _diagnose(path, start, chunk_rows) from None
        stop = start + len(chunk)
        for c in ALL_COLUMNS:
            arrays[c][start:stop] = chunk[c].to_numpy()
        start = stop
    if start != n:
        raise DataError(f"{path.name}: counted {n} lines but parsed {start} rows; the file has "
                        f"blank lines or quoted line breaks. Remove them.")
    validate_arrays(path.name, arrays)
    return arrays


def validate_arrays(file_name: str, arrays: dict[str, np.ndarray]) -> None:
    """Labels in {0, 1}, ids >= 0, dense values finite; errors name file, line and value."""
    for c in LABEL_COLUMNS:
        bad = (arrays[c] != 0) & (arrays[c] != 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{file_name}, line {i + 2}: label {c!r} is {arrays[c][i]}, but "
                            f"labels must be 0 or 1 ({int(bad.sum())} bad rows).")
    for c in SPARSE_COLUMNS:
        bad = arrays[c] < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{file_name}, line {i + 2}: column {c!r} has negative id "
                            f"{arrays[c][i]}; ids are >= 0 with 0 meaning unknown.")
    for c in DENSE_COLUMNS:
        bad = ~np.isfinite(arrays[c])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{file_name}, line {i + 2}: dense column {c!r} has "
                            f"{int(bad.sum())} NaN or infinite values (first: {arrays[c][i]}). "
                            f"Fill them (e.g. with 0) before loading.")


def _cache_dir(path: Path) -> Path:
    return path.with_name(path.name + ".npy.cache")


def _stamp(path: Path) -> dict:
    stat = path.stat()
    return {"format": CACHE_FORMAT, "csv_bytes": stat.st_size, "csv_mtime_ns": stat.st_mtime_ns}


def read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """Memory-mapped arrays from the cache, or None if it is missing or stale."""
    folder = _cache_dir(path)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("stamp") != _stamp(path):
        return None
    try:
        return {c: np.load(folder / f"{c}.npy", mmap_mode="r") for c in ALL_COLUMNS}
    except (OSError, ValueError):
        return None


def remove_stale_cache(path: Path) -> None:
    """Delete the cache of `path` if it no longer matches the CSV (it would never be read
    again, and can be as large as the CSV); a fresh one stays."""
    folder = _cache_dir(path)
    if folder.is_dir() and read_cache(path) is None:
        shutil.rmtree(folder, ignore_errors=True)


def write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache into a temp folder, then swap it in: never a half-written cache."""
    folder = _cache_dir(path)
    warn_about_leftovers([folder])
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o755)  # readable by all, like the CSV next to it (mkdtemp: owner only)
        for c, a in arrays.items():
            np.save(tmp / f"{c}.npy", a)
        (tmp / "meta.json").write_text(json.dumps({"stamp": _stamp(path)}), encoding="utf-8")
        if folder.exists():
            old = folder.with_name(folder.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_csv_arrays(path: str | os.PathLike, cache: bool | None = None,
                    chunk_rows: int = 1_000_000) -> dict[str, np.ndarray]:
    """Column arrays of one processed CSV: from the cache if fresh, else parsed (and cached).

    `cache=None` caches files larger than 50 MB only; True/False force it on/off.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"File {path.name!r} not found in {path.parent.name!r}.")
    use_cache = path.stat().st_size >= CACHE_MIN_BYTES if cache is None else cache
    if use_cache and (arrays := read_cache(path)) is not None:
        return arrays
    if not use_cache:
        remove_stale_cache(path)
    arrays = parse_csv(path, chunk_rows)
    if use_cache:
        try:
            write_cache(path, arrays)
        except OSError as err:
            folder = path.parent.resolve()
            if folder not in _unwritable_folders:
                _unwritable_folders.add(folder)
                warnings.warn(f"Could not write the array cache next to {path.name} ({err}): "
                              f"the CSVs of {path.parent.name!r} are parsed at every load. "
                              f"Copy the folder somewhere writable to cache them.",
                              stacklevel=2)
    return arrays
