"""The reliability matrix, as a user of `python -m rechub_mini train` meets it: every broken
input ends with one line naming the problem and exit status 2, never a traceback."""

import pandas as pd
import pytest

from rechub_mini import DataError
from rechub_mini.cli import main

SPLITS = ["train", "val", "test"]


@pytest.fixture()
def data_dir(tmp_path, sample_dir):
    folder = tmp_path / "data"
    folder.mkdir()
    for split in SPLITS:
        frame = pd.read_csv(sample_dir / f"ali_ccp_{split}_sample.csv", nrows=400)
        frame.to_csv(folder / f"ali_ccp_{split}_sample.csv", index=False)
    return folder


def edit(folder, split, change):
    path = folder / f"ali_ccp_{split}_sample.csv"
    text = path.read_text()
    path.write_text(change(text))


def set_cell(column, row, value):
    def change(text):
        lines = text.splitlines()
        header = lines[0].split(",")
        fields = lines[row + 1].split(",")
        fields[header.index(column)] = str(value)
        lines[row + 1] = ",".join(fields)
        return "\n".join(lines) + "\n"
    return change


def drop_column(column):
    def change(text):
        lines = [l.split(",") for l in text.splitlines()]
        i = lines[0].index(column)
        return "\n".join(",".join(l[:i] + l[i + 1:]) for l in lines) + "\n"
    return change


CASES = {
    "missing sparse column": ("val", drop_column("205"), "ali_ccp_val_sample.csv: missing columns ['205']"),
    "missing dense column": ("train", drop_column("D853"), "missing columns ['D853']"),
    "missing label column": ("test", drop_column("purchase"), "missing columns ['purchase']"),
    "non-numeric id": ("train", set_cell("206", 10, "abc"), "line 12, column '206': value 'abc'"),
    "negative id": ("test", set_cell("124", 3, -2), "line 5: column '124' has negative id -2"),
    "NaN dense value": ("val", set_cell("D508", 7, "nan"), "line 9: dense column 'D508' has 1 NaN"),
    "label 2": ("train", set_cell("click", 0, 2), "line 2: label 'click' is 2"),
    "empty split": ("test", lambda t: t.splitlines()[0] + "\n", "ali_ccp_test_sample.csv has no data rows"),
    "0-byte file": ("val", lambda t: "", "ali_ccp_val_sample.csv is empty (0 bytes)"),
    "truncated file": ("train", lambda t: t[:-40], "of 33 fields; the file looks truncated"),
    "extra field": ("val", set_cell("D702", 2, "0.1,0.2"), "Expected 33 fields in line 4, saw 34"),
}


