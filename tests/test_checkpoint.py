"""Checkpoints that cannot be used say why and what to do; a good one rebuilds its model."""
import numpy as np
import pytest
import torch

from rechub_mini import (ESMM, MMOE, BatchLoader, CheckpointError, DataError, MTLTrainer,
                         SparseFeature, load_model)
from rechub_mini.checkpoint import read_checkpoint, save_checkpoint

USER, ITEM = [SparseFeature("u", 10, 4)], [SparseFeature("i", 8, 4)]


def esmm() -> ESMM:
    return ESMM(USER, ITEM, {"dims": [4]}, {"dims": [4]})


def test_a_folder_without_a_checkpoint_says_where_it_looked_and_what_to_give(tmp_path):
    with pytest.raises(CheckpointError, match=r"No checkpoint: the folder '.*' holds no "
                                              r"model.pth\. Give the folder a run saved to"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match=r"No checkpoint: '.*nope' does not exist\."):
        load_model(tmp_path / "nope")


def test_a_file_torch_did_not_write_is_named_not_a_checkpoint(tmp_path):
    (tmp_path / "meta.json").write_text('{"rows": 3}', encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"'meta.json' is not a checkpoint: torch.save "
                                              r"did not write it"):
        load_model(tmp_path / "meta.json")
    (tmp_path / "short.pth").write_bytes(b"P")  # the first byte of a zip: truncated
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_model(tmp_path / "short.pth")
    (tmp_path / "run" / "model.pth").mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(CheckpointError, match=r"Cannot read the checkpoint 'model.pth'"):
        load_model(tmp_path / "run")


def test_a_bare_state_dict_is_not_taken_for_a_checkpoint(tmp_path):
    torch.save(esmm().state_dict(), tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="not a rechub_mini checkpoint .*load_state_dict"):
        load_model(tmp_path)


def test_an_unknown_model_class_names_the_known_ones_and_the_writing_version(tmp_path):
    save_checkpoint(tmp_path / "model.pth", esmm())
    payload = read_checkpoint(tmp_path)
    payload.update(model_class="PLE", package_version="9.9")
    torch.save(payload, tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match=r"unknown model class 'PLE'; this version knows "
                                              r"\['BaseCVR', 'ESMM', 'MMOE', 'SharedBottom'\]"
                                              r".*version that wrote it \(9\.9\)"):
        load_model(tmp_path)


def test_weights_that_do_not_fit_their_model_are_reported_as_such(tmp_path):
    save_checkpoint(tmp_path / "model.pth", esmm())
    payload = read_checkpoint(tmp_path)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    torch.save(payload, tmp_path / "model.pth")
    with pytest.raises(CheckpointError, match="weights do not fit the model it describes .*: "
                                              "Missing key.*embedding.tables.0.weight.*retrain"):
        load_model(tmp_path)


def test_a_saved_model_comes_back_with_the_same_predictions(tmp_path):
    torch.manual_seed(0)
    model = MMOE(USER + ITEM, ["classification", "regression"], 3, {"dims": [4]}, [{}, {}],
                 task_names=["buy", "spend"])
    save_checkpoint(tmp_path / "model.pth", model)
    loaded = load_model(tmp_path)
    x = {"u": torch.tensor([0, 3, 9]), "i": torch.tensor([7, 1, 0])}
    assert loaded.task_names == ["buy", "spend"] and loaded.trained
    assert torch.equal(loaded(x), model(x))


def test_training_without_labels_or_a_folder_to_resume_from_is_refused():
    rng = np.random.default_rng(0)
    x = {"u": rng.integers(0, 10, 64), "i": rng.integers(0, 8, 64)}
    trainer = MTLTrainer(esmm(), n_epoch=1, progress=False, verbose=False)
    with pytest.raises(DataError, match=r"This loader has no labels \(y\)"):
        trainer.fit(BatchLoader(x, None, batch_size=16))
    y = np.zeros((64, 2), dtype=np.float32)
    with pytest.raises(DataError, match="resume=True needs model_path"):
        trainer.fit(BatchLoader(x, y, batch_size=16), resume=True)
