import os
import time

import numpy as np
import pandas as pd
import pytest

from rechub_mini import DataError, DenseFeature, SparseFeature
from rechub_mini.datasets import ali_ccp
from rechub_mini.datasets.ali_ccp_schema import ALL_COLUMNS, DENSE_COLUMNS, SPARSE_COLUMNS
from rechub_mini.datasets.csv_arrays import read_cache, read_csv_arrays
from rechub_mini.files import LEFTOVER_AFTER_S


def write_split(folder, name, rows=30, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.integers(1, 5, rows) for c in SPARSE_COLUMNS})
    for c in DENSE_COLUMNS:
        frame[c] = rng.random(rows).round(4)
    frame["click"] = rng.integers(0, 2, rows)
    frame["purchase"] = frame["click"] * rng.integers(0, 2, rows)
    for column, (row, value) in overrides.items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    frame[ALL_COLUMNS].to_csv(folder / name, index=False)
    return frame


def write_splits(folder, sample=True):
    for i, split in enumerate(["train", "val", "test"]):
        write_split(folder, f"ali_ccp_{split}{'_sample' if sample else ''}.csv", seed=i)


def test_loads_the_bundled_sample_with_explicit_dtypes(sample_data, sample_meta):
    assert sample_data.files["train"] == "ali_ccp_train_sample.csv"
    for split, frame in sample_data.splits().items():
        assert list(frame.columns) == ALL_COLUMNS
        assert len(frame) == sample_meta["splits"][split]["rows"]
        assert int(frame["purchase"].sum()) == sample_meta["splits"][split]["purchases"]
    assert sample_data.train["101"].dtype == np.int32
    assert sample_data.train["D508"].dtype == np.float32
    assert sample_data.train["click"].dtype == np.int8


def test_full_files_win_over_samples_unless_asked(tmp_path):
    write_splits(tmp_path, sample=True)
    write_splits(tmp_path, sample=False)
    assert ali_ccp.load_ali_ccp(tmp_path).files["val"] == "ali_ccp_val.csv"
    assert ali_ccp.load_ali_ccp(tmp_path, sample=True).files["val"] == "ali_ccp_val_sample.csv"


def test_an_incomplete_set_of_full_files_is_an_error_not_a_fallback_to_the_sample(tmp_path):
    write_splits(tmp_path, sample=True)
    write_splits(tmp_path, sample=False)
    (tmp_path / "ali_ccp_val.csv").rename(tmp_path / "ali_ccp_valid.csv")
    with pytest.raises(DataError, match=r"only some of the splits: \['ali_ccp_val.csv'\] is "
                                        r"missing.*ali_ccp_valid.csv, does not count"):
        ali_ccp.load_ali_ccp(tmp_path)
    assert ali_ccp.load_ali_ccp(tmp_path, sample=True).files["val"] == "ali_ccp_val_sample.csv"


def test_a_missing_relative_folder_and_a_raw_folder_are_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"'data/ali-ccp' does not exist \(relative to the "
                                        r"current folder"):
        ali_ccp.load_ali_ccp("data/ali-ccp")
    (tmp_path / "sample_skeleton_train.csv").write_text("1,0,0,k,0,\n")
    with pytest.raises(DataError, match=r"These are raw Ali-CCP files: .* preprocess --raw"):
        ali_ccp.load_ali_ccp(tmp_path)


def test_synthetic_data_is_marked_and_real_files_next_to_it_are_not(tmp_path, sample_dir):
    from rechub_mini.datasets.synthetic import write_synthetic

    assert ali_ccp.load_ali_ccp(sample_dir).synthetic
    write_synthetic(tmp_path, rows=300, sample_names=True)
    assert ali_ccp.load_ali_ccp(tmp_path).synthetic
    write_splits(tmp_path, sample=False)  # "real" processed files dropped next to the sample
    assert not ali_ccp.load_ali_ccp(tmp_path).synthetic
    assert ali_ccp.load_ali_ccp(tmp_path, sample=True).synthetic


