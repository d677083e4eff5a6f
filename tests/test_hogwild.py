"""Hogwild training (rechub_mini/hogwild.py): forked processes that share one model."""
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from conftest import python_env
from test_cli import run_cli
from test_trainer import click_data, loaders, mmoe

from rechub_mini import (ESMM, MMOE, DataError, DataGenerator, DenseFeature, MTLTrainer,
                         SparseFeature, TrainingError, load_model)
from rechub_mini import cli, distributed, hogwild
from rechub_mini.data import BatchLoader
from rechub_mini.datasets import ali_ccp

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Hogwild training forks: Linux only")


def test_two_processes_train_one_shared_model_that_approaches_the_oracle(sample_data,
                                                                          sample_meta):
    torch.manual_seed(0)
    model = ESMM(ali_ccp.build_features(sample_data.train, ali_ccp.ESMM_USER_COLUMNS, 16),
                 ali_ccp.build_features(sample_data.train, ali_ccp.ESMM_ITEM_COLUMNS, 16),
                 {"dims": [16, 8]}, {"dims": [16, 8]})
    inputs = {s: ali_ccp.model_inputs(f, model.features) for s, f in sample_data.splits().items()}
    train, val, test = DataGenerator(*inputs["train"]).generate_dataloader(
        x_val=inputs["val"][0], y_val=inputs["val"][1], x_test=inputs["test"][0],
        y_test=inputs["test"][1], batch_size=1024)
    trainer = MTLTrainer(model, optimizer_params={"lr": 3e-3, "weight_decay": 1e-5},
                         n_epoch=10, earlystop_patience=2, seed=0, verbose=False,
                         hogwild_processes=2)
    trainer.fit(train, val)
    # the processes' updates land in this process's model: unshared weights would leave it
    # untrained here (AUCs near 0.5)
    scores = trainer.evaluate(trainer.model, test)
    oracle = sample_meta["splits"]["test"]["oracle_auc"]
    assert scores["ctr"] > oracle["ctr"] - 0.05
    assert scores["ctcvr"] > oracle["ctcvr"] - 0.05
    assert scores["cvr"] > oracle["cvr_clicked"] - 0.06


def test_each_row_is_trained_once_per_epoch_and_the_loss_is_the_mean_over_all_steps():
    x, y = click_data(4001, 0)
    x["d"] = np.arange(4001, dtype=np.float32)  # each row's d names it
    loader = DataGenerator(x, y).generate_dataloader(batch_size=256)[0]
    model = mmoe()
    trainer = MTLTrainer(model, verbose=False, hogwild_processes=2)
    real_loss = model.loss

    def loss_with_row_sum(x, y):
        total, parts = real_loss(x, y)
        return total, {**parts, "rows": x["d"].double().sum()}

    model.loss = loss_with_row_sum  # forked with the trainer
    sums, steps = hogwild.train_epoch(trainer, loader, 0, 2, hogwild.SharedMemory())
    assert steps == len(loader) == 16  # the batches of one process's pass: 15 full, 1 of 161
    assert sums["rows"] == x["d"].astype(np.float64).sum()  # every row once
    assert loader.epoch == 1  # as after one pass of this process over the loader
    losses = trainer.train_one_epoch(loader, 1)  # reports the mean over all 16 steps
    assert losses["rows"] == pytest.approx(x["d"].sum() / 16, rel=1e-6)


