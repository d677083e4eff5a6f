"""Two processes with torchrun and gloo over loopback: same weights on both ranks, AUCs close to
a single-process run, and a crashing rank ends the run instead of hanging it."""
import subprocess
import sys
import textwrap

import torch

from conftest import python_env

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import torch
    from rechub_mini import ESMM, DataGenerator, MTLTrainer, distributed
    from rechub_mini.datasets import ali_ccp

    data_dir, out, crash_rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    world, rank = distributed.world_size(), distributed.rank()
    data = ali_ccp.load_ali_ccp(data_dir)
    torch.manual_seed(0)
    model = ESMM(ali_ccp.build_features(data.train, ali_ccp.ESMM_USER_COLUMNS, 8),
                 ali_ccp.build_features(data.train, ali_ccp.ESMM_ITEM_COLUMNS, 8),
                 {"dims": [16, 8]}, {"dims": [16, 8]})
    inputs = {s: ali_ccp.model_inputs(f, model.features) for s, f in data.splits().items()}
    x_test, y_test = inputs["test"]
    # 5,999 rows: two processes score blocks of 3,000 and 2,999, padded to gather them
    x_test, y_test = {k: v[:-1] for k, v in x_test.items()}, y_test[:-1]
    train, _, test = DataGenerator(*inputs["train"]).generate_dataloader(
        x_test=x_test, y_test=y_test, batch_size=512 // world, seed=1)
    if rank == crash_rank:
        raise RuntimeError(f"rank {rank} crashes on purpose")
    trainer = MTLTrainer(model, optimizer_params={"lr": 3e-3}, n_epoch=4, seed=1, verbose=False)
    trainer.fit(train)
    scores = trainer.evaluate(trainer.model, test)
    torch.save(trainer.model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    gathered = trainer.predict(trainer.model, test)
    with torch.no_grad():
        every_row = trainer.model.eval()(test.x).numpy()  # this process alone, all rows
    torch.save([gathered, every_row], os.path.join(out, f"predictions{rank}.pt"))
    if rank == 0:
        with open(os.path.join(out, "scores.json"), "w") as f:
            json.dump(scores.as_dict(), f)
    distributed.shut_down()
''')


def torchrun_command(nproc, *program):
    """torchrun on this machine alone (--standalone: it picks a free port itself, so tests
    running at the same time cannot collide); `program` is a script path, or "-m", module and
    arguments."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", *map(str, program)]


def launch(tmp_path, sample_dir, nproc, crash_rank=-1, timeout=300):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"out{nproc}"
    out.mkdir()
    env = python_env(RECHUB_MINI_DIST_TIMEOUT_MIN="2", OMP_NUM_THREADS="1")
    command = [sys.executable, str(script)] if nproc == 1 else torchrun_command(nproc, script)
    result = subprocess.run(command + [str(sample_dir), str(out), str(crash_rank)],
                            capture_output=True, text=True, env=env, timeout=timeout)
    return result, out


def test_two_gloo_processes_match_each_other_and_one_process(tmp_path, sample_dir):
    import json

    result, out = launch(tmp_path, sample_dir, 2)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # predictions gathered from both processes are every test row once, in order
    for rank in (0, 1):
        gathered, every_row = torch.load(out / f"predictions{rank}.pt", weights_only=False)
        assert gathered.shape == every_row.shape == (5999, 3)
        assert abs(gathered - every_row).max() < 1e-6
    alone, out1 = launch(tmp_path, sample_dir, 1)
    assert alone.returncode == 0, alone.stderr[-3000:]
    two = json.loads((out / "scores.json").read_text())
    one = json.loads((out1 / "scores.json").read_text())
    assert one.keys() == two.keys() == {"cvr", "ctr", "ctcvr"}
    for task in one:
        assert abs(one[task] - two[task]) < 0.01, (task, one[task], two[task])
    assert min(one.values()) > 0.6  # the runs learned something worth comparing


def test_a_crashing_rank_ends_the_run_with_an_error(tmp_path, sample_dir):
    result, _ = launch(tmp_path, sample_dir, 2, crash_rank=1, timeout=240)
    assert result.returncode != 0
    assert "rank 1 crashes on purpose" in result.stderr


GRADIENT_SCRIPT = textwrap.dedent('''
    import sys
    import torch
    from rechub_mini import distributed

    out = sys.argv[1]
    distributed.init_from_env("cpu")
    rank = distributed.rank()
    torch.manual_seed(rank)
    wide, narrow, unused = (torch.zeros(50, 3, requires_grad=True),
                            torch.zeros(20, 2, requires_grad=True),
                            torch.zeros(10, 4, requires_grad=True))
    # rank 0 repeats ids; rank 1 gives the narrow table no rows; nobody uses the last table
    wide_ids = torch.tensor([1, 7, 7, 49, 1]) if rank == 0 else torch.tensor([7, 30])
    narrow_ids = torch.tensor([0, 19, 0]) if rank == 0 else torch.tensor([], dtype=torch.long)
    wide.grad = torch.sparse_coo_tensor(wide_ids[None], torch.randn(len(wide_ids), 3), (50, 3))
    narrow.grad = torch.sparse_coo_tensor(narrow_ids[None], torch.randn(len(narrow_ids), 2),
                                          (20, 2))
    torch.save([wide.grad.to_dense(), narrow.grad.to_dense()], f"{out}/before{rank}.pt")
    distributed.average_sparse_gradients([wide, narrow, unused])
    assert wide.grad.is_sparse and narrow.grad.is_sparse and unused.grad is None
    torch.save([wide.grad.to_dense(), narrow.grad.to_dense()], f"{out}/after{rank}.pt")
    distributed.shut_down()
''')


def test_sparse_gradients_are_averaged_over_the_ranks(tmp_path):
    script = tmp_path / "grads.py"
    script.write_text(GRADIENT_SCRIPT)
    result = subprocess.run(torchrun_command(2, script) + [str(tmp_path)], capture_output=True,
                            text=True, timeout=600,
                            env=python_env(RECHUB_MINI_DIST_TIMEOUT_MIN="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    before = [torch.load(tmp_path / f"before{r}.pt") for r in (0, 1)]
    after = [torch.load(tmp_path / f"after{r}.pt") for r in (0, 1)]
    for table in (0, 1):
        mean = (before[0][table] + before[1][table]) / 2
        assert mean.abs().sum() > 0
        for rank in (0, 1):
            torch.testing.assert_close(after[rank][table], mean)


def test_a_folder_problem_found_by_rank_0_stops_every_rank_with_its_message(tmp_path,
                                                                             sample_dir):
    """Only rank 0 reads the data first and writes (and checks) the model folder; the other
    ranks must stop with the same one-line error, not die in their next collective with a
    transport error."""
    from rechub_mini.cli import main

    save = tmp_path / "run"
    assert main(["train", "--data", str(sample_dir), "--epochs", "1", "--save", str(save)]) == 0
    env = python_env(RECHUB_MINI_DIST_TIMEOUT_MIN="2", OMP_NUM_THREADS="1")
    for options, message in [
            (["--data", sample_dir, "--save", save], "already holds an earlier run"),
            (["--data", tmp_path / "no-such-folder"], "does not exist")]:
        command = torchrun_command(2, "-m", "rechub_mini", "train", "--epochs", "1", *options)
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode != 0
        # each rank prints the line, unless torchrun stops rank 1 first once rank 0 has failed
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert 1 <= len(errors) <= 2 and all(message in e for e in errors), result.stderr[-3000:]
        assert "Connection reset" not in result.stderr, result.stderr[-3000:]
        assert "[rank1]: Traceback" not in result.stderr, result.stderr[-3000:]
