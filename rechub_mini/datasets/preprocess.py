"""Turn the raw Ali-CCP logs into the processed CSV files that `load_ali_ccp` reads.

Ali-CCP is the dataset of the ESMM paper (Ma et al., "Entire Space Multi-Task Model", SIGIR 2018,
arXiv 1804.07931). Its raw form (see `raw_format.py`) is a skeleton file with one line per
impression plus a common-features file with the user fields, joined on common_feature_index.
`preprocess_raw` writes `ali_ccp_{train,val,test}.csv` in the `ali_ccp_schema.ALL_COLUMNS`
layout and a `preprocess_report.json`. Taught in tutorials/*/04_full_dataset.ipynb.

How (memory holds only the id counts and the common-features index; skeletons are streamed):
1. Pass 1 over the train skeleton counts each field's feature ids and finds each dense value's
   range. Label encoding: ids seen >= min_count times in train become 1..V, the most frequent
   first (ties in the order of the raw id); rare, unseen or missing ids become 0. MinMax
   scaling is fitted on train only; val/test values are clipped into [0, 1] (fitting it on all
   splits leaks the test data).
2. Pass 2 writes train. One pass over the raw test skeleton writes val and test (SPLIT_RULE).
Rows with conversion = 1 but click = 0 are dropped and counted. Nothing appears under a final
name until every file is complete: all are written to temporary files, then renamed.
Plain Python on one core (~8 MB of raw logs per second, benchmarks/preprocess_raw.py), so the
full data (~40 GB, 85.3M impressions; the train skeleton is read twice) takes over an hour.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from ..checks import check_count
from ..errors import DataError
from ..files import prepare_folder, replace_when_done
from .ali_ccp_schema import (ALL_COLUMNS, DENSE_COLUMNS, FIELD_OF_DENSE_COLUMN, SPARSE_COLUMNS,
                             SPLITS, split_file_name, synthetic_files)
from .raw_format import (MULTI_VALUED_RULE, USER_FIELDS, Pair, read_common_features,
                         read_skeleton, write_raw_fixture)

__all__ = ["preprocess_raw", "write_raw_fixture", "split_of", "MULTI_VALUED_RULE", "SPLIT_RULE"]

RAW_FILES = {"skeleton_train": "sample_skeleton_train.csv",
             "common_train": "common_features_train.csv",
             "skeleton_test": "sample_skeleton_test.csv",
             "common_test": "common_features_test.csv"}
REPORT_NAME = "preprocess_report.json"
SPLIT_RULE = ("A raw test row goes to val if the first byte of blake2b(sample_id, digest_size=8) "
              "is even, else to test: about 50/50, the same on every machine and in any order.")
MISSING_RULE = ("A field absent from a row (or a row whose common_feature_index is not in the "
                "common features) gets id 0 and dense value 0; MinMax is fitted on the values "
                "present.")
# More than this share of a split's impressions without user fields means a wrong or damaged
# common-features file, not a few missing contexts (which are reported and kept).
MAX_MISSING_COMMON = 0.5

Stats = dict[str, Counter]  # split -> {"rows", "dropped", "missing_common"}


def split_of(sample_id: str) -> str:
    """'val' or 'test' for a raw test row, by SPLIT_RULE (not Python's salted hash())."""
    digest = hashlib.blake2b(sample_id.encode("utf-8"), digest_size=8).digest()
    return "val" if digest[0] % 2 == 0 else "test"


def _joined_rows(skeleton: Path, common: dict, stats: Stats, assign: Callable[[str], str],
                 progress: bool) -> Iterator[tuple[str, bool, bool, dict[str, Pair]]]:
    """(split, click, purchase, fields) of each kept impression, user fields joined in."""
    for row in read_skeleton(skeleton, progress):
        split = assign(row.sample_id)
        if row.conversion and not row.click:  # a purchase needs a click: bad log line
            stats[split]["dropped"] += 1
            continue
        user = common.get(row.common_index)
        if user is None:
            stats[split]["missing_common"] += 1
            user = ()
        fields = row.fields | {f: pair for f, pair in zip(USER_FIELDS, user) if pair}
        stats[split]["rows"] += 1
        yield split, row.click, row.conversion, fields


def _raw_id_order(feature_id: str) -> tuple:
    # Numeric ids in numeric order; any non-numeric ones after them, alphabetically.
    return (0, int(feature_id), "") if feature_id.isdigit() else (1, 0, feature_id)


def _fit(rows: Iterator[tuple[str, bool, bool, dict[str, Pair]]], min_count: int
         ) -> tuple[dict[str, dict[str, int]], dict[str, tuple[float, float]]]:
    """Vocabularies {field: {raw id: 1..V}} and dense ranges {column: (min, max)} on train."""
    counts: dict[str, Counter] = {field: Counter() for field in SPARSE_COLUMNS}
    low: dict[str, float] = {}  # per field with a dense column: the smallest value seen
    high: dict[str, float] = {}
    dense_fields = list(FIELD_OF_DENSE_COLUMN.values())
    for _, _, _, fields in rows:  # once per train impression: kept to lookups
        for field, (feature_id, _) in fields.items():
            counts[field][feature_id] += 1
        for field in dense_fields:
            pair = fields.get(field)
            if pair is not None:
                if pair[1] < low.get(field, math.inf):
                    low[field] = pair[1]
                if pair[1] > high.get(field, -math.inf):
                    high[field] = pair[1]
    vocab = {}
    for field, counter in counts.items():
        # the most frequent ids first: the embedding rows that most batches read then lie side
        # by side in memory (numbered at random, training ran 2-6 % slower: benchmarks/README)
        kept = sorted((i for i, n in counter.items() if n >= min_count),
                      key=lambda i: (-counter[i], _raw_id_order(i)))
        vocab[field] = {feature_id: code for code, feature_id in enumerate(kept, start=1)}
    return vocab, {column: (low[field], high[field]) if field in low else (0.0, 0.0)
                   for column, field in FIELD_OF_DENSE_COLUMN.items()}


class RowEncoder:
    """Turns one joined impression into a processed CSV line: labels, label-encoded ids,
    MinMax-scaled dense values.

    What is the same for every row is worked out once here: each field's codes as text, each
    dense column's field, low end and width. `line` runs once per impression (85M times on
    the real data), so it only looks things up.
    """

    def __init__(self, vocab: dict[str, dict[str, int]],
                 ranges: dict[str, tuple[float, float]]) -> None:
        self.sparse = [(field, {raw: str(code) for raw, code in vocab[field].items()})
                       for field in SPARSE_COLUMNS]
        self.dense = [(FIELD_OF_DENSE_COLUMN[column], ranges[column][0],
                       (ranges[column][1] - ranges[column][0]) or 1.0)  # constant: width 1
                      for column in DENSE_COLUMNS]

    def line(self, click: bool, purchase: bool, fields: dict[str, Pair]) -> str:
        get = fields.get
        ids = [codes.get(pair[0], "0") if (pair := get(field)) else "0"  # unknown, rare: 0
               for field, codes in self.sparse]
        values = ["0" if (pair := get(field)) is None else  # fixed format: the same bytes
                  f"{min(max((pair[1] - low) / width, 0.0), 1.0):.6g}"  # on every run
                  for field, low, width in self.dense]
        return ",".join(["1" if click else "0", "1" if purchase else "0", *ids, *values]) + "\n"


def _raw_paths(raw_dir: str | os.PathLike) -> dict[str, Path]:
    folder = Path(raw_dir)
    if not folder.is_dir():
        raise DataError(f"The raw folder {str(raw_dir)!r} does not exist. Pass the folder that "
                        f"holds {', '.join(RAW_FILES.values())}.")
    missing = [name for name in RAW_FILES.values() if not (folder / name).is_file()]
    if missing:
        found = (f"lacks {', '.join(missing)}" if len(missing) < len(RAW_FILES)
                 else "holds none of the raw Ali-CCP files")
        processed = ("" if not list(folder.glob("ali_ccp_*.csv")) else " It holds processed "
                     "ali_ccp_*.csv files: those need no preprocessing, pass the folder to "
                     "`python -m rechub_mini train --data`.")
        raise DataError(f"The raw folder {str(raw_dir)!r} {found}. It must hold all four: "
                        f"{', '.join(RAW_FILES.values())}. Download them from Tianchi "
                        f"(dataset 408) and unpack them there.{processed}")
    for name in RAW_FILES.values():
        if (folder / name).stat().st_size == 0:
            raise DataError(f"{name} in {str(raw_dir)!r} is empty. Download or unpack it again.")
    return {key: folder / name for key, name in RAW_FILES.items()}


def _check_nothing_overwritten(out: Path, names: set[str]) -> None:
    """Write over split files only if they are this preprocessor's earlier output (its report
    is next to them), and never next to a synthetic meta.json that lists them: train would
    then call real data synthetic."""
    synthetic = synthetic_files(out) & names
    if synthetic:
        raise DataError(f"The output folder {out.name!r} holds synthetic data whose meta.json "
                        f"lists {sorted(synthetic)}; give another --out folder for the real "
                        f"data.")
    existing = sorted(p.name for p in out.iterdir() if p.name in names)
    if existing and not (out / REPORT_NAME).exists():
        raise DataError(f"The output folder {out.name!r} already holds {existing}, which "
                        f"preprocess did not write (no {REPORT_NAME}); it does not overwrite "
                        f"them. Give another --out folder, or delete those files first.")


def _check_join(stats: Counter, skeleton: Path, common: Path) -> None:
    """Stop when a skeleton had no impressions, or most of them found no user fields: the
    common-features file is then the wrong one (the other split's) or damaged, and every row
    would silently get id 0 for all user fields."""
    rows = stats["rows"] + stats["dropped"]
    if rows == 0:
        raise DataError(f"{skeleton.name} holds no impressions. Download or unpack it again.")
    if stats["missing_common"] > MAX_MISSING_COMMON * stats["rows"]:
        raise DataError(f"{stats['missing_common']:,} of {stats['rows']:,} impressions of "
                        f"{skeleton.name} have a common_feature_index that {common.name} does "
                        f"not list. Check that {common.name} belongs to {skeleton.name} (same "
                        f"split, same download) and is complete.")


def preprocess_raw(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, min_count: int = 10,
                   progress: bool = False) -> dict:
    """Write processed `ali_ccp_{train,val,test}.csv` and `preprocess_report.json` to `out_dir`.

    Args:
        raw_dir: folder with sample_skeleton_{train,test}.csv and common_features_{train,test}.csv.
        out_dir: folder for the processed files (created if needed).
        min_count: ids seen fewer times than this in train are mapped to 0 (unknown).
        progress: show tqdm progress bars (one per file read).

    Returns:
        The report: rows written, dropped (click = 0, conversion = 1) rows and rows without
        common features per split; vocab sizes per field (kept ids + 1 for id 0, i.e. what
        `SparseFeature(vocab_size=...)` wants); the dense ranges fitted on train; the rules.
    """
    paths = _raw_paths(raw_dir)
    min_count = check_count("min_count (how often an id must appear in train to get its own "
                            "embedding; default 10)", min_count)
    out = prepare_folder(out_dir, "the output folder")
    csv_names = {split: split_file_name(split, sample=False) for split in SPLITS}
    _check_nothing_overwritten(out, set(csv_names.values()))
    common = read_common_features(paths["common_train"], progress)
    fit_stats: Stats = defaultdict(Counter)
    vocab, ranges = _fit(_joined_rows(paths["skeleton_train"], common, fit_stats,
                                      lambda _: "train", progress), min_count)
    _check_join(fit_stats["train"], paths["skeleton_train"], paths["common_train"])
    stats: Stats = {split: Counter() for split in SPLITS}
    names = [*csv_names.values(), REPORT_NAME]
    # every file under a temporary name, renamed into place only when all are complete
    with replace_when_done([out / name for name in names]) as temporary, ExitStack() as opened:
        files = {name: opened.enter_context(open(temporary[out / name], "w", encoding="utf-8",
                                                 newline="\n")) for name in names}
        for name in csv_names.values():
            files[name].write(",".join(ALL_COLUMNS) + "\n")

        encoder = RowEncoder(vocab, ranges)

        def write(rows: Iterator[tuple[str, bool, bool, dict[str, Pair]]]) -> None:
            for split, click, purchase, fields in rows:
                files[csv_names[split]].write(encoder.line(click, purchase, fields))

        write(_joined_rows(paths["skeleton_train"], common, stats, lambda _: "train", progress))
        common = {}  # let the train index go before the test one is read
        common = read_common_features(paths["common_test"], progress)
        write(_joined_rows(paths["skeleton_test"], common, stats, split_of, progress))
        _check_join(stats["val"] + stats["test"], paths["skeleton_test"], paths["common_test"])
        report = {
            "min_count": min_count,
            "rows": {split: stats[split]["rows"] for split in SPLITS},
            "dropped_purchase_without_click": {s: stats[s]["dropped"] for s in SPLITS},
            "missing_common_features": {s: stats[s]["missing_common"] for s in SPLITS},
            "vocab_sizes": {field: len(vocab[field]) + 1 for field in SPARSE_COLUMNS},
            "dense_ranges_fitted_on_train": {c: list(ranges[c]) for c in DENSE_COLUMNS},
            "multi_valued_rule": MULTI_VALUED_RULE,
            "missing_rule": MISSING_RULE,
            "split_rule": SPLIT_RULE,
        }
        files[REPORT_NAME].write(json.dumps(report, indent=2) + "\n")
    return report
