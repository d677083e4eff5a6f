"""Read Ali-CCP's raw logs in blocks of whole lines, and write a tiny made-up set for tests.

The raw dataset (Tianchi dataset 408, the data of the ESMM paper: Ma et al., SIGIR 2018,
arXiv 1804.07931) is four header-less, comma-separated files:

  sample_skeleton_{train,test}.csv   sample_id, click, conversion, common_feature_index,
                                     feature_num, feature_list   (one line per impression)
  common_features_{train,test}.csv   common_feature_index, feature_num, feature_list
                                     (the user fields, shared by many impressions)

A feature_list holds feature_num entries separated by \\x01; an entry is
field_id \\x02 feature_id \\x03 value. User fields are read from the common features, the item,
combination and position fields from the skeleton; entries of other fields are checked and
skipped. Taught in tutorials/*/04_full_dataset.ipynb (via `preprocess.py`).
"""
from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import DataError
from .ali_ccp_schema import SPARSE_COLUMNS, USER_COLUMNS

ENTRY_SEP, FIELD_SEP, VALUE_SEP = "\x01", "\x02", "\x03"
SKELETON_COLUMNS = ["sample_id", "click", "conversion", "common_feature_index", "feature_num",
                    "feature_list"]
COMMON_COLUMNS = ["common_feature_index", "feature_num", "feature_list"]
USER_FIELDS = USER_COLUMNS
SAMPLE_FIELDS = [f for f in SPARSE_COLUMNS if f not in USER_FIELDS]
# the same as sets: parse_feature_list asks "is this field wanted?" for every entry
USER_FIELD_SET, SAMPLE_FIELD_SET = frozenset(USER_FIELDS), frozenset(SAMPLE_FIELDS)

MULTI_VALUED_RULE = ("A field with several entries in one row keeps the entry with the largest "
                     "value (ties: the first one); its D<field> dense column is that value.")

Pair = tuple[str, float]  # (feature_id, value) of the entry kept for one field
MAX_LINE_BYTES = 64 << 20  # far above any real line: a file without line breaks is refused


class SkeletonRow(NamedTuple):
    line: int
    sample_id: str
    click: bool
    conversion: bool
    common_index: str
    fields: dict[str, Pair]


def shortened(text: str, limit: int = 80) -> str:
    """`text` quoted for an error message, cut after `limit` characters."""
    shown = repr(text[:limit])
    return shown + " (cut)" if len(text) > limit else shown


def parse_feature_list(text: str, feature_num: str, fields: frozenset[str] | set[str],
                       where: str) -> dict[str, Pair]:
    """Parse one feature_list; return {field: (feature_id, value)} for the wanted `fields`.

    Multi-valued fields follow MULTI_VALUED_RULE. `where` ("file, line N") starts error messages.
    """
    entries = text.split(ENTRY_SEP) if text else []
    if not feature_num.isdigit() or int(feature_num) != len(entries):
        raise DataError(f"{where}: feature_num is {feature_num!r} but feature_list has "
                        f"{len(entries)} entries. The line is probably cut or damaged: check "
                        f"the file against its download (size, checksum), or unpack it again.")
    chosen: dict[str, Pair] = {}
    for entry in entries:  # once per entry of every line: kept short (it is most of the time)
        field, _, rest = entry.partition(FIELD_SEP)
        feature_id, has_value_sep, value_text = rest.partition(VALUE_SEP)
        if not (field and feature_id and has_value_sep):  # no \x02: feature_id is empty
            raise DataError(f"{where}: feature_list entry {shortened(entry)} is not "
                            f"field_id\\x02feature_id\\x03value. Raw Ali-CCP separates these "
                            f"with the control characters \\x02 and \\x03; a file re-saved "
                            f"by an editor or spreadsheet loses them: use the original file.")
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise DataError(f"{where}: field {field!r} has value {shortened(value_text)}, "
                            f"expected a finite number. The line is damaged: use the original "
                            f"file.")
        if field in fields:
            kept = chosen.get(field)
            if kept is None or value > kept[1]:
                chosen[field] = (feature_id, value)
    return chosen


class RawBlock(NamedTuple):
    """Whole lines of a raw file, as read: the unit of work of preprocessing (one process
    parses a block while others parse the next ones)."""
    file_name: str
    first_line: int  # the number of the block's first line, counted from 1
    data: bytes


def read_blocks(path: Path, block_bytes: int) -> Iterator[RawBlock]:
    """The file as blocks of about `block_bytes`, each ending at the end of a line."""
    with open(path, "rb") as f:
        first_line, pending, held = 1, [], 0  # pending: what was read after the last "\n"
        while data := f.read(block_bytes):
            end = data.rfind(b"\n") + 1
            if end == 0:  # no line ends here yet: read on
                pending.append(data)
                held += len(data)
                if held > MAX_LINE_BYTES:
                    raise DataError(f"{path.name}, line {first_line}: more than "
                                    f"{MAX_LINE_BYTES >> 20} MB without a line break. Raw "
                                    f"Ali-CCP has one impression or user context per line, "
                                    f"each ending in \\n: check that this is the right file, "
                                    f"completely unpacked.")
                continue
            block = b"".join([*pending, data[:end]])
            pending, held = [data[end:]], len(data) - end
            yield RawBlock(path.name, first_line, block)
            first_line += block.count(b"\n")
        if held:  # the last line has no line break
            yield RawBlock(path.name, first_line, b"".join(pending))


