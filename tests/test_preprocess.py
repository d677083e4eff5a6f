"""The raw Ali-CCP preprocessor, on fixtures written here: schema, encoding, scaling, splits."""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from rechub_mini.datasets.ali_ccp_schema import (ALL_COLUMNS, DENSE_COLUMNS, SPARSE_COLUMNS,
                                                 USER_COLUMNS, split_file_name)
from rechub_mini.datasets.preprocess import (MULTI_VALUED_RULE, REPORT_NAME, preprocess_raw,
                                             split_of, write_raw_fixture)
from rechub_mini.cli import main
from rechub_mini.datasets import parallel, preprocess, raw_format
from rechub_mini.datasets.raw_format import block_lines, parse_feature_list, read_blocks
from rechub_mini.errors import DataError

CSV_NAMES = [split_file_name(s, sample=False) for s in ("train", "val", "test")]
USER_DENSE = ["D109_14", "D110_14", "D127_14", "D150_14"]


def feature_list(items):
    """'field\\x02id\\x03value' entries joined by \\x01, preceded by their count."""
    return f"{len(items)}," + "\x01".join(f"{f}\x02{i}\x03{v}" for f, i, v in items)


def write_raw(folder, train, test, common_train, common_test):
    """Hand-written raw files. Skeleton rows: (sample_id, click, conversion, key, items)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows, common in (("train", train, common_train), ("test", test, common_test)):
        (folder / f"sample_skeleton_{split}.csv").write_text("".join(
            f"{sid},{click},{conv},{key},{feature_list(items)}\n"
            for sid, click, conv, key, items in rows))
        (folder / f"common_features_{split}.csv").write_text("".join(
            f"{key},{feature_list(items)}\n" for key, items in common.items()))
    return folder


def read_splits(out):
    return {name: pd.read_csv(out / name) for name in CSV_NAMES}


def both_test_splits(out):
    frames = read_splits(out)
    return pd.concat([frames["ali_ccp_val.csv"], frames["ali_ccp_test.csv"]], ignore_index=True)


@pytest.fixture
def fixture_run(tmp_path):
    write_raw_fixture(tmp_path / "raw", rows=200, seed=0)
    report = preprocess_raw(tmp_path / "raw", tmp_path / "out")
    return tmp_path, report


def test_fixture_is_deterministic_and_realistic(tmp_path):
    write_raw_fixture(tmp_path / "a", seed=0)
    write_raw_fixture(tmp_path / "b", seed=0)
    write_raw_fixture(tmp_path / "c", seed=1)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["common_features_test.csv", "common_features_train.csv",
                     "sample_skeleton_test.csv", "sample_skeleton_train.csv"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert ((tmp_path / "a" / names[-1]).read_bytes()
            != (tmp_path / "c" / names[-1]).read_bytes())
    common = (tmp_path / "a" / "common_features_train.csv").read_text().splitlines()
    fields = [[e.split("\x02")[0] for e in line.split(",")[2].split("\x01")] for line in common]
    assert any(f.count("110_14") > 1 for f in fields)  # multi-valued history fields


def test_output_columns_and_dtypes_match_schema(fixture_run):
    tmp_path, report = fixture_run
    for name, frame in read_splits(tmp_path / "out").items():
        assert list(frame.columns) == ALL_COLUMNS, name
        assert set(frame["click"]) <= {0, 1} and set(frame["purchase"]) <= {0, 1}
        for c in SPARSE_COLUMNS:
            assert frame[c].dtype.kind == "i", (name, c)
            assert frame[c].between(0, report["vocab_sizes"][c] - 1).all(), (name, c)
        for c in DENSE_COLUMNS:
            assert frame[c].dtype.kind == "f", (name, c)
            assert frame[c].between(0.0, 1.0).all(), (name, c)
    saved = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert saved == report
    assert report["multi_valued_rule"] == MULTI_VALUED_RULE
    assert report["missing_common_features"]["train"] == 1  # the fixture's orphan row
    assert report["rows"]["train"] == len(pd.read_csv(tmp_path / "out" / "ali_ccp_train.csv"))


def test_rare_ids_map_to_0_and_frequent_ones_to_1_to_v(tmp_path):
    user = {"u1": [("101", 7, 1.0)]}
    train_ids = ["500"] * 3 + ["700"] * 2 + ["90"] * 2 + ["600"]
    train = [(n, 0, 0, "u1", [("205", i, 1.0)]) for n, i in enumerate(train_ids)]
    test = [(100 + n, 0, 0, "u1", [("205", i, 1.0)]) for n, i in enumerate(["500", "600", "999"])]
    raw = write_raw(tmp_path / "raw", train, test, user, user)
    report = preprocess_raw(raw, tmp_path / "out", min_count=2)
    assert report["vocab_sizes"]["205"] == 4  # 90, 500, 700 + the unknown id 0
    codes = pd.read_csv(tmp_path / "out" / "ali_ccp_train.csv")["205"].tolist()
    # Kept ids are numbered by how often they occur, ties in numeric order of the raw id:
    # 500 (3 times) -> 1, 90 (twice) -> 2, 700 (twice) -> 3.
    assert codes == [1, 1, 1, 3, 3, 2, 2, 0]
    assert sorted(both_test_splits(tmp_path / "out")["205"]) == [0, 0, 1]  # 600 rare, 999 unseen
    with pytest.raises(DataError, match=r"min_count \(how often .*\) must be a whole number of "
                                        r"at least 1, got 0\."):
        preprocess_raw(raw, tmp_path / "out", min_count=0)


def test_minmax_is_fitted_on_train_only(tmp_path):
    user = {"u1": [("101", 7, 1.0)]}
    train = [(n, 0, 0, "u1", [("508", 5, v)]) for n, v in enumerate([1.0, 3.0, 2.0])]
    test = [(10 + n, 0, 0, "u1", [("508", 5, v)]) for n, v in enumerate([5.0, 0.0, 2.0])]
    raw = write_raw(tmp_path / "raw", train, test, user, user)
    report = preprocess_raw(raw, tmp_path / "out", min_count=1)
    assert report["dense_ranges_fitted_on_train"]["D508"] == [1.0, 3.0]
    train_out = pd.read_csv(tmp_path / "out" / "ali_ccp_train.csv")
    assert train_out["D508"].tolist() == [0.0, 1.0, 0.5]
    # 5.0 is above the train max: clipped to 1.0 (a fit on all splits would give 0.4 for 2.0).
    assert sorted(both_test_splits(tmp_path / "out")["D508"]) == [0.0, 0.5, 1.0]


def test_purchase_without_click_rows_are_dropped_and_counted(fixture_run):
    tmp_path, report = fixture_run
    for split, outputs in (("train", ["train"]), ("test", ["val", "test"])):
        lines = (tmp_path / "raw" / f"sample_skeleton_{split}.csv").read_text().splitlines()
        bad = sum(line.split(",")[1:3] == ["0", "1"] for line in lines)
        assert bad > 0
        assert sum(report["dropped_purchase_without_click"][s] for s in outputs) == bad
        assert sum(report["rows"][s] for s in outputs) == len(lines) - bad
    for frame in read_splits(tmp_path / "out").values():
        assert not ((frame["purchase"] == 1) & (frame["click"] == 0)).any()


def test_missing_common_features_are_counted_and_zero(tmp_path):
    user = {"u1": [("101", 7, 1.0), ("109_14", 3, 2.0)]}
    items = [("205", 9, 1.0), ("508", 4, 1.5)]
    train = [(1, 1, 0, "u1", items), (2, 0, 0, "gone", items), (3, 0, 0, "u1", items)]
    raw = write_raw(tmp_path / "raw", train, [(9, 0, 0, "u1", items)], user, user)
    report = preprocess_raw(raw, tmp_path / "out", min_count=1)
    assert report["missing_common_features"] == {"train": 1, "val": 0, "test": 0}
    out = pd.read_csv(tmp_path / "out" / "ali_ccp_train.csv")
    assert (out.loc[1, USER_COLUMNS + USER_DENSE] == 0).all()
    assert out.loc[1, "205"] == 1 and out.loc[0, "101"] == 1 and out.loc[0, "109_14"] == 1


def test_multi_valued_fields_keep_the_largest_value_first_on_ties(tmp_path):
    where = "test, line 1"
    items = [("109_14", "11", 0.5), ("109_14", "12", 2.0), ("109_14", "13", 2.0),
             ("205", "1", 1.0)]
    parsed = parse_feature_list(feature_list(items).split(",")[1], "4", ["109_14"], where)
    assert parsed == {"109_14": ("12", 2.0)}

    common = {"u1": items[:3], "u2": [("109_14", "13", 1.0)]}
    train = [(1, 0, 0, "u1", [("508", 5, 0.3), ("508", 6, 0.9)]),
             (2, 0, 0, "u2", [("508", 5, 0.3)])]
    raw = write_raw(tmp_path / "raw", train, train[1:], common, common)
    report = preprocess_raw(raw, tmp_path / "out", min_count=1)
    out = pd.read_csv(tmp_path / "out" / "ali_ccp_train.csv")
    # Only kept entries count: 109_14 ids 12 -> 1 and 13 -> 2; id 11 was never kept.
    assert report["vocab_sizes"]["109_14"] == 3
    assert out["109_14"].tolist() == [1, 2]
    assert report["dense_ranges_fitted_on_train"]["D109_14"] == [1.0, 2.0]
    assert out["D109_14"].tolist() == [1.0, 0.0]
    assert out["508"].tolist() == [2, 1] and out["D508"].tolist() == [1.0, 0.0]


def test_val_test_split_is_about_half_and_independent_of_line_order(fixture_run):
    tmp_path, report = fixture_run
    kept = report["rows"]["val"] + report["rows"]["test"]
    assert 0.35 < report["rows"]["val"] / kept < 0.65
    # Pinned: the split of a sample_id must not change between runs, machines or versions.
    pinned = "".join("v" if split_of(str(i)) == "val" else "t" for i in range(1, 25))
    assert pinned == "vtvtttttvvttttttvvvvttvt"

    shuffled = tmp_path / "shuffled"
    shutil.copytree(tmp_path / "raw", shuffled)
    lines = (shuffled / "sample_skeleton_test.csv").read_text().splitlines(keepends=True)
    random.Random(1).shuffle(lines)
    (shuffled / "sample_skeleton_test.csv").write_text("".join(lines))
    preprocess_raw(shuffled, tmp_path / "out_shuffled")
    for name in ("ali_ccp_val.csv", "ali_ccp_test.csv"):
        original = (tmp_path / "out" / name).read_text().splitlines()
        reordered = (tmp_path / "out_shuffled" / name).read_text().splitlines()
        assert original != reordered or len(original) < 2  # the order did change...
        assert sorted(original) == sorted(reordered)  # ...but not which rows went where


GOOD = "2,0,0,u1," + feature_list([("205", 3, 1.0)])


@pytest.mark.parametrize("bad_line, shown", [
    ("2,0,0,u1,1", "found 5"),
    ("2,0,0,u1,1,205x3\x031.0", "205x3"),
    ("2,0,0,u1,1,205\x023", r"'205\x023'"),
    ("2,0,0,u1,1,205\x023\x03abc", "abc"),
    ("2,0,0,u1,2,205\x023\x031.0", "feature_num is '2'"),
    ("2,2,0,u1,1,205\x023\x031.0", "click is '2'"),
    ("2,0,x,u1,1,205\x023\x031.0", "conversion is 'x'"),
])
def test_malformed_lines_raise_data_error_with_line_number(tmp_path, bad_line, shown):
    user = {"u1": [("101", 7, 1.0)]}
    raw = write_raw(tmp_path / "raw", [], [(9, 0, 0, "u1", [("205", 3, 1.0)])], user, user)
    (raw / "sample_skeleton_train.csv").write_text(f"{GOOD}\n{bad_line}\n{GOOD}\n")
    with pytest.raises(DataError, match=r"sample_skeleton_train\.csv, line 2") as info:
        preprocess_raw(raw, tmp_path / "out")
    message = str(info.value)
    assert shown in message
    assert str(tmp_path) not in message  # the file name, not the machine's path


def test_malformed_common_features_name_their_file(tmp_path):
    rows = [(1, 1, 0, "u1", [("205", 9, 1.0)])]
    raw = write_raw(tmp_path / "raw", rows, rows, {"u1": [("101", 7, 1.0)]},
                    {"u1": [("101", 7, 1.0)], "u2": [("101", 8, "n/a")]})
    with pytest.raises(DataError, match=r"common_features_test\.csv, line 2.*'n/a'"):
        preprocess_raw(raw, tmp_path / "out")


def test_missing_raw_files_are_named(tmp_path):
    with pytest.raises(DataError) as info:
        preprocess_raw(tmp_path, tmp_path / "out")
    for name in ("sample_skeleton_train.csv", "sample_skeleton_test.csv",
                 "common_features_train.csv", "common_features_test.csv"):
        assert name in str(info.value)
    write_raw_fixture(tmp_path / "raw")
    (tmp_path / "raw" / "common_features_test.csv").unlink()
    with pytest.raises(DataError, match=r"lacks common_features_test\.csv\."):
        preprocess_raw(tmp_path / "raw", tmp_path / "out")


def test_a_missing_raw_folder_or_a_processed_one_is_named_as_such(tmp_path):
    with pytest.raises(DataError, match=r"The raw folder .*nowhere' does not exist"):
        preprocess_raw(tmp_path / "nowhere", tmp_path / "out")
    write_raw_fixture(tmp_path / "raw", rows=50)
    preprocess_raw(tmp_path / "raw", tmp_path / "processed")
    with pytest.raises(DataError, match=r"holds processed ali_ccp_\*\.csv files: .* train --data"):
        preprocess_raw(tmp_path / "processed", tmp_path / "out")


@pytest.mark.parametrize("name", ["sample_skeleton_test.csv", "common_features_train.csv"])
def test_an_empty_raw_file_is_named_before_anything_is_written(tmp_path, name):
    write_raw_fixture(tmp_path / "raw", rows=50)
    (tmp_path / "raw" / name).write_text("")
    with pytest.raises(DataError, match=f"{name} in .* is empty"):
        preprocess_raw(tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("split", ["train", "test"])
def test_the_other_splits_common_features_file_is_caught(tmp_path, split):
    """Swapped common-features files would give every impression id 0 in all user fields."""
    write_raw_fixture(tmp_path / "raw", rows=100)
    other = "test" if split == "train" else "train"
    common = tmp_path / "raw" / f"common_features_{split}.csv"
    # the fixture shares context keys between splits; real downloads do not
    common.write_text("".join(f"x{line}\n" for line in
                              (tmp_path / "raw" / f"common_features_{other}.csv")
                              .read_text().splitlines()))
    with pytest.raises(DataError, match=rf"of sample_skeleton_{split}\.csv have a "
                                        rf"common_feature_index that common_features_{split}"):
        preprocess_raw(tmp_path / "raw", tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_an_output_folder_that_is_a_file_is_reported_before_reading(tmp_path, monkeypatch):
    write_raw_fixture(tmp_path / "raw")
    taken = tmp_path / "out.csv"
    taken.write_text("mine")
    read = []
    monkeypatch.setattr(preprocess, "_read_common", lambda *a: read.append(a) or {})
    with pytest.raises(DataError, match="the output folder .* is a file; give a folder"):
        preprocess_raw(tmp_path / "raw", taken)
    assert read == [] and taken.read_text() == "mine"


def test_two_runs_give_identical_bytes(fixture_run):
    tmp_path, _ = fixture_run
    preprocess_raw(tmp_path / "raw", tmp_path / "again", progress=True)
    for name in CSV_NAMES + [REPORT_NAME]:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_a_failed_run_leaves_no_partial_file(fixture_run):
    tmp_path, _ = fixture_run
    before = {name: (tmp_path / "out" / name).read_bytes() for name in CSV_NAMES}
    skeleton = tmp_path / "raw" / "sample_skeleton_test.csv"
    lines = skeleton.read_text().splitlines(keepends=True)
    lines[100] = "201,0,0,damaged\n"
    skeleton.write_text("".join(lines))
    for out in (tmp_path / "fresh", tmp_path / "out"):
        with pytest.raises(DataError, match=r"sample_skeleton_test\.csv, line 101"):
            preprocess_raw(tmp_path / "raw", out)
        assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
    assert not list((tmp_path / "fresh").iterdir())  # not even train, which was complete
    assert {name: (tmp_path / "out" / name).read_bytes() for name in CSV_NAMES} == before


def test_progress_bars_are_off_by_default(tmp_path, capsys):
    write_raw_fixture(tmp_path / "raw", rows=20)
    preprocess_raw(tmp_path / "raw", tmp_path / "out")
    assert capsys.readouterr().err == ""
    preprocess_raw(tmp_path / "raw", tmp_path / "out", progress=True)
    assert "sample_skeleton_train.csv" in capsys.readouterr().err


def test_preprocess_never_overwrites_splits_it_did_not_write(tmp_path):
    from rechub_mini.datasets.synthetic import write_synthetic

    write_raw_fixture(tmp_path / "raw", rows=50)
    write_synthetic(tmp_path / "synthetic", rows=300)  # its meta.json lists ali_ccp_*.csv
    with pytest.raises(DataError, match="holds synthetic data whose meta.json lists"):
        preprocess_raw(tmp_path / "raw", tmp_path / "synthetic")
    (tmp_path / "synthetic" / "meta.json").unlink()  # now: split files of unknown origin
    before = (tmp_path / "synthetic" / "ali_ccp_train.csv").read_bytes()
    with pytest.raises(DataError, match=r"already holds \['ali_ccp_test.csv', .*did not write"):
        preprocess_raw(tmp_path / "raw", tmp_path / "synthetic")
    assert (tmp_path / "synthetic" / "ali_ccp_train.csv").read_bytes() == before


def test_a_repeated_common_feature_index_and_an_empty_skeleton_are_named(tmp_path):
    write_raw_fixture(tmp_path / "raw", rows=50, seed=0)
    common = tmp_path / "raw" / "common_features_train.csv"
    lines = common.read_text(encoding="utf-8").splitlines()
    common.write_text("\n".join(lines + [lines[0]]) + "\n", encoding="utf-8")
    key = lines[0].split(",")[0]
    with pytest.raises(DataError, match=rf"common_features_train.csv, line {len(lines) + 1}: "
                                        rf"common_feature_index '{key}' appears a second"):
        preprocess_raw(tmp_path / "raw", tmp_path / "out")
    common.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "raw" / "sample_skeleton_train.csv").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="sample_skeleton_train.csv holds no impressions"):
        preprocess_raw(tmp_path / "raw", tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("block_bytes", [1, 5, 64, 1 << 20])
def test_blocks_hold_whole_lines_and_number_them_from_the_file(tmp_path, block_bytes):
    text = "a,1\r\n\nb\u00e9,22\n\n\nccc,333\r\n\xff,4\nthe last line has no break"
    path = tmp_path / "raw.csv"
    path.write_bytes(text.encode("utf-8").replace(b"\xc3\xbf", b"\xff"))  # one invalid byte
    expected = [(number, line.rstrip("\r").replace("\xff", "\ufffd"))
                for number, line in enumerate(text.split("\n"), start=1) if line.rstrip("\r")]
    blocks = list(read_blocks(path, block_bytes))
    assert [pair for block in blocks for pair in block_lines(block)] == expected
    assert all(block.data.endswith(b"\n") for block in blocks[:-1])
    assert b"".join(block.data for block in blocks) == path.read_bytes()


def test_default_workers_one_for_small_inputs_else_one_per_usable_core(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 16)
    assert parallel.default_workers(63 << 20) == 1
    assert parallel.default_workers(64 << 20) == parallel.MAX_WORKERS == 4
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    assert parallel.default_workers(40 << 30) == 2
    monkeypatch.undo()
    if hasattr(os, "sched_getaffinity"):  # a container or taskset may give fewer than the host
        monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {3})
        monkeypatch.setattr(parallel.os, "cpu_count", lambda: 64)
        assert parallel.default_workers(40 << 30) == 1


def test_the_pieces_of_a_line_come_from_the_right_raw_file():
    """Workers encode the skeleton's ids and values, the user contexts give the rest: a schema
    whose columns moved between the two would write ids under the wrong names."""
    user = preprocess.USER_IDS_FIRST + preprocess.USER_IDS_LAST
    assert sorted(user) == sorted(USER_COLUMNS)
    assert sorted(preprocess.SAMPLE_IDS) == sorted(set(SPARSE_COLUMNS) - set(USER_COLUMNS))
    assert all(column[1:] in USER_COLUMNS for column in preprocess.USER_DENSE)
    assert not any(column[1:] in USER_COLUMNS for column in preprocess.SAMPLE_DENSE)


def test_worker_processes_write_the_same_bytes_as_one_process(tmp_path, monkeypatch, capsys):
    """Two workers over many small blocks (from the command line), against one process over
    one block per file: the same files; a damaged line is named by its line in the file."""
    write_raw_fixture(tmp_path / "raw", rows=2000, seed=3)
    preprocess_raw(tmp_path / "raw", tmp_path / "one", workers=1)
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 4096)  # ~100 blocks per skeleton file
    assert main(["preprocess", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "two"),
                 "--workers", "2"]) == 0
    names = CSV_NAMES + [REPORT_NAME]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(names)  # no scratch
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    skeleton = tmp_path / "raw" / "sample_skeleton_test.csv"
    lines = skeleton.read_text().splitlines(keepends=True)
    lines[1500] = "99999,0,0,damaged\n"
    skeleton.write_text("".join(lines))
    with pytest.raises(DataError, match=r"sample_skeleton_test\.csv, line 1501: expected 6"):
        preprocess_raw(tmp_path / "raw", tmp_path / "damaged", workers=2)
    assert list((tmp_path / "damaged").iterdir()) == []


def test_a_script_that_starts_workers_without_a_main_guard_is_told_why_it_failed(tmp_path):
    write_raw_fixture(tmp_path / "raw", rows=50)
    script = tmp_path / "script.py"
    script.write_text("from rechub_mini.datasets.preprocess import preprocess_raw\n"
                      "preprocess_raw('raw', 'out', workers=2)\n")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("rechub_mini.errors.DataError: A worker "
                                                     "process stopped")
    assert 'under `if __name__ == "__main__":`' in result.stderr.splitlines()[-1]


def test_the_first_bad_line_is_named_wherever_blocks_end(tmp_path):
    """A repeated key on line 10 is reported before a damaged line 20 in the same block (the
    block is parsed before its keys are merged)."""
    write_raw_fixture(tmp_path / "raw", rows=300, seed=0)
    common = tmp_path / "raw" / "common_features_train.csv"
    lines = common.read_text().splitlines(keepends=True)
    lines[9] = lines[2]
    lines[19] = "damaged,1,nope\n"
    common.write_text("".join(lines))
    with pytest.raises(DataError, match=r"common_features_train\.csv, line 10: "
                                        r"common_feature_index .* appears a second time"):
        preprocess_raw(tmp_path / "raw", tmp_path / "out")


def test_a_file_without_line_breaks_is_refused_early(tmp_path, monkeypatch):
    monkeypatch.setattr(raw_format, "MAX_LINE_BYTES", 10_000)
    path = tmp_path / "sample_skeleton_train.csv"
    path.write_bytes(b"1,0,0,key,1,205\x02x\x031.0\r" * 2000)  # \r only: one huge line
    blocks = read_blocks(path, 1024)
    with pytest.raises(DataError, match=r"sample_skeleton_train\.csv, line 1: more than .* "
                                        r"without a line break"):
        next(blocks)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("stop", ["ctrl-c", "ctrl-c twice", "sigterm", "kill -9"])
def test_workers_end_with_the_main_process(tmp_path, stop):
    """Ctrl-C (to the whole process group, as a terminal sends it) and SIGTERM (to the main
    process, as kill, timeout and docker stop send it) end the run with one line and an empty
    output folder. Killed (out of memory, kill -9), the main process cannot stop its workers:
    they must notice on their own, not wait for blocks for ever."""
    write_raw_fixture(tmp_path / "raw", rows=20_000, seed=0)
    script = ("import signal, sys\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started "
              "with Ctrl-C ignored\n"
              "from rechub_mini.datasets import parallel\n"
              "parallel.BLOCK_BYTES = 256  # many small blocks: the run lasts\n"
              "from rechub_mini.cli import main\n"
              "sys.exit(main(['preprocess', '--raw', 'raw', '--out', 'out', '--workers', '2']))")
    run = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)

    def children():  # the worker processes (not multiprocessing's resource tracker)
        found = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            folder = stat.rsplit("/", 1)[0]
            try:
                parent = int(open(stat).read().rsplit(")", 1)[1].split()[1])
                command = open(f"{folder}/cmdline", "rb").read()
            except OSError:
                continue
            if parent == run.pid and b"spawn_main" in command:
                found.append(int(folder.rsplit("/", 1)[1]))
        return found

    def running(pids):  # exited processes that nobody reaped yet (zombies) are not running
        states = []
        for pid in pids:
            try:
                states.append((pid, open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]))
            except OSError:
                continue
        return [pid for pid, state in states if state != "Z"]

    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(children()) < 2 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # the workers are still importing the package: the hardest moment
        workers = children()
        assert run.poll() is None and len(workers) == 2
        if stop != "kill -9":
            if stop.startswith("ctrl-c"):
                os.killpg(run.pid, signal.SIGINT)
                if stop == "ctrl-c twice":  # impatient: again while the workers end
                    time.sleep(0.05)
                    os.killpg(run.pid, signal.SIGINT)
            else:
                run.terminate()
            assert run.wait(timeout=60) == (143 if stop == "sigterm" else 130)
            assert run.stderr.read().strip() == ("interrupted: the output folder holds its "
                                                 "earlier files or all of this run's, never a "
                                                 "mix.")
            assert list((tmp_path / "out").iterdir()) == []
        else:
            run.kill()
            run.wait()
        deadline = time.monotonic() + 30
        while running(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = running(workers)
        assert alive == [], f"workers {alive} outlived the main process"
    finally:
        run.kill()
        for pid in running(workers):  # where the test failed: none left behind
            os.kill(pid, signal.SIGKILL)
