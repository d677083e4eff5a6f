"""`predict`: a saved model's predictions for a split, written as CSV, scored as `train` does."""
import contextlib
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from rechub_mini import MMOE, load_model
from rechub_mini.checkpoint import read_checkpoint
from rechub_mini.cli import main
from rechub_mini.data import BatchLoader
from rechub_mini.datasets import ali_ccp
from rechub_mini.predictions import predictions_table
from rechub_mini.trainer import MTLTrainer


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A small synthetic dataset, an MMoE and an ESMM trained on it for three epochs and
    saved, and the test-split tables `train` printed for each. ESMM's best epoch is the
    second, so its saved model is not the last epoch's."""
    folder = tmp_path_factory.mktemp("predict")
    data = folder / "data"
    assert main(["synth", "--rows", "4000", "--seed", "3", "--out", str(data)]) == 0
    printed = {}
    for model in ("mmoe", "esmm"):
        out = folder / f"{model}.txt"
        with open(out, "w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
            assert main(["train", "--model", model, "--data", str(data), "--epochs", "3",
                         "--save", str(folder / model)]) == 0
        text = out.read_text(encoding="utf-8")
        # train says where the run is and how to get its predictions
        assert (f"saved in {folder / model}: model.pth (the best epoch) and resume.pth; to "
                f"write the predictions: python -m rechub_mini predict --model {folder / model} "
                f"--data {data} "
                f"--out FILE.csv") in text
        printed[model] = text.split("on the test split")[1]
    assert read_checkpoint(folder / "esmm")["epoch"] == 2
    return folder, data, printed


@pytest.mark.parametrize("model", ["mmoe", "esmm"])
def test_predict_scores_the_test_split_as_train_did_and_writes_every_row(saved_run, model,
                                                                         capsys):
    folder, data, printed = saved_run
    out = folder / f"{model}-predictions.csv"
    capsys.readouterr()
    assert main(["predict", "--model", str(folder / model), "--data", str(data),
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out
    # the saved best model, on the same rows with the same unseen-id mapping: the same scores
    assert lines.split("on the test split")[1].split("\nwriting")[0] == printed[model].rstrip("\n")

    written = pd.read_csv(out)
    loaded = load_model(folder / model)
    test = ali_ccp.load_ali_ccp(data).test
    x, y = ali_ccp.model_inputs(test, loaded.features)
    expected = MTLTrainer(loaded).predict(loaded, BatchLoader(x, y))
    assert list(written.columns) == ["row", "click", "purchase",
                                     *(f"p_{t}" for t in loaded.task_names)]
    assert (written["row"] == np.arange(len(test))).all()
    labels = ["click", "purchase"]
    assert (written[labels].to_numpy() == test[labels].to_numpy()).all()
    # nine digits read back as the very float32 that was predicted
    predicted = written[[f"p_{t}" for t in loaded.task_names]].to_numpy().astype(np.float32)
    assert np.array_equal(predicted, expected)
    assert not list(folder.glob(".*.tmp"))


def test_rows_name_their_line_in_the_file_when_loading_dropped_some(saved_run, tmp_path):
    folder, data, _ = saved_run
    shutil.copytree(data, tmp_path / "data")
    test_file = tmp_path / "data" / "ali_ccp_test.csv"
    frame = pd.read_csv(test_file, dtype=str)
    frame.loc[[2, 5], ["click", "purchase"]] = ["0", "1"]  # a purchase without a click: dropped
    frame.to_csv(test_file, index=False)
    with pytest.warns(UserWarning, match="dropped 2 rows"):
        assert main(["predict", "--model", str(folder / "esmm"), "--data",
                     str(tmp_path / "data"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = pd.read_csv(tmp_path / "p.csv")["row"].to_numpy()
    assert list(rows[:5]) == [0, 1, 3, 4, 6] and len(rows) == len(frame) - 2


def test_an_existing_file_or_a_folder_as_out_is_refused_before_any_work(saved_run, tmp_path,
                                                                       capsys):
    folder, data, _ = saved_run
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("the user's own file\n", encoding="utf-8")
    for out, words in [(earlier, "already exists"), (tmp_path, "is a folder")]:
        # the model path is wrong too: the output is checked first, before anything is read
        assert main(["predict", "--model", str(tmp_path / "no-run"), "--data", str(data),
                     "--out", str(out)]) == 2
        assert words in capsys.readouterr().err
    assert earlier.read_text(encoding="utf-8") == "the user's own file\n"


def test_a_model_trained_on_other_data_is_named_not_scored(saved_run, tmp_path, capsys):
    folder, _, _ = saved_run
    other = tmp_path / "other"
    assert main(["synth", "--rows", "3000", "--seed", "4", "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(folder / "mmoe"), "--data", str(other),
                 "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert "trained on other data" in err and "ids in the model" in err
    assert not (tmp_path / "p.csv").exists()


def test_ctrl_c_while_writing_leaves_no_file(saved_run, tmp_path, monkeypatch, capsys):
    folder, data, _ = saved_run
    written = []

    def interrupted(self, path, **options):
        written.append(path)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("row,click\n0,")  # half a file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    assert main(["predict", "--model", str(folder / "esmm"), "--data", str(data),
                 "--out", str(tmp_path / "p.csv")]) == 130
    assert "written completely or not at all" in capsys.readouterr().err
    assert written and list(tmp_path.iterdir()) == []


def test_a_full_disk_is_one_line_after_the_scores(saved_run, tmp_path, monkeypatch, capsys):
    folder, data, _ = saved_run

    def disk_full(self, path, **options):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    assert main(["predict", "--model", str(folder / "esmm"), "--data", str(data),
                 "--out", str(tmp_path / "p.csv")]) == 1
    out, err = capsys.readouterr()
    assert "ctcvr" in out  # the scores came first: the long scoring is not lost
    assert err == "error: [Errno 28] No space left on device (--debug shows where)\n"
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_appears_at_out_while_predicting_is_kept(saved_run, tmp_path, monkeypatch,
                                                            capsys):
    folder, data, _ = saved_run
    out = tmp_path / "p.csv"
    real_to_csv = pd.DataFrame.to_csv

    def user_writes_meanwhile(self, path, **options):
        out.write_text("the user's notes\n", encoding="utf-8")
        return real_to_csv(self, path, **options)

    monkeypatch.setattr(pd.DataFrame, "to_csv", user_writes_meanwhile)
    assert main(["predict", "--model", str(folder / "esmm"), "--data", str(data),
                 "--out", str(out)]) == 2
    assert "appeared while this was running; it is kept" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "the user's notes\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]


def test_split_picks_the_rows_and_resume_pth_says_it_is_not_the_best_epoch(saved_run, tmp_path,
                                                                           capsys):
    folder, data, _ = saved_run
    capsys.readouterr()
    assert main(["predict", "--model", str(folder / "esmm" / "resume.pth"), "--data", str(data),
                 "--split", "val", "--out", str(tmp_path / "p.csv")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("ESMM of epoch 3 (its run's last finished; the best was epoch 2, "
                            "in model.pth) on the val split (")
    val = ali_ccp.load_ali_ccp(data).val
    written = pd.read_csv(tmp_path / "p.csv")
    assert len(written) == len(val) and (written["click"] == val["click"].to_numpy()).all()


def test_mmoe_tasks_are_scored_on_the_columns_they_are_named_after(saved_run, tmp_path, capsys):
    """A model built in Python may name its tasks in another order than the command line's
    [purchase, click]; each task is scored on its own label column, or refused."""
    folder, data, _ = saved_run
    loaded = ali_ccp.load_ali_ccp(data)
    features = load_model(folder / "mmoe").features
    for names, run in [(["click", "purchase"], "swapped"), (["click", "bought"], "unknown")]:
        torch.manual_seed(0)
        model = MMOE(features, ["classification"] * 2, 2, {"dims": [8]},
                     [{"dims": [4]}, {"dims": [4]}], task_names=names)
        x, y = ali_ccp.model_inputs(loaded.train, features, ["click", "purchase"])
        MTLTrainer(model, n_epoch=1, model_path=tmp_path / run, verbose=False).fit(
            BatchLoader(x, y, shuffle=True))
    x, y = ali_ccp.model_inputs(loaded.test, features, ["click", "purchase"])
    expected = MTLTrainer(load_model(tmp_path / "swapped")).evaluate(
        load_model(tmp_path / "swapped"), BatchLoader(x, y))
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "swapped"), "--data", str(data),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert expected.table() in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "unknown"), "--data", str(data),
                 "--out", str(tmp_path / "q.csv")]) == 2
    assert "['bought'] is none of them" in capsys.readouterr().err


def test_the_device_and_out_are_checked_before_anything_is_read(tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "no-run"), "--data", str(tmp_path),
                 "--device", "cuda:7", "--out", str(tmp_path / "p.csv")]) == 2
    assert "cuda" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "no-run"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "new") + "/"]) == 2
    assert "is a folder; give the name of a file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_predict_under_torchrun_is_refused(saved_run, tmp_path, monkeypatch, capsys):
    folder, data, _ = saved_run
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["predict", "--model", str(folder / "esmm"), "--data", str(data),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "without torchrun" in capsys.readouterr().err


def test_the_table_pairs_each_prediction_with_its_row_and_labels():
    frame = pd.DataFrame({"click": [1, 0, 1], "purchase": [0, 0, 1]}, index=[0, 2, 3])
    table = predictions_table(frame, ["a", "b"], np.array([[0.1, 0.2], [0.3, 0.4],
                                                            [0.5, 0.6]], dtype=np.float32))
    assert table["row"].tolist() == [0, 2, 3] and table["click"].tolist() == [1, 0, 1]
    assert table["p_b"].tolist() == pytest.approx([0.2, 0.4, 0.6])
    with pytest.raises(ValueError, match="for 3 rows"):
        predictions_table(frame, ["a"], torch.zeros(3, 2).numpy())