def block_lines(block: RawBlock) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a block. Lines end at "\\n" only; a
    trailing "\\r" is dropped; bytes that are not UTF-8 become U+FFFD (and fail the checks)."""
    text = block.data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.split("\n"), start=block.first_line):
        line = line.rstrip("\r")
        if line:
            yield number, line


def _columns(line: str, names: list[str], where: str) -> list[str]:
    cells = line.split(",")
    if len(cells) != len(names):
        raise DataError(f"{where}: expected {len(names)} comma-separated columns "
                        f"({', '.join(names)}), found {len(cells)}: {shortened(line)}. Check that "
                        f"the file is the right one and was completely downloaded.")
    return cells


def common_rows(block: RawBlock
                ) -> tuple[list[tuple[int, str, tuple[Pair | None, ...]]], DataError | None]:
    """(line number, common_feature_index, user fields) of each line of a common-features
    block, the user fields as a tuple aligned with USER_FIELDS (None = absent); and the error
    of the first damaged line, if any, with only the lines before it.

    The error is returned, not raised, so that whoever merges the blocks in file order can
    report a repeated key on an earlier line first: the first bad line is named, wherever the
    blocks begin and end."""
    rows = []
    try:
        for number, line in block_lines(block):
            where = f"{block.file_name}, line {number}"
            key, feature_num, feature_list = _columns(line, COMMON_COLUMNS, where)
            fields = parse_feature_list(feature_list, feature_num, USER_FIELD_SET, where)
            rows.append((number, key, tuple(fields.get(f) for f in USER_FIELDS)))
    except DataError as error:
        return rows, error
    return rows, None


def skeleton_rows(block: RawBlock) -> Iterator[SkeletonRow]:
    """The impressions of a sample_skeleton block, checked, with their per-sample fields."""
    for number, line in block_lines(block):
        where = f"{block.file_name}, line {number}"
        sample_id, click, conversion, key, feature_num, feature_list = _columns(
            line, SKELETON_COLUMNS, where)
        for name, label in (("click", click), ("conversion", conversion)):
            if label not in ("0", "1"):
                raise DataError(f"{where}: column {name} is {shortened(label)}, expected 0 or 1. "
                                f"Columns are sample_id, click, conversion, ...: check that "
                                f"this is a sample_skeleton file and the line is intact.")
        fields = parse_feature_list(feature_list, feature_num, SAMPLE_FIELD_SET, where)
        yield SkeletonRow(number, sample_id, click == "1", conversion == "1", key, fields)


def write_raw_fixture(raw_dir: str | os.PathLike, rows: int = 200, seed: int = 0) -> None:
    """Write a tiny, made-up raw Ali-CCP (all four files) into `raw_dir`. Not real data.

    Each split has `rows` impressions over about rows / 10 user contexts, with what the real
    logs hold: the real separators, skewed id frequencies (some ids are rare), multi-valued
    history fields (109_14 .. 150_14, 1-4 entries) and sometimes combination fields, missing
    fields, a few rows with conversion = 1 but click = 0, and one train impression whose
    common_feature_index is absent from common_features_train.csv. Same arguments, same bytes.
    """
    rng = random.Random(seed)
    folder = Path(raw_dir)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"101": 30, "121": 10, "122": 5, "124": 2, "125": 7, "126": 3, "127": 3, "128": 2,
             "129": 4, "109_14": 20, "110_14": 40, "127_14": 30, "150_14": 25, "205": 60,
             "206": 15, "207": 30, "210": 20, "216": 25, "508": 40, "509": 40, "702": 40,
             "853": 40, "301": 4}
    offsets = {f: 1000 * (i + 1) for i, f in enumerate(SPARSE_COLUMNS)}  # global feature ids
    history = ["109_14", "110_14", "127_14", "150_14"]

    def entry(field: str, value: float = 1.0) -> str:
        n = sizes[field]  # low ids are frequent, high ones rare
        feature_id = offsets[field] + min(int(rng.expovariate(3 / n)), n - 1)
        return f"{field}{FIELD_SEP}{feature_id}{VALUE_SEP}{value}"

    def feature_line(entries: list[str]) -> str:
        return f"{len(entries)},{ENTRY_SEP.join(entries)}"

    sample_id = 0
    for split in ("train", "test"):
        contexts = [f"{rng.getrandbits(64):016x}" for _ in range(max(rows // 10, 2))]
        with open(folder / f"common_features_{split}.csv", "w", encoding="utf-8",
                  newline="\n") as f:
            for key in contexts:
                entries = [entry(field) for field in USER_FIELDS if field not in history]
                for field in history:
                    if rng.random() < 0.9:
                        entries += [entry(field, round(rng.uniform(0.5, 5.0), 4))
                                    for _ in range(rng.randint(1, 4))]
                f.write(f"{key},{feature_line(entries)}\n")
        with open(folder / f"sample_skeleton_{split}.csv", "w", encoding="utf-8",
                  newline="\n") as f:
            for i in range(rows):
                sample_id += 1
                click = rng.random() < 0.25
                conversion = click and rng.random() < 0.3
                if i % 37 == 5:  # the logs hold a few purchases without a click
                    click, conversion = False, True
                key = rng.choice(contexts)
                if split == "train" and i == rows // 2:
                    key = f"{rng.getrandbits(64):016x}"  # not in the common features
                entries = [entry(field) for field in ("205", "206", "207", "210", "301")]
                if rng.random() < 0.9:
                    entries.append(entry("216"))
                for field in ("508", "509", "702", "853"):
                    entries += [entry(field, round(rng.uniform(0.1, 3.0), 4))
                                for _ in range(1 if rng.random() < 0.8 else 2)]
                f.write(f"{sample_id},{int(click)},{int(conversion)},{key},"
                        f"{feature_line(entries)}\n")