@pytest.mark.parametrize("layout", ["byte-order mark", "Windows line ends"])
def test_spreadsheet_exports_load_like_plain_files(tmp_path, layout):
    for folder in ("plain", "export"):
        (tmp_path / folder).mkdir()
        write_splits(tmp_path / folder)
    for name in os.listdir(tmp_path / "export"):
        path = tmp_path / "export" / name
        data = path.read_bytes()
        path.write_bytes(b"\xef\xbb\xbf" + data if layout == "byte-order mark"
                         else data.replace(b"\n", b"\r\n"))
    plain, export = (ali_ccp.load_ali_ccp(tmp_path / f) for f in ("plain", "export"))
    for split in ("train", "val", "test"):
        pd.testing.assert_frame_equal(export.splits()[split], plain.splits()[split])


def test_missing_files_and_columns_are_named(tmp_path):
    with pytest.raises(DataError, match="ali_ccp_train.csv.*found no CSV files"):
        ali_ccp.load_ali_ccp(tmp_path)
    write_splits(tmp_path)
    frame = pd.read_csv(tmp_path / "ali_ccp_val_sample.csv").drop(columns=["D702", "205"])
    frame.to_csv(tmp_path / "ali_ccp_val_sample.csv", index=False)
    with pytest.raises(DataError, match=r"ali_ccp_val_sample.csv: missing columns \['205', 'D702'\]"):
        ali_ccp.load_ali_ccp(tmp_path)
    path = tmp_path / "ali_ccp_train_sample.csv"
    lines = path.read_text().split("\n")
    path.write_text("\n".join([lines[0].replace(",", ", ")] + lines[1:]))
    with pytest.raises(DataError, match=r"spaces around column names, e.g. \[' purchase', ' 101'"):
        ali_ccp.load_ali_ccp(tmp_path)


@pytest.mark.parametrize("column,value,message", [
    ("206", "abc", r"line 5, column '206': value 'abc' cannot be read"),
    ("D509", "x1", r"line 5, column 'D509': value 'x1'"),
    ("click", 2, r"line 5: label 'click' is 2"),
    ("124", -1, r"line 5: column '124' has negative id -1"),
    ("D853", "nan", r"line 5: dense column 'D853' has 1 NaN"),
])
def test_bad_values_are_reported_with_line_column_and_value(tmp_path, column, value, message):
    write_split(tmp_path, "one.csv", **{column: (3, value)})
    with pytest.raises(DataError, match=message):
        read_csv_arrays(tmp_path / "one.csv")


@pytest.mark.parametrize("column,value,message", [
    ("206", "abc", r"line 22, column '206': value 'abc'"),
    ("click", 2, r"line 22: label 'click' is 2"),
    ("D853", "nan", r"line 22: dense column 'D853' has 1 NaN"),
])
def test_bad_values_in_a_later_chunk_get_the_line_number_in_the_file(tmp_path, column, value,
                                                                      message):
    # data row 20 (line 22, after the header) is in the third chunk of 7 rows
    write_split(tmp_path, "one.csv", rows=40, **{column: (20, value)})
    with pytest.raises(DataError, match=message):
        read_csv_arrays(tmp_path / "one.csv", chunk_rows=7)