@pytest.mark.parametrize("rows,batch_size,shuffle,drop_last,batches", [
    (3, 1, False, False, 3),  # fewer batches than processes: 3 processes start
    (5, 1, False, False, 5),  # uneven shares: 2, 1, 1, 1
    (1500, 1024, True, True, 1),  # drop_last: one full batch in all
    (1000, 1024, True, False, 1),  # one partial batch, not one per process
])
def test_the_processes_train_the_batches_of_one_pass(rows, batch_size, shuffle, drop_last,
                                                    batches):
    x, y = click_data(rows, 0)
    loader = BatchLoader(x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    trainer = MTLTrainer(mmoe(), verbose=False, hogwild_processes=4)
    sums, steps = hogwild.train_epoch(trainer, loader, 0, 4, hogwild.SharedMemory())
    assert steps == batches == len(loader)
    assert set(sums) == {"cvr", "ctr"}
    trainer.train_one_epoch(loader, 1)  # and through the trainer


def test_large_tables_train_with_embedding_adam_and_its_state_is_shared():
    features = [SparseFeature("u", 5000, 8), SparseFeature("i", 40, 8), DenseFeature("d")]
    rng = np.random.default_rng(0)
    x = {"u": rng.integers(0, 5000, 4096), "i": rng.integers(0, 40, 4096),
         "d": rng.random(4096).astype(np.float32)}
    y = (rng.random((4096, 2)) < 0.3).astype(np.float32)
    loader = DataGenerator(x, y).generate_dataloader(batch_size=256)[0]
    torch.manual_seed(0)
    model = MMOE(features, ["classification"] * 2, 3, {"dims": [8]}, [{"dims": [4]}] * 2)
    trainer = MTLTrainer(model, verbose=False, hogwild_processes=2)
    assert type(trainer.optimizers[1]).__name__ == "EmbeddingAdam"
    table = trainer.sparse_parameters[0]
    before = table.detach().clone()
    trainer.train_one_epoch(loader, 0)
    state = trainer.optimizers[1].state[table]
    assert len(loader) / 2 < float(state["step"]) <= len(loader)  # counted by both processes
    used = torch.unique(torch.as_tensor(x["u"]))
    assert (state["moments"][used].abs().sum(dim=(1, 2)) > 0).all()  # every used row's Adam
    assert not torch.equal(table[used], before[used])


def test_the_optimizer_state_is_shared_and_saved_runs_load(tmp_path):
    train, val, test = loaders()
    trainer = MTLTrainer(mmoe(), optimizer_params={"lr": 0.05}, n_epoch=2, verbose=False,
                         model_path=tmp_path, hogwild_processes=2)
    trainer.fit(train, val)
    steps = 2 * len(train)  # 2 epochs; each process took half the batches of each
    dense_state = trainer.optimizers[0].state[trainer.dense_parameters[0]]
    # every process counted its steps into the one shared counter (a rare collision of two
    # increments may lose one)
    assert steps / 2 < float(dense_state["step"]) <= steps
    assert dense_state["exp_avg"].abs().sum() > 0
    saved = load_model(tmp_path)
    with torch.no_grad():
        batch = next(iter(test.in_order()))[0]
        assert torch.equal(saved(batch), trainer.model.eval()(batch))
    resumed = MTLTrainer(mmoe(), optimizer_params={"lr": 0.05}, n_epoch=3, verbose=False,
                         model_path=tmp_path, hogwild_processes=2)
    history = resumed.fit(train, val, resume=True)
    assert history["epoch"] == [1, 2, 3]
    # the state read from the checkpoint was shared too: epoch 3's steps are counted in it
    step = resumed.optimizers[0].state[resumed.dense_parameters[0]]["step"]
    assert float(step) > float(dense_state["step"]) + len(train) / 2


def test_what_hogwild_cannot_do_is_refused_before_training(monkeypatch):
    for bad in [0, -1, True, 1.5]:
        with pytest.raises(DataError, match="hogwild_processes"):
            MTLTrainer(mmoe(), hogwild_processes=bad)
    with pytest.raises(DataError, match="GPU"):
        hogwild.check_supported(2, torch.device("cuda"), 1)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(DataError, match="torchrun"):
        MTLTrainer(mmoe(), hogwild_processes=2)
    monkeypatch.undo()
    monkeypatch.setattr(hogwild.sys, "platform", "darwin")
    with pytest.raises(DataError, match=r"hogwild_processes 2 needs Linux .* this is darwin"):
        MTLTrainer(mmoe(), hogwild_processes=2)
    MTLTrainer(mmoe(), hogwild_processes=1)  # one process runs anywhere


def one_epoch_with_loss(make_loss) -> None:
    """One epoch of mmoe() by 2 Hogwild processes, its loss replaced by make_loss(its loss);
    however it ends, no process may be left running."""
    train, _, _ = loaders()
    model = mmoe()
    model.loss = make_loss(model.loss)  # forked with the trainer
    try:
        MTLTrainer(model, verbose=False, hogwild_processes=2).train_one_epoch(train, 0)
    finally:
        assert multiprocessing.active_children() == []


def in_process(rank: int) -> bool:
    return multiprocessing.current_process().name == f"hogwild-{rank}"


def test_an_error_in_a_process_reaches_the_caller_and_stops_the_others():
    finished = hogwild.shared_copy(torch.zeros(1))  # set by process 0 after its last step

    def nan_in_the_second_process(real_loss):
        def loss(x, y):
            total, parts = real_loss(x, y)
            if in_process(1):
                return total * float("nan"), parts
            time.sleep(1)  # process 0 would need 8 s for its 8 steps
            finished[0] += 1 / 8
            return total, parts
        return loss

    with pytest.raises(TrainingError, match=r"nan at epoch 1, step 1\. .*\(in Hogwild training "
                                            r"process 1\)"):
        one_epoch_with_loss(nan_in_the_second_process)
    assert finished[0] < 1  # stopped before the end of its share


class ShapeError(Exception):
    def __init__(self, expected, got):
        super().__init__(f"expected {expected}, got {got}")


def test_any_error_in_a_process_arrives_as_its_message_and_traceback():
    def fails(real_loss):  # an exception that pickle cannot rebuild (two arguments)
        def loss(x, y):
            raise ShapeError(3, 4)
        return loss

    with pytest.raises(TrainingError, match=r"(?s)Hogwild training process \d failed:.*"
                                            r"ShapeError: expected 3, got 4"):
        one_epoch_with_loss(fails)


def test_a_process_that_is_killed_is_a_clear_error():
    def killed_in_the_first_process(real_loss):
        def loss(x, y):
            if in_process(0):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_loss(x, y)
        return loss

    with pytest.raises(TrainingError, match=r"process 0 of 2 stopped \(signal SIGKILL\) during "
                                            r"epoch 1"):
        one_epoch_with_loss(killed_in_the_first_process)


def test_ctrl_c_while_the_processes_start_leaves_none_running(monkeypatch):
    start = multiprocessing.context.ForkProcess.start

    def start_then_ctrl_c(process):  # Ctrl-C right after each process started
        start(process)
        signal.raise_signal(signal.SIGINT)

    def slow(real_loss):
        def loss(x, y):
            time.sleep(0.2)
            return real_loss(x, y)
        return loss

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", start_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        one_epoch_with_loss(slow)


CTRL_C_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from test_trainer import loaders, mmoe
    from rechub_mini import MTLTrainer
    train, _, _ = loaders()
    model = mmoe()
    real_loss = model.loss
    def slow(x, y):
        time.sleep(float(sys.argv[2]))
        return real_loss(x, y)
    model.loss = slow
    trainer = MTLTrainer(model, verbose=False, progress=False, hogwild_processes=2)
    print("training", flush=True)
    trainer.train_one_epoch(train, 0)
    print("finished", flush=True)
""")


def test_ctrl_c_stops_every_process_with_one_message():
    tests = os.path.dirname(__file__)
    run = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, tests, "0.5"],
                           stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=python_env(),
                           start_new_session=True)  # its own group, as a terminal's job
    assert run.stdout.readline() == "training\n"
    try:
        run.wait(timeout=2)  # the processes are training by then (0.5 s a step)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C does: the whole group gets it
    out, err = run.communicate(timeout=60)
    assert "finished" not in out and run.returncode != 0
    assert err.count("Traceback") == 1 and err.rstrip().endswith("KeyboardInterrupt"), err
    with pytest.raises(ProcessLookupError):  # no process of the group is left
        os.killpg(run.pid, 0)


def test_the_train_command_trains_with_hogwild_processes(sample_dir, sample_meta, monkeypatch,
                                                         capsys):
    made = []

    class Recorded(MTLTrainer):
        def __init__(self, *args, **options):
            super().__init__(*args, **options)
            made.append(self)

    monkeypatch.setattr(cli, "MTLTrainer", Recorded)
    assert cli.main(["train", "--model", "mmoe", "--data", str(sample_dir), "--epochs", "2",
                     "--hogwild-processes", "2"]) == 0
    assert [trainer.hogwild_processes for trainer in made] == [2]
    lines = capsys.readouterr().out.splitlines()
    assert "; 2 Hogwild processes" in lines[0]
    header = lines.index(next(line for line in lines if line.startswith("task")))
    scores = {r.split()[0]: float(r.split()[2]) for r in lines[header + 1:]}
    oracle = sample_meta["splits"]["test"]["oracle_auc"]
    assert scores["click"] > oracle["ctr"] - 0.15  # the floors of test_cli's two-epoch runs
    assert scores["purchase"] > oracle["ctcvr"] - 0.12
    refused = run_cli("train", "--data", str(sample_dir), "--hogwild-processes", "0")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: --hogwild-processes must be a whole number of at least 1, got 0.")


def test_the_processes_end_when_the_main_process_is_killed():
    tests = os.path.dirname(__file__)
    run = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, tests, "2"],  # 16 s a share
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=python_env(), start_new_session=True)
    assert run.stdout.readline() == "training\n"
    time.sleep(2)  # the processes are training by then
    run.kill()  # kill -9: no handler runs, no finally block
    run.wait(timeout=60)
    for _ in range(100):  # Linux ends them at once (PR_SET_PDEATHSIG); a share takes 16 s
        try:
            os.killpg(run.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.killpg(run.pid, signal.SIGKILL)
        pytest.fail("a Hogwild process outlived its killed parent by 5 s")
    run.stdout.close()
    run.stderr.close()

