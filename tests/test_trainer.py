import os
from unittest import mock

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_squared_error

from rechub_mini import (MMOE, CheckpointError, DataError, DataGenerator, DenseFeature,
                         MTLTrainer, SparseFeature, TrainingError, load_model)
from rechub_mini import files
from rechub_mini import trainer as trainer_module
from rechub_mini.data import BatchLoader
from rechub_mini.optim import EmbeddingAdam
from rechub_mini.metrics import MetricWarning
from rechub_mini.trainer import PROGRESS_ENV, show_progress

FEATURES = [SparseFeature("u", 50, 8), SparseFeature("i", 40, 8), DenseFeature("d")]


def click_data(n, seed):
    """Clicks driven by u and i; purchases by i and d."""
    rng = np.random.default_rng(seed)
    u, i, d = rng.integers(0, 50, n), rng.integers(0, 40, n), rng.random(n).astype(np.float32)
    click = rng.random(n) < 1 / (1 + np.exp(-(np.sin(u) + np.cos(i) - 1)))
    purchase = click & (rng.random(n) < 1 / (1 + np.exp(-(np.sin(i * 3) + 2 * d - 1))))
    return {"u": u, "i": i, "d": d}, np.stack([purchase, click], 1).astype(np.float32)


def loaders(n=4000, batch_size=256):
    x, y = click_data(n, 0)
    xv, yv = click_data(n // 2, 1)
    return DataGenerator(x, y).generate_dataloader(x_val=xv, y_val=yv, x_test=xv, y_test=yv,
                                                   batch_size=batch_size)


def mmoe(seed=0):
    torch.manual_seed(seed)
    return MMOE(FEATURES, ["classification"] * 2, 3, {"dims": [8]}, [{"dims": [4]}] * 2,
                task_names=["cvr", "ctr"])


def test_fit_returns_history_and_restores_the_best_epoch(tmp_path):
    train, val, _ = loaders()
    trainer = MTLTrainer(mmoe(), optimizer_params={"lr": 0.05}, n_epoch=6,
                         earlystop_taskid=1, earlystop_patience=2, model_path=tmp_path,
                         seed=0, verbose=False)
    history = trainer.fit(train, val)
    epochs = history["epoch"]
    assert set(history["train_loss"]) == {"cvr", "ctr"}
    assert all(len(v) == len(epochs) for v in history["train_loss"].values())
    assert len(history["val"]["ctr"]) == len(epochs)
    best = history["best_epoch"]
    assert history["val"]["ctr"][best - 1] == max(history["val"]["ctr"])
    assert best < epochs[-1], "this setup overfits, so the best epoch is not the last"
    # the weights in the trainer and in the checkpoint are the best epoch's
    assert trainer.evaluate(trainer.model, val)["ctr"] == pytest.approx(history["val"]["ctr"][best - 1])
    restored = load_model(tmp_path)
    assert np.allclose(trainer.predict(restored, val), trainer.predict(trainer.model, val))
    assert sorted(os.listdir(tmp_path)) == ["model.pth", "resume.pth"]  # no temp files left


def test_training_with_a_seed_is_reproducible():
    def predictions(trainer_seed, loader_seed):
        x, y = click_data(4000, 0)
        xv, yv = click_data(2000, 1)
        train = BatchLoader(x, y, batch_size=256, shuffle=True, seed=loader_seed)
        trainer = MTLTrainer(mmoe(seed=1), n_epoch=2, seed=trainer_seed, verbose=False)
        trainer.fit(train)
        return trainer.predict(trainer.model, BatchLoader(xv, yv))

    first = predictions(5, loader_seed=0)
    # the trainer's seed decides the shuffling, whatever seed the loader was built with
    assert np.array_equal(first, predictions(5, loader_seed=123))
    assert not np.allclose(first, predictions(6, loader_seed=0))


def test_large_tables_only_update_rows_in_the_batch_small_tables_are_dense():
    torch.manual_seed(0)
    features = [SparseFeature("u", 5000, 8), SparseFeature("i", 4000, 8), SparseFeature("g", 4, 8)]
    model = MMOE(features, ["classification"] * 2, 2, {"dims": [4]}, [{}, {}])
    large, small = model.embedding.tables[1], model.embedding.tables[0]
    assert large.sparse and not small.sparse
    assert [f.name for f in model.embedding.groups[1]] == ["u", "i"]
    before, small_before = large.weight.detach().clone(), small.weight.detach().clone()
    batches = DataGenerator({"u": np.array([1, 2, 3, 1]), "i": np.array([0, 0, 1, 1]),
                             "g": np.array([0, 1, 2, 1])},
                            np.array([[0, 1], [0, 0], [1, 1], [0, 1]], np.float32)
                            ).generate_dataloader(batch_size=2)[0]
    trainer = MTLTrainer(model, optimizer_params={"lr": 0.1, "weight_decay": 0.1}, n_epoch=2,
                         verbose=False)
    assert any(isinstance(o, EmbeddingAdam) for o in trainer.optimizers)
    trainer.fit(batches)
    changed = (large.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    # u ids 1..3 (rows 1..3) and i ids 0, 1 (rows 5000, 5001 after u's 5000 rows)
    assert changed == [1, 2, 3, 5000, 5001]
    # the small table learns by dense Adam, but weight decay is for the dense layers only:
    # g's id 3, in no batch, keeps its row
    changed = (small.weight.detach() != small_before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [0, 1, 2]


def test_trainer_rejects_mismatched_task_types_and_bad_options():
    with pytest.raises(DataError, match="differ from the model"):
        MTLTrainer(mmoe(), task_types=["classification"] * 3)
    with pytest.raises(DataError, match=r"unknown options \['momentum'\]"):
        MTLTrainer(mmoe(), optimizer_params={"momentum": 0.9})
    bad = [({"optimizer_params": {"lr": -1e-3}}, r"optimizer_params\['lr'\] must be a number >= 0"),
           ({"optimizer_params": {"weight_decay": -1e-5}}, r"\['weight_decay'\] must be a number"),
           ({"optimizer_params": {"eps": float("nan")}}, r"\['eps'\] must be a number >= 0, got nan"),
           ({"optimizer_params": {"betas": (1.0, 0.9)}}, r"\['betas'\] must be two numbers in"),
           ({"optimizer_params": {"betas": 0.9}}, r"\['betas'\] must be two numbers in"),
           ({"n_epoch": 0}, "n_epoch must be a whole number of at least 1, got 0"),
           ({"n_epoch": 2.5}, "n_epoch must be a whole number"),
           ({"earlystop_patience": 0}, "earlystop_patience must be a whole number"),
           ({"device": "gpu"}, "'gpu' is not a device name"),
           ({"device": "cuda:99"}, "asks for a GPU, but PyTorch sees")]
    for options, message in bad:
        with pytest.raises(DataError, match=message):
            MTLTrainer(mmoe(), **options)


def test_nan_loss_stops_with_epoch_and_step():
    x, y = click_data(512, 0)
    # a regression target whose squared error overflows float32; half +1e30, half -1e30, so
    # that starting the output at the label's mean (0) does not avoid the overflow
    y[:, 1] = 1e30
    y[::2, 1] = -1e30
    loader = DataGenerator(x, y).generate_dataloader(batch_size=128)[0]
    model = MMOE(FEATURES, ["classification", "regression"], 2, {"dims": [4]}, [{}, {}])
    with pytest.raises(TrainingError, match=r"inf at epoch 1, step 1\. Lower the learning rate"):
        MTLTrainer(model, n_epoch=1, verbose=False).fit(loader)


def test_damaged_checkpoint_and_mismatched_features_get_clear_errors(tmp_path):
    train, _, _ = loaders(n=500)
    MTLTrainer(mmoe(), n_epoch=1, model_path=tmp_path, verbose=False).fit(train)
    with pytest.raises(CheckpointError, match="features do not match.*'u' vocab_size 50 -> 51"):
        load_model(tmp_path, features=[SparseFeature("u", 51, 8)] + FEATURES[1:])
    with pytest.raises(CheckpointError, match="the same features in another order"):
        load_model(tmp_path, features=FEATURES[::-1])
    data = (tmp_path / "model.pth").read_bytes()
    (tmp_path / "model.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_model(tmp_path)


def test_a_model_folder_that_cannot_be_used_fails_before_the_first_epoch(tmp_path, monkeypatch):
    train, _, _ = loaders(n=500)
    trained = []
    monkeypatch.setattr(MTLTrainer, "train_one_epoch", lambda self, *a: trained.append(1) or {})
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    cases = [(a_file, "model_path .* is a file; give a folder"),
             (a_file / "run", r"Cannot create model_path .*; give a folder you can write")]
    for folder, message in cases:
        with pytest.raises(DataError, match=message):
            MTLTrainer(mmoe(), n_epoch=1, model_path=folder, verbose=False).fit(train)
    def read_only_disk(**kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "TemporaryFile", read_only_disk)
    with pytest.raises(DataError, match="is not writable"):
        MTLTrainer(mmoe(), n_epoch=1, model_path=tmp_path / "ro", verbose=False).fit(train)
    assert trained == [] and a_file.read_text() == "keep me"
    assert (tmp_path / "ro").is_dir()  # a missing folder is created before training


def test_a_training_loader_without_a_single_batch_is_a_clear_error():
    x, y = click_data(300, 0)
    loader = BatchLoader(x, y, batch_size=512, shuffle=True, drop_last=True)
    with pytest.raises(DataError, match=r"no batch \(300 rows, batch_size 512, drop_last=True\)"):
        MTLTrainer(mmoe(), n_epoch=1, verbose=False).fit(loader)


def test_resume_without_a_saved_run_says_so_and_starts_a_new_one(tmp_path, capsys):
    train, _, _ = loaders(n=500)
    MTLTrainer(mmoe(), n_epoch=1, model_path=tmp_path / "typo").fit(train, resume=True)
    out = capsys.readouterr().out
    assert "nothing to resume: no resume.pth in" in out and "starting a new run" in out
    assert "epoch 1/1" in out and (tmp_path / "typo" / "resume.pth").exists()


def test_progress_bars_follow_argument_then_environment(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert show_progress(None) is False
    assert show_progress(True) is True
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert show_progress(None) is True


def test_training_prints_one_line_per_epoch_and_the_kept_one(capsys):
    train, val, _ = loaders(n=1000)
    MTLTrainer(mmoe(), n_epoch=2, earlystop_patience=5, progress=False).fit(train, val)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/2  train loss cvr ")
    assert "|  val cvr AUC" in lines[0] and lines[2].startswith("best epoch ")


def test_predict_follows_stored_row_order_even_for_a_shuffled_loader():
    x, y = click_data(9000, 3)  # more rows than one predict pass reads (PREDICT_BATCH_ROWS)
    model = mmoe()
    shuffled = BatchLoader(x, y, batch_size=300, shuffle=True)
    in_order = BatchLoader(x, y, batch_size=10000)
    trainer = MTLTrainer(model, n_epoch=1, verbose=False)
    p = trainer.predict(model, shuffled)
    with torch.inference_mode():
        expected = model(in_order.x).numpy()
    np.testing.assert_allclose(p, expected, atol=1e-6)
    assert trainer.evaluate(model, shuffled).as_dict() == trainer.evaluate(model, in_order).as_dict()


def test_in_order_batches_cover_every_row_once_per_process():
    x, y = click_data(1001, 0)
    loader = BatchLoader(x, y, batch_size=64, shuffle=True)
    loader.shard(1, 2)  # the second of two processes gets rows 501..1000
    parts = [yb for _, yb in loader.in_order(200)]
    assert [len(p) for p in parts] == [200, 200, 100]
    assert torch.equal(torch.cat(parts), loader.y[501:])


def test_only_batch_loaders_are_taken_and_the_error_says_how_to_make_one():
    train, val, _ = loaders(n=300, batch_size=64)
    trainer = MTLTrainer(mmoe(), n_epoch=1, progress=False, verbose=False)
    batches = list(train)  # (x, y) pairs: what a torch DataLoader of dicts would give
    message = r"Expected a loader from DataGenerator or BatchLoader, got list; wrap the data"
    for call in (lambda: trainer.train_one_epoch(batches, 0),
                 lambda: trainer.predict(trainer.model, batches),
                 lambda: trainer.evaluate(trainer.model, batches),
                 lambda: trainer.fit(batches, val)):
        with pytest.raises(DataError, match=message):
            call()


def test_loaders_are_checked_once_and_batches_then_skip_the_id_check():
    x, y = click_data(600, 0)
    x["i"][450] = 40  # one past the table of "i"
    bad = BatchLoader(x, y, batch_size=128)
    trainer = MTLTrainer(mmoe(), n_epoch=1, progress=False, verbose=False)
    # the loader's check catches it before any batch: a DataError naming feature and row
    with pytest.raises(DataError, match=r"'i' has id 40 \(first too large at row 450\)"):
        trainer.train_one_epoch(bad, 0)
    with pytest.raises(DataError, match=r"'i' has id 40"):
        trainer.predict(trainer.model, bad)
    embedding = trainer.model.embedding
    assert embedding.check_ids  # restored after the failed runs
    good, _, _ = loaders(n=600, batch_size=128)
    seen = []
    forward = type(embedding).forward

    def spy(layer, batch):
        seen.append(layer.check_ids)
        return forward(layer, batch)

    with mock.patch.object(type(embedding), "forward", spy):
        trainer.train_one_epoch(good, 0)
        trainer.predict(trainer.model, good)
    assert seen and not any(seen)  # every batch of a checked loader skipped the check
    assert embedding.check_ids
    x["i"][450] = 5
    x["i"][3] = -1
    with pytest.raises(DataError, match=r"'i' has a negative id -1 \(first at row 3\)"):
        trainer.model({k: torch.as_tensor(v) for k, v in x.items()})


def test_each_epoch_ends_with_no_tiny_dense_weights():
    train, _, _ = loaders(n=600, batch_size=128)
    # lr 0: the steps leave every weight as it is, so only the flush can clear them
    trainer = MTLTrainer(mmoe(), optimizer_params={"lr": 0.0}, progress=False, verbose=False)
    experts = trainer.model.experts.weights[0]
    with torch.no_grad():
        experts[0, :, :3] = 1e-40
        experts[0, :, 3] = -1e-25
    kept = experts[1:].clone()
    trainer.train_one_epoch(train, 0)
    assert int((experts[0, :, :4] != 0).sum()) == 0
    assert torch.equal(experts[1:], kept)


def test_tiny_weights_and_moments_are_also_flushed_during_an_epoch(monkeypatch):
    train, _, _ = loaders(n=2 * trainer_module.FLUSH_EVERY * 16 + 16 * 10, batch_size=16)
    trainer = MTLTrainer(mmoe(), progress=False, verbose=False)
    flushed = []
    monkeypatch.setattr(trainer_module, "flush_tiny_values",
                        lambda tensors: flushed.append(list(tensors)))
    trainer.train_one_epoch(train, 0)  # 210 steps: after steps 100 and 200, and at the end
    assert len(flushed) == 3
    dense = trainer.dense_parameters
    moments = [trainer.optimizers[0].state[p]["exp_avg"] for p in dense]
    assert all(len(f) == 2 * len(dense) for f in flushed)
    assert all(a is b for a, b in zip(flushed[-1], dense + moments))


def test_a_new_run_never_overwrites_an_earlier_one(tmp_path, capsys):
    train, val, _ = loaders(n=600)
    MTLTrainer(mmoe(), n_epoch=1, model_path=tmp_path, verbose=False).fit(train, val)
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for resume in (False, True):
        (tmp_path / "resume.pth").unlink() if resume else None  # only model.pth is left
        with pytest.raises(DataError, match=r"already holds an earlier run \(model\.pth"
                                            r".*resume=True \(--resume\)"):
            MTLTrainer(mmoe(1), n_epoch=1, model_path=tmp_path, verbose=False).fit(train, val)
        kept = {name: data for name, data in saved.items() if not (resume and name ==
                                                                  "resume.pth")}
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == kept  # nothing added


def test_resuming_with_another_model_or_options_names_what_differs(tmp_path):
    train, val, _ = loaders(n=600)
    MTLTrainer(mmoe(), optimizer_params={"lr": 0.01}, n_epoch=1, model_path=tmp_path,
               seed=0, verbose=False).fit(train, val)
    wider = MMOE([SparseFeature("u", 50, 16), *FEATURES[1:]], ["classification"] * 2, 3,
                 {"dims": [8]}, [{"dims": [4]}] * 2, task_names=["cvr", "ctr"])
    other_loader = loaders(n=600, batch_size=128)[0]
    cases = [
        (wider, {"lr": 0.01}, 0, train, r"features: 'u' embed_dim 8 -> 16"),
        (mmoe(), {"lr": 0.1}, 0, train, r"lr 0\.01 -> 0\.1"),
        (mmoe(), {"lr": 0.01}, 1, train, r"seed 0 -> 1"),
        (mmoe(), {"lr": 0.01}, 0, other_loader, r"batch_size 256 -> 128"),
    ]
    for model, options, seed, loader, message in cases:
        trainer = MTLTrainer(model, optimizer_params=options, n_epoch=2, model_path=tmp_path,
                             seed=seed, verbose=False)
        with pytest.raises(CheckpointError, match=f"written by another run setup: {message}"):
            trainer.fit(loader, val, resume=True)
    # the same setup resumes; more epochs than before are allowed
    trainer = MTLTrainer(mmoe(), optimizer_params={"lr": 0.01}, n_epoch=2, model_path=tmp_path,
                         seed=0, verbose=False)
    assert trainer.fit(train, val, resume=True)["epoch"] == [1, 2]


def test_the_log_names_the_kept_epoch_and_says_early_stop_only_when_it_stopped_early(capsys):
    train, val, _ = loaders()
    MTLTrainer(mmoe(), optimizer_params={"lr": 0.05}, n_epoch=6, earlystop_taskid=1,
               earlystop_patience=2, seed=0).fit(train, val)
    log = capsys.readouterr().out.splitlines()
    stopped = len([line for line in log if line.startswith("epoch ")])
    assert stopped < 6 and log[-2] == "early stop: no better val ctr for 2 epochs"
    assert log[-1].startswith("best epoch ") and log[-1].endswith("(val ctr): its weights are kept")
    MTLTrainer(mmoe(), optimizer_params={"lr": 0.05}, n_epoch=stopped, earlystop_taskid=1,
               earlystop_patience=2, seed=0).fit(train, val)
    log = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("early stop") for line in log)  # it ran all its epochs
    assert log[-1].startswith("best epoch ")


def test_model_differences_names_reordered_and_changed_features(tmp_path):
    from rechub_mini.checkpoint import model_differences, read_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "m.pth", mmoe())
    saved = read_checkpoint(tmp_path / "m.pth")
    assert model_differences(saved, mmoe(1)) == []  # other weights, same setup
    reordered = MMOE(FEATURES[::-1], ["classification"] * 2, 3, {"dims": [8]},
                     [{"dims": [4]}] * 2, task_names=["cvr", "ctr"])
    assert model_differences(saved, reordered) == [
        "features: the same features in another order"]
    other = MMOE([SparseFeature("u", 60, 8), FEATURES[2]], ["classification"] * 2, 3,
                 {"dims": [8]}, [{"dims": [4]}] * 2, task_names=["cvr", "ctr"])
    assert model_differences(saved, other) == [
        "features: 'i' missing now, 'u' vocab_size 50 -> 60"]


def test_numpy_numbers_in_the_options_still_give_loadable_checkpoints(tmp_path):
    """Sweeps built with numpy hand over numpy scalars; torch.load(weights_only=True) refuses
    them, so a checkpoint holding one could be written but never read back."""
    train, val, _ = loaders(n=600)
    model = MMOE(FEATURES, ["classification"] * 2, np.int64(3), {"dims": [np.int64(8)]},
                 [{"dims": [4], "dropout": np.float64(0.1)}] * 2, task_names=["cvr", "ctr"])
    MTLTrainer(model, optimizer_params={"lr": np.float64(0.01), "betas": (np.float64(0.9), np.float64(0.99))},
               n_epoch=1, model_path=tmp_path, seed=np.int64(0), verbose=False).fit(train, val)
    restored = load_model(tmp_path)
    assert restored.init_args["expert_params"]["dims"] == [8]
    trainer = MTLTrainer(restored, optimizer_params={"lr": 0.01, "betas": (0.9, 0.99)},
                         n_epoch=2, model_path=tmp_path, seed=0, verbose=False)
    assert trainer.fit(train, val, resume=True)["epoch"] == [1, 2]


def test_task_names_must_be_distinct_names():
    for names, message in [(["click", "click"], r"repeat \['click'\]"),
                           ("pc", "must be a list of names")]:
        with pytest.raises(DataError, match=message):
            MMOE(FEATURES, ["classification"] * 2, 3, {"dims": [8]}, [{"dims": [4]}] * 2,
                 task_names=names)


@pytest.mark.filterwarnings("ignore:AUC of cvr is undefined")  # each evaluation says so too
def test_an_undefined_validation_score_is_reported_and_the_latest_epoch_kept(capsys):
    train, _, _ = loaders(n=800)
    x, y = click_data(400, 1)
    y[:, 0] = 0  # no purchase in the validation rows: the cvr AUC is undefined
    val = BatchLoader(x, y, batch_size=256)
    trainer = MTLTrainer(mmoe(), optimizer_params={"lr": 0.01}, n_epoch=3, earlystop_patience=1,
                         seed=0, verbose=False)
    trainer.verbose = True
    with pytest.warns(MetricWarning, match=r"val cvr is NaN at epoch 1 .* another earlystop_"):
        history = trainer.fit(train, val)
    assert history["epoch"] == [1, 2, 3] and history["best_epoch"] == 3
    assert capsys.readouterr().out.splitlines()[-1] == (
        "kept the latest epoch, 3: val cvr never had a score")


def test_a_loaded_model_keeps_its_output_biases_when_training_goes_on(tmp_path):
    train, val, _ = loaders(n=800)
    MTLTrainer(mmoe(), optimizer_params={"lr": 0.05}, n_epoch=2, model_path=tmp_path,
               seed=0, verbose=False).fit(train, val)
    model = load_model(tmp_path)
    before = trainer_module.MTLTrainer(model, verbose=False).predict(model, val)
    MTLTrainer(model, optimizer_params={"lr": 0.0}, n_epoch=1, seed=0, verbose=False).fit(train)
    after = MTLTrainer(model, verbose=False).predict(model, val)
    assert np.array_equal(before, after)  # lr 0 and no reset: nothing moved


def test_odd_labels_and_task_indexes_get_clear_errors():
    from rechub_mini.metrics import auc

    with pytest.raises(DataError, match=r"labels must be 0 or 1, found \[2\]"):
        auc([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(DataError, match=r"labels must be 0 or 1, found \[nan\]"):
        auc([0, 1, float("nan"), 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(DataError, match="earlystop_taskid 1.0 is not a task index"):
        MTLTrainer(mmoe(), earlystop_taskid=1.0)
    x = {"u": torch.tensor([1, 2, 3]).bfloat16(), "i": np.arange(3), "d": np.ones(3)}
    assert BatchLoader(x, None).x["u"].tolist() == [1.0, 2.0, 3.0]  # numpy has no bfloat16


def test_resuming_a_model_built_with_tuples_works(tmp_path):
    """Checkpoints store tuples as lists; the comparison must not call that a difference."""
    train, val, _ = loaders(n=600)

    def build():
        torch.manual_seed(0)
        return MMOE(FEATURES, ("classification", "classification"), 3, {"dims": (8,)},
                    [{"dims": (4,)}] * 2, task_names=("cvr", "ctr"))

    MTLTrainer(build(), n_epoch=1, model_path=tmp_path, seed=0, verbose=False).fit(train, val)
    again = MTLTrainer(build(), n_epoch=2, model_path=tmp_path, seed=0, verbose=False)
    assert again.fit(train, val, resume=True)["epoch"] == [1, 2]


def test_resume_asked_where_only_a_model_is_left_says_so(tmp_path):
    train, val, _ = loaders(n=600)
    MTLTrainer(mmoe(), n_epoch=1, model_path=tmp_path, verbose=False).fit(train, val)
    (tmp_path / "resume.pth").unlink()
    with pytest.raises(DataError, match=r"holds an earlier run's model\.pth but no resume\.pth"):
        MTLTrainer(mmoe(), n_epoch=1, model_path=tmp_path, verbose=False).fit(
            train, val, resume=True)


def test_a_regression_task_is_scored_by_mse_and_early_stopping_minimises_it():
    def spend_data(n, seed):
        x, y = click_data(n, seed)
        rng = np.random.default_rng(seed + 10)
        spend = 3 * np.sin(x["u"]) + 2 * x["d"] + rng.normal(0, 0.5, n)  # values beyond 0..1
        return x, np.stack([y[:, 1], spend], 1).astype(np.float32)

    (x, y), (xv, yv) = spend_data(4000, 0), spend_data(2000, 1)
    train, val, _ = DataGenerator(x, y).generate_dataloader(x_val=xv, y_val=yv, batch_size=256)
    torch.manual_seed(0)
    model = MMOE(FEATURES, ["classification", "regression"], 3, {"dims": [8]},
                 [{"dims": [4]}] * 2, task_names=["click", "spend"])
    trainer = MTLTrainer(model, optimizer_params={"lr": 0.03}, n_epoch=8, earlystop_taskid=1,
                         earlystop_patience=2, seed=0, verbose=False)
    history = trainer.fit(train, val)
    mse = history["val"]["spend"]
    assert mse[history["best_epoch"] - 1] == min(mse)  # lower is better for MSE
    scores = trainer.evaluate(trainer.model, val)
    assert scores.metrics == ["AUC", "MSE"]
    predicted = trainer.predict(trainer.model, val)[:, 1]
    assert scores["spend"] == pytest.approx(mean_squared_error(yv[:, 1], predicted), rel=1e-6)
    assert scores["spend"] == min(mse)  # the best epoch's weights were kept
    assert predicted.max() > 1.5  # a raw value, not squashed by a sigmoid
    assert scores["spend"] < 0.5 * yv[:, 1].var()  # it learned most of sin(u) and d


def test_the_reported_training_loss_is_the_mean_over_the_epochs_batches():
    """With lr 0 the weights stay, so each batch's loss can be computed again afterwards."""
    torch.manual_seed(0)
    model = mmoe()
    train = loaders(n=1000, batch_size=250)[0]  # 4 equal batches: any shuffle, the same mean
    trainer = MTLTrainer(model, optimizer_params={"lr": 0.0}, n_epoch=1, verbose=False,
                         start_at_base_rates=False)
    history = trainer.fit(train)
    with torch.no_grad():
        parts = [model.loss(x, y)[1] for x, y in train.in_order()]
    for name in parts[0]:
        expected = float(torch.stack([p[name] for p in parts]).mean())
        assert history["train_loss"][name][0] == pytest.approx(expected, rel=1e-5)


def test_a_bad_validation_loader_is_refused_before_the_first_epoch(capsys):
    model = mmoe()
    train, val, _ = loaders(n=1000)
    val.y[3, 0] = 2  # not a 0/1 label
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(DataError, match="label"):
        MTLTrainer(model, n_epoch=1).fit(train, val)
    assert "epoch 1" not in capsys.readouterr().out
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