def test_truncated_and_malformed_files(tmp_path):
    write_split(tmp_path, "one.csv", rows=10)
    text = (tmp_path / "one.csv").read_text()
    (tmp_path / "cut.csv").write_text(text[: text.rindex(",", 0, len(text) - 5)])
    with pytest.raises(DataError, match=r"cut.csv, line 11: \d+ of 33 fields; the file looks truncated"):
        read_csv_arrays(tmp_path / "cut.csv")
    lines = text.splitlines()
    lines[4] += ",7"
    (tmp_path / "extra.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"extra.csv: .*line 5.*wrong number of fields"):
        read_csv_arrays(tmp_path / "extra.csv")
    (tmp_path / "empty.csv").write_text(",".join(ALL_COLUMNS) + "\n")
    with pytest.raises(DataError, match="empty.csv has no data rows"):
        read_csv_arrays(tmp_path / "empty.csv")


def test_purchase_without_click_rows_are_dropped_and_counted(tmp_path):
    write_splits(tmp_path)
    frame = pd.read_csv(tmp_path / "ali_ccp_train_sample.csv")
    frame.loc[[2, 7], ["click", "purchase"]] = [0, 1]
    frame.to_csv(tmp_path / "ali_ccp_train_sample.csv", index=False)
    with pytest.warns(UserWarning, match="dropped 2 rows with purchase = 1 but click = 0"):
        data = ali_ccp.load_ali_ccp(tmp_path)
    assert data.dropped_purchase_without_click == {"train": 2, "val": 0, "test": 0}
    assert len(data.train) == 28
    assert not ((data.train["purchase"] == 1) & (data.train["click"] == 0)).any()


def test_ids_unseen_in_train_are_mapped_to_zero_and_counted(tmp_path):
    write_splits(tmp_path)
    frame = pd.read_csv(tmp_path / "ali_ccp_test_sample.csv")
    frame.loc[0, "205"] = 999  # beyond train's vocabulary
    frame.loc[1, "206"] = 0
    frame.to_csv(tmp_path / "ali_ccp_test_sample.csv", index=False)
    train = pd.read_csv(tmp_path / "ali_ccp_train_sample.csv")
    train.loc[train["216"] == 3, "216"] = 4  # id 3 now exists only outside train
    train.to_csv(tmp_path / "ali_ccp_train_sample.csv", index=False)
    expected = sum(int((~frame[c].isin(set(train[c]))).sum()) for c in SPARSE_COLUMNS)
    data = ali_ccp.load_ali_ccp(tmp_path)
    assert data.test.loc[0, "205"] == 0
    assert (data.test["216"] != 3).all()
    assert data.unseen_ids_mapped_to_0["test"] == expected >= 1 + int((frame["216"] == 3).sum())
    features = ali_ccp.build_features(data.train, ["205", "216", "D508"], embed_dim=4)
    assert features == [SparseFeature("205", int(data.train["205"].max()) + 1, 4),
                        SparseFeature("216", int(data.train["216"].max()) + 1, 4),
                        DenseFeature("D508")]


def test_labels_cannot_become_features(sample_data):
    with pytest.raises(DataError, match="'purchase' is not a feature column"):
        ali_ccp.build_features(sample_data.train, ["101", "purchase"])


def test_ctcvr_label_and_model_inputs(sample_data):
    frame = ali_ccp.add_ctcvr_label(sample_data.val.copy())
    assert (frame["ctcvr"] == frame["click"] * frame["purchase"]).all()
    features = ali_ccp.build_features(sample_data.train, ["101", "D508"])
    x, y = ali_ccp.model_inputs(frame, features)
    assert list(x) == ["101", "D508"] and y.shape == (len(frame), 2)
    assert (y[:, 0] == frame["purchase"]).all() and (y[:, 1] == frame["click"]).all()
    with pytest.raises(DataError, match=r"no columns \['D508', 'click'\], which the features"):
        ali_ccp.model_inputs(frame.drop(columns=["D508", "click"]), features)


def test_cache_is_memory_mapped_reused_and_refreshed(tmp_path):
    original = write_split(tmp_path, "big.csv", rows=50)
    first = read_csv_arrays(tmp_path / "big.csv", cache=True)
    cached = read_cache(tmp_path / "big.csv")
    assert isinstance(cached["101"], np.memmap)
    # others who may read the CSV may read its cache (a temp folder would be owner-only)
    assert (tmp_path / "big.csv.npy.cache").stat().st_mode & 0o777 == 0o755
    for c in ALL_COLUMNS:
        np.testing.assert_array_equal(cached[c], first[c])
    again = read_csv_arrays(tmp_path / "big.csv", cache=True)
    assert isinstance(again["101"], np.memmap)
    # an edit that keeps the size (one digit changed) is seen by its modification time
    lines = (tmp_path / "big.csv").read_text(encoding="utf-8").splitlines()
    position = lines[0].split(",").index("101")
    fields = lines[1].split(",")
    fields[position] = str(int(fields[position]) % 4 + 1)  # ids are 1..4: one digit each
    lines[1] = ",".join(fields)
    size = (tmp_path / "big.csv").stat().st_size
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert (tmp_path / "big.csv").stat().st_size == size
    os.utime(tmp_path / "big.csv", ns=(10**18, 10**18))
    assert read_cache(tmp_path / "big.csv") is None
    assert read_csv_arrays(tmp_path / "big.csv", cache=True)["101"][0] == int(fields[position])
    # a changed CSV invalidates the cache
    write_split(tmp_path, "big.csv", rows=40, seed=9)
    os.utime(tmp_path / "big.csv", ns=(1, 1))
    assert read_cache(tmp_path / "big.csv") is None
    fresh = read_csv_arrays(tmp_path / "big.csv", cache=True)
    assert len(fresh["101"]) == 40
    assert len(read_cache(tmp_path / "big.csv")["101"]) == 40
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert len(original) == 50


def test_a_cache_folder_left_by_a_killed_writer_is_named_with_its_size(tmp_path):
    write_split(tmp_path, "big.csv", rows=50)
    left = tmp_path / ".big.csv.npy.cache.k3j9ab_c.tmp"  # as mkdtemp names it in write_cache
    left.mkdir()
    (left / "101.npy").write_bytes(b"0" * 2**20)
    old = time.time() - LEFTOVER_AFTER_S - 5  # no writer for that long: it was killed
    for path in (left / "101.npy", left):
        os.utime(path, (old, old))
    with pytest.warns(UserWarning, match=r"1 hidden temporary file\(s\), 1\.0 MB"):
        read_csv_arrays(tmp_path / "big.csv", cache=True)
    assert read_cache(tmp_path / "big.csv") is not None and left.is_dir()


def test_chunked_parse_equals_pandas(tmp_path):
    write_split(tmp_path, "one.csv", rows=101)
    arrays = read_csv_arrays(tmp_path / "one.csv", chunk_rows=7)
    expected = pd.read_csv(tmp_path / "one.csv")
    for c in ALL_COLUMNS:
        np.testing.assert_allclose(arrays[c], expected[c].to_numpy(), rtol=1e-6)


def test_blank_lines_in_a_processed_csv_are_reported(tmp_path):
    write_split(tmp_path, "one.csv", rows=30)
    lines = (tmp_path / "one.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "one.csv").write_text("\n".join(lines[:10] + [""] + lines[10:]) + "\n",
                                      encoding="utf-8")
    with pytest.raises(DataError, match=r"one.csv: counted 31 lines but parsed 30 rows; the "
                                        r"file has blank lines"):
        read_csv_arrays(tmp_path / "one.csv")


def test_a_cache_that_cannot_be_written_warns_and_the_arrays_still_come(tmp_path, monkeypatch):
    from rechub_mini.datasets import csv_arrays

    frame = write_split(tmp_path, "big.csv", rows=20)

    def disk_full(path, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csv_arrays, "write_cache", disk_full)
    monkeypatch.setattr(csv_arrays, "_unwritable_folders", set())
    write_split(tmp_path, "other.csv", rows=20)
    with pytest.warns(UserWarning, match=r"Could not write the array cache next to big.csv "
                                         r"\(.*No space left.*\): the CSVs of '.*' are parsed "
                                         r"at every load. Copy the folder") as caught:
        arrays = read_csv_arrays(tmp_path / "big.csv", cache=True)
        read_csv_arrays(tmp_path / "other.csv", cache=True)  # same folder: no second warning
    assert len(caught) == 1
    np.testing.assert_array_equal(arrays["101"], frame["101"].to_numpy())


def test_a_cache_that_no_longer_matches_a_small_csv_is_removed(tmp_path):
    """A CSV that shrank below the cache threshold would leave its old cache (as large as the
    old CSV) behind for ever; a fresh cache of a small file stays."""
    write_split(tmp_path, "big.csv", rows=50)
    read_csv_arrays(tmp_path / "big.csv", cache=True)
    read_csv_arrays(tmp_path / "big.csv")  # small, so not cached, but the cache still fits
    assert read_cache(tmp_path / "big.csv") is not None
    write_split(tmp_path, "big.csv", rows=30, seed=4)
    arrays = read_csv_arrays(tmp_path / "big.csv")
    assert len(arrays["101"]) == 30
    assert not (tmp_path / "big.csv.npy.cache").exists()
