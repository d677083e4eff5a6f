"""Turn the raw Ali-CCP logs into the processed CSV files that `load_ali_ccp` reads.

Ali-CCP is the dataset of the ESMM paper (Ma et al., "Entire Space Multi-Task Model", SIGIR 2018,
arXiv 1804.07931). Its raw form (see `raw_format.py`) is a skeleton file with one line per
impression plus a common-features file with the user fields, joined on common_feature_index.
`preprocess_raw` writes `ali_ccp_{train,val,test}.csv` in the `ali_ccp_schema.ALL_COLUMNS`
layout and a `preprocess_report.json`. Taught in tutorials/*/04_full_dataset.ipynb.

How (memory holds the id counts and the user contexts; skeletons are streamed in blocks):
1. Pass 1 over the train skeleton counts each field's feature ids and finds each dense value's
   range. Label encoding: ids seen >= min_count times in train become 1..V, the most frequent
   first (ties in the order of the raw id); rare, unseen or missing ids become 0. MinMax
   scaling is fitted on train only; val/test values are clipped into [0, 1] (fitting it on all
   splits leaks the test data).
2. Pass 2 writes train. One pass over the raw test skeleton writes val and test (SPLIT_RULE).
Rows with conversion = 1 but click = 0 are dropped and counted. Nothing appears under a final
name until every file is complete: all are written to temporary files, then renamed.
Worker processes parse blocks of raw lines (`parallel.py`), and each user context is encoded
once, not once per impression. On the 2-core machine of benchmarks/README.md: ~12 MB of raw
logs per second in one process, ~18 with two workers, so the full data (~40 GB, 85.3M
impressions; the train skeleton is read twice) takes roughly 40 minutes to an hour there.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

from ..checks import check_count
from ..errors import DataError
from ..files import prepare_folder, replace_when_done
from .ali_ccp_schema import (ALL_COLUMNS, DENSE_COLUMNS, FIELD_OF_DENSE_COLUMN, SPARSE_COLUMNS,
                             SPLITS, split_file_name, synthetic_files)
from .parallel import BlockWorkers, default_workers
from .raw_format import (MULTI_VALUED_RULE, SAMPLE_FIELDS, USER_FIELDS, Pair, RawBlock,
                         common_rows, shortened, skeleton_rows, write_raw_fixture)

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


# A processed line (ALL_COLUMNS) is built from pieces of the two raw files: the labels, the user
# profile ids, the item, combination and position ids, the user history ids, the user dense
# values, the sample dense values. The user's pieces are encoded once per user context; workers
# encode the skeleton's pieces of each impression and join the line.
USER_IDS_FIRST, SAMPLE_IDS, USER_IDS_LAST = SPARSE_COLUMNS[:9], SPARSE_COLUMNS[9:19], \
    SPARSE_COLUMNS[19:]
USER_DENSE, SAMPLE_DENSE = DENSE_COLUMNS[:4], DENSE_COLUMNS[4:]
SAMPLE_DENSE_FIELDS = [FIELD_OF_DENSE_COLUMN[column] for column in SAMPLE_DENSE]
USER_DENSE_FIELDS = [FIELD_OF_DENSE_COLUMN[column] for column in USER_DENSE]
LABELS = {(False, False): "0,0", (True, False): "1,0", (True, True): "1,1"}


def _raw_id_order(feature_id: str) -> tuple:
    # Numeric ids in numeric order; any non-numeric ones after them, alphabetically.
    return (0, int(feature_id), "") if feature_id.isdigit() else (1, 0, feature_id)


def _widen(low: dict[str, float], high: dict[str, float], field: str, value: float) -> None:
    """Widen the range [low[field], high[field]] to hold `value`."""
    if value < low.get(field, math.inf):
        low[field] = value
    if value > high.get(field, -math.inf):
        high[field] = value


class TrainCounts(NamedTuple):
    """What the fit pass learns from (part of) the train skeleton."""
    ids: dict[str, Counter]  # sample field -> {feature id: impressions}
    contexts: Counter  # common_feature_index -> impressions
    low: dict[str, float]  # sample field with a dense column -> smallest value
    high: dict[str, float]
    stats: Counter  # "rows", "dropped"


def count_block(block: RawBlock) -> TrainCounts:
    """The fit pass over one block of the train skeleton (runs in a worker)."""
    counts = TrainCounts({field: Counter() for field in SAMPLE_FIELDS}, Counter(), {}, {},
                         Counter())
    for row in skeleton_rows(block):
        if row.conversion and not row.click:  # a purchase needs a click: bad log line
            counts.stats["dropped"] += 1
            continue
        counts.stats["rows"] += 1
        counts.contexts[row.common_index] += 1
        for field, (feature_id, _) in row.fields.items():
            counts.ids[field][feature_id] += 1
        for field in SAMPLE_DENSE_FIELDS:
            if (pair := row.fields.get(field)) is not None:
                _widen(counts.low, counts.high, field, pair[1])
    return counts


def _fit(blocks: Iterator[TrainCounts], common: dict, min_count: int
         ) -> tuple[dict[str, dict[str, int]], dict[str, tuple[float, float]], Counter]:
    """Vocabularies {field: {raw id: 1..V}}, dense ranges {column: (min, max)} and the
    stats of the train split, from the counts of all blocks and the user contexts."""
    counts: dict[str, Counter] = {field: Counter() for field in SPARSE_COLUMNS}
    contexts: Counter = Counter()
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    stats: Counter = Counter()
    for block in blocks:
        for field, ids in block.ids.items():
            counts[field].update(ids)
        contexts.update(block.contexts)
        stats.update(block.stats)
        for field, value in (*block.low.items(), *block.high.items()):
            _widen(low, high, field, value)
    # each user context counts once per impression that names it
    for key, impressions in contexts.items():
        user = common.get(key)
        if user is None:
            stats["missing_common"] += impressions
            continue
        for field, pair in zip(USER_FIELDS, user):
            if pair is not None:
                counts[field][pair[0]] += impressions
                if field in USER_DENSE_FIELDS:
                    _widen(low, high, field, pair[1])
    vocab = {}
    for field, counter in counts.items():
        # the most frequent ids first: the embedding rows that most batches read then lie side
        # by side in memory (numbered at random, training ran 2-6 % slower: benchmarks/README)
        kept = sorted((i for i, n in counter.items() if n >= min_count),
                      key=lambda i: (-counter[i], _raw_id_order(i)))
        vocab[field] = {feature_id: code for code, feature_id in enumerate(kept, start=1)}
    ranges = {column: (low[field], high[field]) if field in low else (0.0, 0.0)
              for column, field in FIELD_OF_DENSE_COLUMN.items()}
    return vocab, ranges, stats


class RowEncoder:
    """Encodes pieces of processed lines: label-encoded ids, MinMax-scaled dense values.

    What is the same for every row is worked out once here: each field's codes as text, each
    dense column's field, low end and width. The encoder of the skeleton's pieces runs once
    per impression (85M times on the real data), so it only looks things up; it is built for
    those fields alone, since every worker process gets a copy.
    """

    def __init__(self, vocab: dict[str, dict[str, int]],
                 ranges: dict[str, tuple[float, float]]) -> None:
        self.codes = {field: {raw: str(code) for raw, code in ids.items()}
                      for field, ids in vocab.items()}
        self.scaling = {column: (FIELD_OF_DENSE_COLUMN[column], low, (high - low) or 1.0)
                        for column, (low, high) in ranges.items()}  # a constant: width 1

    def ids(self, fields: dict[str, Pair], names: list[str]) -> str:
        """The codes of the fields `names`: unknown, rare and missing ids are 0."""
        get = fields.get
        return ",".join([self.codes[name].get(pair[0], "0") if (pair := get(name)) else "0"
                         for name in names])

    def values(self, fields: dict[str, Pair], columns: list[str]) -> str:
        """The dense `columns`, scaled into [0, 1], in a fixed format (the same bytes each run);
        0 where the field is missing."""
        get = fields.get
        return ",".join(["0" if (pair := get(field)) is None else
                         f"{min(max((pair[1] - low) / width, 0.0), 1.0):.6g}"
                         for field, low, width in map(self.scaling.__getitem__, columns)])

    def user_pieces(self, user: tuple[Pair | None, ...]) -> tuple[str, str, str]:
        """(profile ids; history ids; dense values) of one user context (USER_FIELDS order)."""
        fields = {field: pair for field, pair in zip(USER_FIELDS, user) if pair is not None}
        return (self.ids(fields, USER_IDS_FIRST), self.ids(fields, USER_IDS_LAST),
                self.values(fields, USER_DENSE))


class Encoding(NamedTuple):
    """What a worker needs to write the rows of one raw skeleton file."""
    encoder: RowEncoder  # of the skeleton's fields
    user_pieces: dict[str, tuple[str, str, str]]  # common_feature_index -> encoded user pieces
    missing_user: tuple[str, str, str]  # the pieces of a context not in the common features
    split_rule: str  # "train": every row is train; "test": val or test by split_of(sample_id)


def encode_block(block: RawBlock, encoding: Encoding
                 ) -> tuple[dict[str, str], dict[str, Counter]]:
    """The writing pass over one skeleton block (runs in a worker): the processed lines of
    each split, and per split the rows written, dropped and without user fields."""
    encoder, user_pieces = encoding.encoder, encoding.user_pieces
    missing_user = encoding.missing_user
    lines: dict[str, list[str]] = {}
    stats: dict[str, Counter] = {}
    for row in skeleton_rows(block):
        split = "train" if encoding.split_rule == "train" else split_of(row.sample_id)
        counts = stats.setdefault(split, Counter())
        if row.conversion and not row.click:  # a purchase needs a click: bad log line
            counts["dropped"] += 1
            continue
        counts["rows"] += 1
        user = user_pieces.get(row.common_index)
        if user is None:
            counts["missing_common"] += 1
            user = missing_user
        ids, values = encoder.ids(row.fields, SAMPLE_IDS), encoder.values(row.fields,
                                                                           SAMPLE_DENSE)
        lines.setdefault(split, []).append(
            f"{LABELS[row.click, row.conversion]},{user[0]},{ids},{user[1]},{user[2]},"
            f"{values}\n")
    return {split: "".join(split_lines) for split, split_lines in lines.items()}, stats


def _read_common(workers: BlockWorkers, path: Path, progress: bool
                 ) -> dict[str, tuple[Pair | None, ...]]:
    """{common_feature_index: user fields aligned with USER_FIELDS} of a common-features file."""
    index: dict[str, tuple[Pair | None, ...]] = {}
    shared: dict[Pair, Pair] = {}  # one object per distinct (id, value): saves a lot of memory
    for rows, error in workers.map(common_rows, path, progress):
        for number, key, user in rows:
            if key in index:
                raise DataError(f"{path.name}, line {number}: common_feature_index "
                                f"{shortened(key)} appears a second time. Each user context "
                                f"must be listed once: check that two files were not "
                                f"concatenated.")
            index[key] = tuple(None if pair is None else shared.setdefault(pair, pair)
                               for pair in user)
        if error is not None:  # after the lines before it: the first bad line is named
            raise error
    return index


def _write(workers: BlockWorkers, raw: Path, encoding: Encoding, files: dict, stats: Stats,
           progress: bool) -> None:
    """Write the rows of a raw skeleton file to their splits' files."""
    for texts, block_stats in workers.map(encode_block, raw, progress, encoding):
        for split, text in texts.items():
            files[split].write(text)
        for split, counts in block_stats.items():
            stats[split].update(counts)


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
                   progress: bool = False, workers: int | None = None) -> dict:
    """Write processed `ali_ccp_{train,val,test}.csv` and `preprocess_report.json` to `out_dir`.

    Args:
        raw_dir: folder with sample_skeleton_{train,test}.csv and common_features_{train,test}.csv.
        out_dir: folder for the processed files (created if needed).
        min_count: ids seen fewer times than this in train are mapped to 0 (unknown).
        progress: show tqdm progress bars (one per file read).
        workers: processes that parse the raw lines. Default: 1 for raw files under 64 MB
            (starting workers costs seconds), else one per usable CPU core, at most 4. The
            files written are the same bytes for any number. A script that starts workers
            must call this under `if __name__ == "__main__":` (Python starts them by
            importing the script again); the command line does.

    Returns:
        The report: rows written, dropped (click = 0, conversion = 1) rows and rows without
        common features per split; vocab sizes per field (kept ids + 1 for id 0, i.e. what
        `SparseFeature(vocab_size=...)` wants); the dense ranges fitted on train; the rules.
    """
    paths = _raw_paths(raw_dir)
    min_count = check_count("min_count (how often an id must appear in train to get its own "
                            "embedding; default 10)", min_count)
    if workers is None:
        workers = default_workers(sum(path.stat().st_size for path in paths.values()))
    workers = check_count("workers (processes that parse the raw files)", workers)
    out = prepare_folder(out_dir, "the output folder")
    csv_names = {split: split_file_name(split, sample=False) for split in SPLITS}
    _check_nothing_overwritten(out, set(csv_names.values()))
    names = [*csv_names.values(), REPORT_NAME]
    stats: Stats = {split: Counter() for split in SPLITS}
    # every file under a temporary name, renamed into place only when all are complete (and
    # the workers have ended, so that Ctrl-C while they end does not undo a finished run)
    with replace_when_done([out / name for name in names]) as temporary, ExitStack() as opened, \
            BlockWorkers(workers, scratch_folder=out) as pool:
        common = _read_common(pool, paths["common_train"], progress)
        vocab, ranges, fit_stats = _fit(
            pool.map(count_block, paths["skeleton_train"], progress), common, min_count)
        _check_join(fit_stats, paths["skeleton_train"], paths["common_train"])
        user_encoder = RowEncoder({field: vocab[field] for field in USER_FIELDS},
                                  {column: ranges[column] for column in USER_DENSE})
        sample_encoder = RowEncoder({field: vocab[field] for field in SAMPLE_IDS},
                                    {column: ranges[column] for column in SAMPLE_DENSE})
        files = {name: opened.enter_context(open(temporary[out / name], "w", encoding="utf-8",
                                                 newline="\n")) for name in names}
        for name in csv_names.values():
            files[name].write(",".join(ALL_COLUMNS) + "\n")
        by_split = {split: files[name] for split, name in csv_names.items()}
        missing_user = user_encoder.user_pieces((None,) * len(USER_FIELDS))
        for split_rule in ("train", "test"):
            if split_rule == "test":  # the train contexts went (below) before these are read
                common = _read_common(pool, paths["common_test"], progress)
            pieces = {key: user_encoder.user_pieces(user) for key, user in common.items()}
            common = {}  # the raw contexts can go: the encoded pieces are what the rows need
            _write(pool, paths[f"skeleton_{split_rule}"],
                   Encoding(sample_encoder, pieces, missing_user, split_rule), by_split, stats,
                   progress)
            pieces = {}
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