@pytest.mark.parametrize("case", CASES)
def test_broken_data_gives_one_line_and_status_2(data_dir, capsys, case):
    split, change, message = CASES[case]
    edit(data_dir, split, change)
    assert main(["train", "--data", str(data_dir), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_split_file(data_dir, capsys):
    (data_dir / "ali_ccp_val_sample.csv").unlink()
    assert main(["train", "--data", str(data_dir)]) == 2
    assert "does not hold all three splits" in capsys.readouterr().err


def test_purchase_without_click_rows_are_dropped_and_training_goes_on(data_dir, capsys):
    edit(data_dir, "train", set_cell("click", 4, 0))
    edit(data_dir, "train", set_cell("purchase", 4, 1))
    with pytest.warns(UserWarning, match="dropped 1 rows with purchase = 1 but click = 0"):
        assert main(["train", "--data", str(data_dir), "--epochs", "1"]) == 0
    assert "train 399 rows" in capsys.readouterr().out


def test_the_command_line_prints_a_warning_as_one_line(data_dir):
    from test_cli import run_cli

    edit(data_dir, "train", set_cell("click", 4, 0))
    edit(data_dir, "train", set_cell("purchase", 4, 1))
    result = run_cli("train", "--data", str(data_dir), "--epochs", "1")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "dropped 1 rows" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ali_ccp_train"), result.stderr
    assert "UserWarning" not in result.stderr and ".py:" not in result.stderr, result.stderr


def test_a_save_folder_that_is_a_file_fails_before_the_data_is_read(data_dir, tmp_path, capsys):
    taken = tmp_path / "results.csv"
    taken.write_text("a file the user keeps")
    assert main(["train", "--data", str(data_dir), "--epochs", "1", "--save", str(taken)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "--save" in captured.err
    assert "is a file; give a folder" in captured.err
    assert captured.out == "" and taken.read_text() == "a file the user keeps"


OPTION_CASES = {
    "--epochs": (["--epochs", "0"], "--epochs must be a whole number of at least 1, got 0"),
    "--patience": (["--patience", "-1"], "--patience must be a whole number of at least 1"),
    "--batch-size": (["--batch-size", "0"], "--batch-size must be at least 1"),
    "--embed-dim": (["--model", "mmoe", "--embed-dim", "0"], "--embed-dim must be a whole number"),
    "--lr": (["--lr", "-0.01"], "--lr must be a number >= 0, got -0.01"),
    "--weight-decay": (["--weight-decay", "nan"], "--weight-decay must be a number >= 0, got nan"),
    "--device": (["--device", "cuda:99"], "device 'cuda:99' asks for a GPU"),
    "--device mps": (["--device", "mps"], "device 'mps': rechub_mini trains on 'cpu' or 'cuda'"),
    "--resume": (["--resume"], "--resume needs --save"),
}


@pytest.mark.parametrize("case", OPTION_CASES)
def test_bad_options_fail_before_the_data_is_read(data_dir, capsys, case):
    options, message = OPTION_CASES[case]
    assert main(["train", "--data", str(data_dir), *options]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err, captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""


def test_ctrl_c_says_what_was_kept_and_how_to_go_on(data_dir, tmp_path, capsys, monkeypatch):
    from rechub_mini.trainer import MTLTrainer

    real_epoch = MTLTrainer.train_one_epoch

    def second_epoch_interrupted(self, loader, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, loader, epoch)

    monkeypatch.setattr(MTLTrainer, "train_one_epoch", second_epoch_interrupted)
    run = ["train", "--data", str(data_dir), "--epochs", "3", "--save", str(tmp_path / "run")]
    assert main(run) == 130
    err = capsys.readouterr().err
    assert err.strip() == ("interrupted: the epochs finished so far are in --save; run the same "
                           "command with --resume to go on.")
    monkeypatch.setattr(MTLTrainer, "train_one_epoch", real_epoch)
    assert main(run + ["--resume"]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    monkeypatch.setattr(MTLTrainer, "train_one_epoch", second_epoch_interrupted)
    assert main(["train", "--data", str(data_dir), "--epochs", "3"]) == 130
    assert "nothing was saved (give --save" in capsys.readouterr().err


def test_debug_works_before_and_after_the_command(data_dir, capsys):
    for argv in (["--debug", "train"], ["train", "--debug"]):
        with pytest.raises(DataError, match="--epochs must be"):
            main([*argv, "--data", str(data_dir), "--epochs", "0"])
    assert main(["train", "--data", str(data_dir), "--epochs", "0"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["synth", "--rows", "0", "--out", "x"], "--rows must be a whole number of at least 10"),
    (["synth", "--rows", "5", "--out", "x"], "--rows must be a whole number of at least 10"),
    (["synth", "--rows", "100", "--seed", "-1", "--out", "x"],
     "--seed must be a whole number of at least 0"),
    (["preprocess", "--raw", "x", "--out", "y", "--min-count", "0"],
     "--min-count must be a whole number of at least 1"),
    (["preprocess", "--raw", "x", "--out", "y", "--workers", "0"],
     "--workers must be a whole number of at least 1"),
])
def test_synth_and_preprocess_name_their_flags(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_a_second_run_into_the_same_save_folder_stops_before_the_data_is_read(
        data_dir, tmp_path, capsys):
    run = ["train", "--data", str(data_dir), "--epochs", "1", "--save", str(tmp_path / "run")]
    assert main(run) == 0
    saved = (tmp_path / "run" / "model.pth").read_bytes()
    capsys.readouterr()
    assert main(run + ["--model", "mmoe"]) == 2
    captured = capsys.readouterr()
    assert "already holds an earlier run (model.pth, resume.pth)" in captured.err
    assert captured.out == "" and (tmp_path / "run" / "model.pth").read_bytes() == saved


def test_ctrl_c_in_synth_or_preprocess_keeps_no_file_of_that_run(tmp_path, capsys, monkeypatch):
    import pandas as pd

    from rechub_mini.datasets import preprocess
    from rechub_mini.datasets.preprocess import write_raw_fixture

    real_to_csv, written = pd.DataFrame.to_csv, []

    def second_split_interrupted(frame, path, **options):
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt
        return real_to_csv(frame, path, **options)

    monkeypatch.setattr(pd.DataFrame, "to_csv", second_split_interrupted)
    assert main(["synth", "--rows", "500", "--out", str(tmp_path / "synth")]) == 130
    assert capsys.readouterr().err.strip() == ("interrupted: the output folder holds its earlier "
                                              "files or all of this run's, never a mix.")
    assert len(written) == 2 and list((tmp_path / "synth").iterdir()) == []
    monkeypatch.setattr(pd.DataFrame, "to_csv", real_to_csv)

    write_raw_fixture(tmp_path / "raw", rows=100, seed=0)
    real_ids = preprocess.RowEncoder.ids

    def interrupted_while_encoding(*args):
        written.append(1)
        if len(written) == 42:  # 2 calls per user context, then 1 per row: while writing
            raise KeyboardInterrupt
        return real_ids(*args)

    monkeypatch.setattr(preprocess.RowEncoder, "ids", interrupted_while_encoding)
    assert main(["preprocess", "--raw", str(tmp_path / "raw"), "--out",
                 str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.strip() == ("interrupted: the output folder holds its earlier "
                                              "files or all of this run's, never a mix.")
    assert len(written) == 42 and list((tmp_path / "out").iterdir()) == []
